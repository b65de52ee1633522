"""Plain fields executed in one step (gateway/runtime/plain_fields.py) answer exactly as
graphql-core's general path does: the same data, in the same order, and the same errors at the
same paths when a value is null for a non-null type, refused by its type or missing, when a
`@direct` resolver raises, or when an object is not of its field's type, in single values and
in lists (of leaves and of objects, an item null or refused). Fast; the gateway's own
schema is exercised by every test against the running app."""

from __future__ import annotations

import enum
from datetime import UTC, datetime
from typing import Any

import pytest
import strawberry
from strawberry.schema.config import StrawberryConfig

from gateway.runtime import plain_fields
from gateway.runtime.execution import GatewayExecutor
from schema import direct
from schema.scalars import DateTime


@strawberry.enum
class Colour(enum.Enum):
    RED = "RED"
    BLUE = "BLUE"


@strawberry.interface
class Named:
    name: str


@strawberry.type
class Owner(Named):
    since: datetime


@strawberry.type
class Item:
    name: str
    note: str | None
    colour: Colour
    at: datetime
    count: int
    owner: Owner
    maybe_owner: Owner | None
    tags: list[str]
    marks: list[Colour | None] | None
    friends: list[Owner]

    @strawberry.field
    @direct.direct
    def shout(self, info: strawberry.Info) -> str:
        if self.count == 3:
            raise ValueError("three is not shouted")
        return self.name.upper()

    @strawberry.field
    @direct.direct
    def keeper(self, info: strawberry.Info) -> Owner | None:
        assert info.context["reader"] == "tester"
        return self.maybe_owner

    @strawberry.field
    @direct.direct
    def required_keeper(self, info: strawberry.Info) -> Owner:
        return self.maybe_owner  # type: ignore[return-value]

    @strawberry.field
    @direct.direct
    def later(self, info: strawberry.Info) -> Owner | None:
        # As schema/direct.hospital does when the node was not fetched ahead: a load to await.
        async def load() -> Owner | None:
            if self.count == 2:
                raise ValueError("not loaded")
            return self.maybe_owner

        return load()  # type: ignore[return-value]


class NotAnOwner:
    name = "impostor"
    since = datetime(2026, 1, 1, tzinfo=UTC)


def _items() -> list[Any]:
    at = datetime(2026, 11, 26, 8, 0, tzinfo=UTC)
    owner = Owner(name="o", since=at)

    def item(**changes: Any) -> Item:
        values: dict[str, Any] = {
            "name": "a",
            "note": None,
            "colour": Colour.RED,
            "at": at,
            "count": 1,
            "owner": owner,
            "maybe_owner": owner,
            "tags": ["x", "y"],
            "marks": [Colour.BLUE, None],
            "friends": [owner, owner],
        }
        return Item(**{**values, **changes})

    return [
        item(),
        item(name=None, note="n", colour=Colour.BLUE, count=2, maybe_owner=None, marks=None),
        item(name="c", colour="GREEN", count=3, tags=["c", None], marks=["GREEN"]),
        item(name="d", count="many", owner=NotAnOwner(), friends=[NotAnOwner()]),
        item(owner=None, friends=[owner, None]),
        item(),
    ]


@strawberry.type
class Box:
    items: list[Item | None]
    strict: list[Item]
    good: list[Item] | None


@strawberry.type
class Query:
    @strawberry.field
    def items(self) -> list[Item | None]:
        return _items()

    @strawberry.field
    def strict(self) -> list[Item]:
        return _items()

    @strawberry.field
    def boxes(self) -> list[Box]:
        items = _items()
        return [Box(items=[*items, None], strict=items, good=[items[0], items[-1]])]


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
        "{ items { owner { name since __typename } maybeOwner { name } } }",
        "{ items { keeper { name } requiredKeeper { since } } }",
        "{ strict { shout owner { ... on Named { name } } } }",
        "{ items { shout keeper { name } } }",
        "{ items { later { name } count } strict { later { since } } }",
        "{ items { tags marks friends { name __typename } } }",
        "{ boxes { items { name tags marks friends { since } } } }",
        "{ boxes { strict { count owner { since } } good { name tags } } }",
        "{ boxes { good { name tags keeper { name } } items { shout later { name } } } }",
        "{ boxes { good { name } strict { later { since } } } }",
    ],
)
async def test_plain_fields_answer_as_the_general_path(
    query: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    executed: list[str] = []
    one_step = plain_fields.execute_fields

    def counted(*args: Any) -> Any:
        executed.append(args[1].name)
        return one_step(*args)

    monkeypatch.setattr(plain_fields, "execute_fields", counted)
    general, fast = _schemas()
    context = {"reader": "tester"}
    expected = await general.execute(query, context_value=context)
    got = await fast.execute(query, context_value=context)
    assert executed, "the plain fields took the one-step path"
    assert got.data == expected.data
    if expected.data is not None:
        assert [list(o or {}) for o in _objects(got.data)] == [
            list(o or {}) for o in _objects(expected.data)
        ], "the selection's order"
    assert [(e.message, e.path) for e in got.errors or []] == [
        (e.message, e.path) for e in expected.errors or []
    ]
    assert expected.errors, "every query meets at least one bad value"


def _objects(data: dict[str, Any] | None) -> list[dict[str, Any] | None]:
    assert data is not None
    return [item for value in data.values() for item in (value or [])]


async def test_lists_of_usual_items_are_completed_in_one_step(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    completed: list[object] = []
    one_step = plain_fields._list

    def counted(*args: Any) -> Any:
        result = one_step(*args)
        completed.append(result)
        return result

    monkeypatch.setattr(plain_fields, "_list", counted)
    general, fast = _schemas()
    query = "{ boxes { good { name tags friends { name } } items { count } strict { name } } }"
    expected = await general.execute(query, context_value={"reader": "tester"})
    got = await fast.execute(query, context_value={"reader": "tester"})
    assert got.data == expected.data
    assert [(e.message, e.path) for e in got.errors or []] == [
        (e.message, e.path) for e in expected.errors or []
    ]
    in_one_step = [c for c in completed if isinstance(c, list)]
    # good, 2 × tags, 2 × friends and items (its null item is nullable); strict has a bad name.
    assert len(in_one_step) == 6, completed
