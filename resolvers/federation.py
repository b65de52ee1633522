"""Fan-out to the members' sources and the merge of their answers.

Every member is asked concurrently, each call under its own guard (deadline, concurrency limit,
circuit breaker). A member that fails costs the answer its part: its SourceError is collected for
`errors` and the rest is returned. Lists are merged in one alliance-wide order, newest first by
(sort value, member, id); a cursor is a position in that order, from which each member's own
position follows, so pages never skip or repeat."""

from __future__ import annotations

import asyncio
import base64
import binascii
import heapq
import json
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import ClassVar, Generic, TypeVar

from adapters.exchange.postgres import ExchangeDatabase
from adapters.exchange.records import Bound
from adapters.resilience import Guard, SourceError
from resolvers import global_ids
from resolvers.errors import bad_input

T = TypeVar("T")
R = TypeVar("R")
_MAX_ID = 2**63 - 1


@dataclass
class MemberSource:
    code: str
    source: ExchangeDatabase
    guard: Guard


class Federation:
    """The members' sources this gateway is configured with."""

    def __init__(self, members: Iterable[MemberSource]) -> None:
        self.members = {m.code: m for m in members}

    def codes(self) -> list[str]:
        return sorted(self.members)

    def get(self, code: str) -> MemberSource:
        member = self.members.get(code)
        if member is None:
            raise bad_input(
                f"Hospital {code} has no data source configured in this gateway.", member=code
            )
        return member

    async def close(self) -> None:
        await asyncio.gather(*(m.source.close() for m in self.members.values()))


@dataclass
class SourceReport:
    """What a request asked of which members, and which failed: for errors and the audit."""

    asked: set[str] = field(default_factory=set)
    failures: list[SourceError] = field(default_factory=list)

    @property
    def failed(self) -> set[str]:
        return {e.member for e in self.failures}


@dataclass
class FanOut(Generic[T]):
    results: dict[str, T]
    errors: list[SourceError]


async def fan_out(
    federation: Federation,
    codes: Sequence[str],
    call: Callable[[ExchangeDatabase], Awaitable[T]],
    report: SourceReport | None = None,
) -> FanOut[T]:
    async def one(code: str) -> T:
        member = federation.get(code)
        return await member.guard.call(lambda: call(member.source))

    outcomes = await asyncio.gather(*(one(c) for c in codes), return_exceptions=True)
    results: dict[str, T] = {}
    errors: list[SourceError] = []
    for code, outcome in zip(codes, outcomes, strict=True):
        if isinstance(outcome, SourceError):
            errors.append(outcome)
        elif isinstance(outcome, BaseException):
            raise outcome
        else:
            results[code] = outcome
    if report is not None:
        report.asked.update(codes)
        report.failures.extend(errors)
    return FanOut(results, errors)


async def on_member(
    federation: Federation,
    code: str,
    call: Callable[[ExchangeDatabase], Awaitable[T]],
    report: SourceReport | None = None,
) -> T:
    """One member's call. Its SourceError is raised: a write or a lookup has no partial answer,
    so the error belongs to the field that asked."""
    member = federation.get(code)
    if report is not None:
        report.asked.add(code)
    return await member.guard.call(lambda: call(member.source))


@dataclass(frozen=True, slots=True)
class Owned(Generic[R]):
    """A record where it lives: the member whose source holds it, and its row. Subclasses name
    the record's kind, which its global id carries."""

    kind: ClassVar[str]
    member: str
    row: R

    @property
    def global_id(self) -> str:
        return global_ids.encode(self.kind, self.member, self.row.id)  # type: ignore[attr-defined]


# -- positions, cursors, merge ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Position:
    value: datetime | date
    member: str
    id: int

    def bound_for(self, member: str) -> Bound:
        """This member's rows that come after the position in the alliance-wide order."""
        if member == self.member:
            return Bound(self.value, self.id)
        # Ties on the sort value are ordered by member code, descending.
        return Bound(self.value, _MAX_ID if member < self.member else 0)


def encode_position(kind: str, position: Position) -> str:
    raw = json.dumps([kind, position.value.isoformat(), position.member, position.id])
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_position(cursor: str, kind: str) -> Position:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        found, value, member, row_id = json.loads(base64.urlsafe_b64decode(padded.encode()))
        parsed: datetime | date = (
            datetime.fromisoformat(value) if "T" in value else date.fromisoformat(value)
        )
        if found != kind or not isinstance(member, str) or not isinstance(row_id, int):
            raise ValueError
    except (binascii.Error, UnicodeDecodeError, ValueError, TypeError):
        raise bad_input("`after` is not a cursor of this list.", argument="after") from None
    return Position(parsed, member, row_id)


@dataclass(frozen=True, slots=True)
class Merged(Generic[R]):
    items: list[tuple[str, str, R]]  # (cursor, member, row)
    has_next_page: bool


def merge_pages(
    kind: str,
    pages: dict[str, list[R]],
    sort_value: Callable[[R], datetime | date],
    row_id: Callable[[R], int],
    limit: int,
) -> Merged[R]:
    """k-way merge of members' pages, each already newest first; keeps the first `limit`."""
    streams = [[(sort_value(r), code, row_id(r), r) for r in rows] for code, rows in pages.items()]
    merged = heapq.merge(*streams, key=lambda item: item[:3], reverse=True)
    taken = []
    for item in merged:
        taken.append(item)
        if len(taken) > limit:
            break
    items = [
        (encode_position(kind, Position(value, code, rid)), code, row)
        for value, code, rid, row in taken[:limit]
    ]
    return Merged(items=items, has_next_page=len(taken) > limit)


def bounds(after: str | None, kind: str) -> Callable[[str], Bound | None]:
    position = decode_position(after, kind) if after is not None else None
    return lambda member: position.bound_for(member) if position else None
