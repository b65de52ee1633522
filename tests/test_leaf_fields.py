"""Plain leaf fields completed in one step (gateway/runtime/leaf_fields.py) answer exactly as
graphql-core's general path does: the same data, in the same order, and the same errors at the
same paths when a value is null for a non-null type, refused by its type or missing. Fast; the
gateway's own schema is exercised by every test against the running app."""

from __future__ import annotations

import enum
from datetime import UTC, datetime
from typing import Any

import pytest
import strawberry
from strawberry.schema.config import StrawberryConfig

from gateway.runtime import execution
from gateway.runtime.execution import GatewayExecutor
from gateway.runtime.leaf_fields import Leaf, complete
from schema import direct
from schema.scalars import DateTime


@strawberry.enum
class Colour(enum.Enum):
    RED = "RED"
    BLUE = "BLUE"


@strawberry.type
class Item:
    name: str
    note: str | None
    colour: Colour
    at: datetime
    count: int

    @strawberry.field
    def shout(self) -> str:
        return self.name.upper()


def _items() -> list[Any]:
    at = datetime(2026, 11, 26, 8, 0, tzinfo=UTC)
    good = Item(name="a", note=None, colour=Colour.RED, at=at, count=1)
    null_name = Item(name=None, note="n", colour=Colour.BLUE, at=at, count=2)  # type: ignore[arg-type]
    bad_enum = Item(name="c", note=None, colour="GREEN", at=at, count=3)  # type: ignore[arg-type]
    bad_int = Item(name="d", note=None, colour=Colour.RED, at=at, count="many")  # type: ignore[arg-type]
    return [good, null_name, bad_enum, bad_int, good]


@strawberry.type
class Query:
    @strawberry.field
    def items(self) -> list[Item | None]:
        return _items()

    @strawberry.field
    def strict(self) -> list[Item]:
        return _items()


def _schemas() -> tuple[strawberry.Schema, strawberry.Schema]:
    config = StrawberryConfig(scalar_map={datetime: DateTime})
    general = strawberry.Schema(query=Query, config=config)
    fast = strawberry.Schema(query=Query, config=config, execution_context_class=GatewayExecutor)
    direct.install(fast._schema)
    return general, fast


@pytest.mark.parametrize(
    "query",
    [
        "{ items { name note colour at count } }",
        "{ items { __typename b: count a: name shout name } }",
        "{ strict { name colour } }",
        "{ strict { count } items { note } }",
        "{ items { ... on Item { name } ...F } } fragment F on Item { colour at name }",
        "{ items { name @skip(if: true) note @include(if: false) count } }",
    ],
)
async def test_leaf_fields_answer_as_the_general_path(
    query: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    completed: list[str] = []

    def counted(leaf: Leaf, source: Any) -> Any:
        completed.append(leaf.attribute)
        return complete(leaf, source)

    monkeypatch.setattr(execution, "complete", counted)
    general, fast = _schemas()
    expected = await general.execute(query)
    got = await fast.execute(query)
    assert completed, "the leaves took the one-step path"
    assert got.data == expected.data
    if expected.data is not None:
        assert [list(o or {}) for o in _objects(got.data)] == [
            list(o or {}) for o in _objects(expected.data)
        ], "the selection's order"
    assert [(e.message, e.path) for e in got.errors or []] == [
        (e.message, e.path) for e in expected.errors or []
    ]
    assert expected.errors, "every query meets at least one bad value"


def _objects(data: dict[str, Any]) -> list[dict[str, Any] | None]:
    return [item for value in data.values() for item in (value or [])]
