"""Fan-out to the members' sources and the merge of their answers.

Every member is asked concurrently, each call under its own guard (deadline, concurrency limit,
circuit breaker). A member that fails costs the answer its part: its SourceError is collected for
`errors` and the rest is returned. Lists are merged in one alliance-wide order, newest first by
(sort value, member, id); a cursor is a position in that order, from which each member's own
position follows, so pages never skip or repeat."""

from __future__ import annotations

import asyncio
import heapq
import math
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any, ClassVar, Generic, TypeVar, cast

from adapters import observe
from adapters.resilience import Guard
from adapters.sources.errors import SourceError, SourceErrorCode
from adapters.sources.port import Page, PageRequest, RecordKind, SourcePort, SourceRequest
from adapters.sources.records import Bound
from resolvers import global_ids
from resolvers.errors import bad_input
from resolvers.pagination import cursor_parts, encode_cursor

T = TypeVar("T")
R = TypeVar("R")


@dataclass
class MemberSource:
    code: str
    source: SourcePort
    guard: Guard
    # Reads in flight, by request: an identical read asked meanwhile (by any operation: a
    # dashboard many people open) shares the answer instead of asking the member again. A read
    # carries the reader's visibility (its parties), so only readers who may see the same share.
    _in_flight: dict[SourceRequest[Any], asyncio.Future[Any]] = field(
        default_factory=dict, repr=False
    )
    # Per list kind: about what part of recent merged pages this member gave (`page_in_rounds`).
    shares: dict[str, float] = field(default_factory=dict, repr=False)

    def serves(self, kind: RecordKind[Any] | None) -> bool:
        return kind is None or kind in self.source.capabilities.serves

    def ask(self, request: SourceRequest[T]) -> Awaitable[T]:
        """The request, sent to this member's adapter under its guard. A read is a task of its
        own, shared by identical reads meanwhile, and given to each reader shielded: a fan-out
        gathers it as it is, with no task made to wait for it."""
        if not self.serves(request.kind):
            return _raise(SourceError(SourceErrorCode.SOURCE_NOT_SERVED, self.code))
        kind = request.kind
        operation = request.operation if kind is None else f"{request.operation} {kind.name}"
        describe = request.describe
        if not request.coalescible:
            return self.guard.call(operation, describe, lambda: request.send(self.source))
        shared = self._in_flight.get(request)
        if shared is not None:
            return observe.coalesced(self.code, self.source.adapter, operation, describe, shared)
        call = asyncio.ensure_future(
            self.guard.call(operation, describe, lambda: request.send(self.source))
        )
        self._in_flight[request] = call
        call.add_done_callback(lambda done: self._settled(request, done))
        # Shielded: one reader giving up does not cancel the call the others are waiting for.
        return asyncio.shield(call)

    def _settled(self, request: SourceRequest[Any], call: asyncio.Future[Any]) -> None:
        current = self._in_flight.pop(request, None)
        if current is not None and current is not call:
            self._in_flight[request] = current
        if not call.cancelled():
            call.exception()  # retrieved: every reader may have gone


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
                f"Hospital {code[:40]} has no data source configured in this gateway.",
                member=code[:40],
            )
        return member

    def holds(self, code: str, key: str) -> bool:
        """Whether `code` is configured here and its source could have issued `key`."""
        member = self.members.get(code)
        return member is not None and member.source.capabilities.accepts_key(key)

    async def close(self) -> None:
        await asyncio.gather(*(m.source.close() for m in self.members.values()))


