"""Values between the source port's records and MySQL's types.

MySQL has no arrays, no time zones in its temporal values and no booleans of its own: lists are
JSON arrays, times are TIMESTAMP read and written in UTC (the session's time zone, see
`session`), booleans are TINYINT(1), row keys are BIGINT. The records carry keys as strings,
booleans as bool and times as aware datetimes, as from any other source."""

from __future__ import annotations

import json
import typing
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

from adapters.exchange.columns import INTEGER_KEYS
from adapters.sources.port import RecordKind

R = TypeVar("R")
Convert = Callable[[Any], Any]


def param(value: Any) -> Any:
    """A bound parameter as MySQL takes it."""
    if isinstance(value, datetime):
        if value.tzinfo is None:
            return value
        return value.astimezone(UTC).replace(tzinfo=None)
    if isinstance(value, list | tuple):
        return json.dumps(list(value), ensure_ascii=False)
    return value


def aware(value: datetime | None) -> datetime | None:
    """A TIMESTAMP as read in the gateway's UTC session."""
    return None if value is None else value.replace(tzinfo=UTC)


def _key(value: Any) -> Any:
    return None if value is None else str(value)


def _bool(value: Any) -> Any:
    return None if value is None else bool(value)


def _json_list(value: Any) -> Any:
    if value is None:
        return []
    if isinstance(value, bytes | str):
        value = json.loads(value)
    return [str(v) for v in value]


def _converter(table: str, name: str, hint: Any) -> Convert | None:
    if name in INTEGER_KEYS.get(table, ()):
        return _key
    options = set(typing.get_args(hint)) or {hint}
    if datetime in options:
        return aware
    if bool in options:
        return _bool
    if typing.get_origin(hint) is list:
        return _json_list
    return None


class RecordBuilder:
    """Builds one kind's records from rows whose columns are named by `description`, converting
    what MySQL's types hold differently; a field that is not among the columns (not `wanted`)
    is None. Made once per kind and statement shape."""

    def __init__(
        self, kind: RecordKind[Any], columns: Sequence[str], wanted: frozenset[str] | None = None
    ) -> None:
        self._kind = kind
        hints = typing.get_type_hints(kind.record)
        position = {name: i for i, name in enumerate(columns)}
        self._plan: list[tuple[int | None, Convert | None]] = [
            (None, None)
            if wanted is not None and name not in wanted
            else (position[name], _converter(kind.name, name, hints[name]))
            for name in kind.fields
        ]

    def __call__(self, row: Sequence[Any]) -> Any:
        return self._kind.record(
            *[
                None if i is None else row[i] if convert is None else convert(row[i])
                for i, convert in self._plan
            ]
        )


_BUILDERS: dict[tuple[str, tuple[str, ...], frozenset[str] | None], RecordBuilder] = {}


def records(
    kind: RecordKind[R],
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    wanted: frozenset[str] | None = None,
) -> list[R]:
    key = (kind.name, tuple(columns), wanted)
    builder = _BUILDERS.get(key)
    if builder is None:
        builder = RecordBuilder(kind, columns, wanted)
        # Bounded by the kinds times the distinct selections clients make, which are few.
        if len(_BUILDERS) < 1024:
            _BUILDERS[key] = builder
    return [builder(row) for row in rows]
