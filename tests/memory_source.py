"""An in-memory SourcePort, for fast tests of the federation logic beside the tests against real
servers (never instead of them). It keeps records as the port's record types and answers every
request the way the port describes, with keys that are not numbers (as a FHIR server's are)."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from typing import Any, TypeVar

from adapters.sources import port
from adapters.sources.errors import SourceError, SourceErrorCode
from adapters.sources.port import (
    AggregateRequest,
    AggregateRow,
    Capabilities,
    ChangeFeed,
    Created,
    CreateRequest,
    LookupRequest,
    Page,
    PageRequest,
    PoolStats,
    RecordKind,
    UpdateRequest,
)
from adapters.sources.records import Bound, ChangeRow, ReferralFilter

R = TypeVar("R")


@dataclass
class MemorySource:
    member: str
    serves: frozenset[RecordKind[Any]] = frozenset(port.RECORD_KINDS)
    records: dict[str, list[Any]] = field(default_factory=dict)
    # Called before every request: lets a test make the source fail in any way it likes.
    before: Callable[[], None] | None = None
    delay_seconds: float = 0.0
    adapter: str = "memory"
    asked: list[str] = field(default_factory=list)

    @property
    def capabilities(self) -> Capabilities:
        return Capabilities(
            serves=self.serves,
            writable=True,
            notifies=False,
            pushdown=frozenset({"parties", "since", "until", "bound", "limit", "statuses"}),
            key_pattern=re.compile(r"[A-Za-z0-9\-.]{1,64}"),
        )

    async def _enter(self, what: str) -> None:
        self.asked.append(what)
        if self.before is not None:
            self.before()
        if self.delay_seconds:
            await asyncio.sleep(self.delay_seconds)

    def _matching(self, request: PageRequest[R], *, bounded: bool) -> list[R]:
        kind, q = request.kind, request.query
        sort = kind.sort_field
        assert sort is not None
        found = []
        for record in self.records.get(kind.name, []):
            value = getattr(record, sort)
            if q.since is not None and value < q.since:
                continue
            if q.until is not None and value >= q.until:
                continue
            if bounded and q.bound is not None and not _after(value, record.id, q.bound):
                continue
            f = request.filter
            if isinstance(f, ReferralFilter) and f.statuses and record.status not in f.statuses:
                continue
            found.append(record)
        # Newest first, then key descending: this source's own order of keys is by text.
        return sorted(found, key=lambda r: (getattr(r, sort), r.id), reverse=True)

    async def page(self, request: PageRequest[R]) -> Page[R]:
        await self._enter(request.describe())
        records = self._matching(request, bounded=True)[: request.query.limit]
        total = len(self._matching(request, bounded=False)) if request.with_total else None
        return Page(records, total)

    async def lookup(self, request: LookupRequest[R]) -> list[R]:
        await self._enter(request.describe())
        return [
            r
            for r in self.records.get(request.kind.name, [])
            if getattr(r, request.field) in request.values
        ]

    async def create(self, request: CreateRequest[R]) -> Created[R]:
        await self._enter(request.describe())
        raise SourceError(SourceErrorCode.SOURCE_READ_ONLY, self.member)

    async def update(self, request: UpdateRequest[R]) -> R | None:
        await self._enter(request.describe())
        stored = self.records.get(request.kind.name, [])
        for i, record in enumerate(stored):
            if record.id == request.key:
                if record.version != request.expected_version:
                    return None
                stored[i] = replace(record, **request.changes, version=record.version + 1)
                return stored[i]
        return None

    async def aggregate(self, request: AggregateRequest) -> list[AggregateRow]:
        await self._enter(request.describe())
        kind, q = request.kind, request.query
        counts: dict[tuple[Any, ...], int] = {}
        sums: dict[tuple[Any, ...], list[int]] = {}
        for record in self.records.get(kind.name, []):
            # The window is on the kind's sort field, as at every source.
            value = getattr(record, kind.sort_field) if kind.sort_field else None
            if value is not None and q.since is not None and value < _like(q.since, value):
                continue
            if value is not None and q.until is not None and value >= _like(q.until, value):
                continue
            group = tuple(getattr(record, g) for g in request.group_by)
            counts[group] = counts.get(group, 0) + 1
            totals = sums.setdefault(group, [0] * len(request.sums))
            for i, name in enumerate(request.sums):
                totals[i] += getattr(record, name) or 0
        return [AggregateRow(group, n, tuple(sums[group])) for group, n in counts.items()]

    async def ping(self) -> None:
        await self._enter("ping")

    def change_feed(self) -> ChangeFeed:
        return MemoryChangeFeed(self.member, sorted(self.records), self)

    def pool_stats(self) -> PoolStats | None:
        return None

    async def close(self) -> None:
        return None


def _like(edge: datetime | date, value: Any) -> Any:
    """A window's edge comparable with a field's value: a date field takes an instant's date,
    as a SQL source compares a date column with it."""
    if isinstance(edge, datetime) and not isinstance(value, datetime):
        return edge.date()
    return edge


def _after(value: datetime | date, key: str, bound: Bound) -> bool:
    if bound.key is not None:
        return (value, key) < (bound.value, bound.key)
    return value <= bound.value if bound.ties_after else value < bound.value


_PARTIES = {
    "referral": ("from_hospital", "to_hospital"),
    "consultation": ("requesting_hospital", "invited_hospital"),
}


@dataclass
class MemoryChangeFeed:
    """Changes of the in-memory records by (updated_at, key), as a polled source gives them."""

    member: str
    kinds: Sequence[str]
    source: MemorySource
    connected: bool = False

    async def connect(self, on_notify: Callable[[], None]) -> bool:
        self.connected = True
        return False  # nothing is pushed: the watch polls

    async def close(self) -> None:
        self.connected = False

    async def changes(self, table: str, after: tuple[datetime, str], limit: int) -> list[ChangeRow]:
        later = sorted(
            (r for r in self.source.records.get(table, []) if (r.updated_at, r.id) > after),
            key=lambda r: (r.updated_at, r.id),
        )
        return [
            ChangeRow(
                table,
                r.id,
                r.version,
                r.updated_at,
                tuple(getattr(r, c) for c in _PARTIES.get(table, ())),
            )
            for r in later[:limit]
        ]

    async def now_or_latest(self, table: str) -> datetime:
        stamps = [r.updated_at for r in self.source.records.get(table, [])]
        return max([datetime.now(UTC), *stamps])