async def _raise(error: SourceError) -> Any:
    raise error


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
    request_for: Callable[[str], SourceRequest[T]],
    report: SourceReport | None = None,
) -> FanOut[T]:
    """The request asked of every member in `codes` at once. A member whose source does not hold
    the kind asked for is left out, silently; one that fails is reported, and costs its part."""
    asked: list[tuple[MemberSource, SourceRequest[T]]] = []
    for code in codes:
        member = federation.get(code)
        request = request_for(code)
        if member.serves(request.kind):
            asked.append((member, request))
    outcomes = await asyncio.gather(
        *(member.ask(request) for member, request in asked), return_exceptions=True
    )
    results: dict[str, T] = {}
    errors: list[SourceError] = []
    for (member, _), outcome in zip(asked, outcomes, strict=True):
        if isinstance(outcome, SourceError):
            errors.append(outcome)
        elif isinstance(outcome, BaseException):
            # Only cancellation gets here: the guard turns every failure into a SourceError.
            raise outcome
        else:
            results[member.code] = outcome
    if report is not None:
        report.asked.update(m.code for m, _ in asked)
        report.failures.extend(errors)
    return FanOut(results, errors)


async def on_member(
    federation: Federation,
    code: str,
    request: SourceRequest[T],
    report: SourceReport | None = None,
) -> T:
    """One member's call. Its SourceError is raised: a write or a lookup has no partial answer,
    so the error belongs to the field that asked."""
    member = federation.get(code)
    if report is not None:
        report.asked.add(code)
    return await member.ask(request)


@dataclass(frozen=True, slots=True)
class Owned(Generic[R]):
    """A record where it lives: the member whose source holds it, and its record. Subclasses name
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
    key: str

    def bound_for(self, member: str) -> Bound:
        """This member's records that come after the position in the alliance-wide order."""
        if member == self.member:
            return Bound(self.value, self.key)
        # Ties on the sort value are ordered by member code, descending.
        return Bound(self.value, ties_after=member < self.member)


def encode_position(kind: str, position: Position) -> str:
    return _cursor(kind, position.value, position.member, position.key)


def _cursor(kind: str, value: datetime | date, member: str, key: str) -> str:
    # orjson writes a date, or a time in UTC or without a zone, as its isoformat, and at a third
    # of the cost; an offset it rounds to the minute, so any other zone is written as text.
    if isinstance(value, datetime) and value.tzinfo not in (None, UTC):
        return encode_cursor(kind, [value.isoformat(), member, key])
    return encode_cursor(kind, [value, member, key])


def decode_position(cursor: str, kind: str, federation: Federation) -> Position:
    """The position a cursor of this list names. Cursors issued before keys were strings (flat,
    with an integer key) still work."""
    refused = bad_input("`after` is not a cursor of this list.", argument="after")
    found, *rest = cursor_parts(cursor)
    if found != kind:
        raise bad_input("`after` is a cursor of another list.", argument="after")
    parts = rest[0] if len(rest) == 1 and isinstance(rest[0], list) else rest
    if len(parts) != 3:
        raise refused
    value, member, key = parts
    if isinstance(key, int) and not isinstance(key, bool):
        key = str(key)
    if not (isinstance(value, str) and isinstance(member, str) and isinstance(key, str)):
        raise refused
    try:
        parsed: datetime | date = (
            datetime.fromisoformat(value) if "T" in value else date.fromisoformat(value)
        )
    except ValueError:
        raise refused from None
    if member in federation.members and not federation.holds(member, key):
        raise refused
    return Position(parsed, member, key)


@dataclass(frozen=True, slots=True)
class Merged(Generic[R]):
    items: list[tuple[str, str, R]]  # (cursor, member, row)
    has_next_page: bool


def merge_pages(
    kind: str,
    pages: dict[str, list[R]],
    sort_value: Callable[[R], datetime | date],
    limit: int,
) -> Merged[R]:
    """k-way merge of members' pages, each already newest first in its source's own order;
    keeps the first `limit`. Streams are told apart by member, so keys are never compared."""
    streams = [
        [(sort_value(r), code, r.id, r) for r in rows]  # type: ignore[attr-defined]
        for code, rows in pages.items()
    ]
    merged = heapq.merge(*streams, key=lambda item: item[:2], reverse=True)
    taken = []
    for item in merged:
        taken.append(item)
        if len(taken) > limit:
            break
    items = [
        (_cursor(kind, value, code, rid), code, row) for value, code, rid, row in taken[:limit]
    ]
    return Merged(items=items, has_next_page=len(taken) > limit)


def first_round(limit: int, share: float) -> int:
    """How many records a list asks of a member first: twice its expected share of the page (and
    the record after it), plus one. A page of 50 over 10 even members reads about 120 records,
    not 510; a member whose records could still reach the page is asked again (`wanting_more`)."""
    return min(limit + 1, math.ceil(2 * (limit + 1) * share) + 1)


def wanting_more(
    pages: dict[str, list[R]], asked: dict[str, int], merged: Merged[R]
) -> dict[str, R]:
    """The members whose unread records could still fall within the merged page, each with its
    last record read, after which it resumes. A member that returned fewer records than asked
    has no more; one whose last record did not make the page has none that would (its next ones
    sort after that record). When the page is short, every member that filled its round is
    asked again. Asked for the page's size plus one less what it gave, a member then either
    runs out or has given every record it could place: two rounds always suffice."""
    made = _made(merged)
    return {
        code: rows[-1]
        for code, rows in pages.items()
        if rows and len(rows) == asked[code] and made[code] == len(rows)
    }


def _made(merged: Merged[Any]) -> Counter[str]:
    """How many records of the page each member gave."""
    return Counter(member for _, member, _ in merged.items)


def _learn_shares(
    federation: Federation, kind: RecordKind[Any], merged: Merged[Any], answered: Iterable[str]
) -> None:
    """Each answering member's part of the page, for its next first round: taken at once when it
    grew (so a member that holds most of the newest records is not asked twice page after page),
    let go of slowly when it shrank."""
    if not merged.items:
        return
    made = _made(merged)
    for code in answered:
        shares = federation.get(code).shares
        part = made[code] / len(merged.items)
        known = shares.get(kind.name)
        shares[kind.name] = part if known is None or part > known else (known + part) / 2


async def page_in_rounds(
    federation: Federation,
    kind: RecordKind[R],
    id_kind: str,
    limit: int,
    bound_of: Callable[[str], Bound | None],
    request_for: Callable[[str, Bound | None, int, bool], PageRequest[R]],
    report: SourceReport | None = None,
) -> tuple[Merged[R], dict[str, Page[R]]]:
    """A merged page of `limit` records over every member, read in at most two rounds; and the
    first round's page of each member whose part it holds (the others failed, and are reported).
    `request_for(member, bound, size, first_round)` is a member's page request."""
    sort = kind.sort_field
    assert sort is not None, f"{kind!r} is not listed"

    def sort_value(record: R) -> datetime | date:
        return cast("datetime | date", getattr(record, sort))

    serving = [code for code in federation.codes() if federation.get(code).serves(kind)]
    even = 1 / max(len(serving), 1)
    # The page and one record more, from all members together: whether another page follows.
    asked = {
        code: first_round(limit, federation.get(code).shares.get(kind.name, even))
        for code in serving
    }
    opening = await fan_out(
        federation,
        serving,
        lambda code: request_for(code, bound_of(code), asked[code], True),
        report,
    )
    pages = {code: page.records for code, page in opening.results.items()}
    merged = merge_pages(id_kind, pages, sort_value, limit)
    more = wanting_more(pages, asked, merged)
    if not more:
        _learn_shares(federation, kind, merged, pages)
        return merged, opening.results
    rest = await fan_out(
        federation,
        list(more),
        lambda code: request_for(
            code,
            Bound(sort_value(more[code]), more[code].id),  # type: ignore[attr-defined]
            limit + 1 - len(pages[code]),
            False,
        ),
        report,
    )
    for code in more:
        if code in rest.results:
            pages[code] = [*pages[code], *rest.results[code].records]
        else:
            # A member's part is whole or missing (and named in `errors`), never cut short.
            del pages[code]
    kept = {code: page for code, page in opening.results.items() if code in pages}
    merged = merge_pages(id_kind, pages, sort_value, limit)
    _learn_shares(federation, kind, merged, pages)
    return merged, kept


def bounds(after: str | None, kind: str, federation: Federation) -> Callable[[str], Bound | None]:
    position = decode_position(after, kind, federation) if after is not None else None
    return lambda member: position.bound_for(member) if position else None
