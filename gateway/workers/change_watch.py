"""Change capture at the hospitals: changes written straight into a member's exchange database (by
its HIS, not through the gateway) become events.

One replica at a time watches a given member: it holds that member's advisory lock in the
gateway's database on a connection of its own, so the lock goes when the replica does, and another
replica's next claim takes the watch over. A watch reads each table's rows by (updated_at, key)
from the stored watermark, minus an overlap for transactions that committed late with an earlier
updated_at; the events and the moved watermark are committed together, and an event already in the
log is not recorded again. A replica that dies between a hospital's write and the append therefore
loses nothing: the next watch reads from the same watermark."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import asyncpg

from adapters.registry.events import (
    EventLogUnavailable,
    EventStore,
    claim_watches,
    listen_for_wakes,
)
from adapters.sources.errors import SourceError
from adapters.sources.port import ChangeFeed
from resolvers import events
from resolvers.events import DetectedBy

log = logging.getLogger(__name__)

_SOURCE_ERRORS = (
    SourceError,
    EventLogUnavailable,
    OSError,
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
    TimeoutError,
)


@dataclass(frozen=True, slots=True)
class WatchSettings:
    poll_interval_seconds: float = 1.0
    # With the member's NOTIFY trigger, a poll is still made this often, in case one was missed.
    notify_fallback_seconds: float = 30.0
    overlap_seconds: float = 10.0
    claim_interval_seconds: float = 1.0
    batch_size: int = 500


@dataclass
class _TableState:
    watermark: datetime
    # (row id, version) already recorded, with their updated_at: the overlap reads them again.
    seen: dict[tuple[str, int], datetime] = field(default_factory=dict)


class MemberWatch:
    """The watch of one member, while this replica holds it."""

    def __init__(self, feed: ChangeFeed, store: EventStore, settings: WatchSettings) -> None:
        self.feed = feed
        self._store = store
        self._settings = settings
        self._wake = asyncio.Event()
        self._tables: dict[str, _TableState] = {}

    def wake(self) -> None:
        """Read the member now: its source said it changed."""
        self._wake.set()

    async def run(self) -> None:
        member = self.feed.member
        while True:
            try:
                triggered = await self.feed.connect(self.wake)
                await self._load_watermarks()
                log.info(
                    "watching member",
                    extra={"member": member, "mode": "notify" if triggered else "poll"},
                )
                while self.feed.connected:
                    await self.poll()
                    wait = (
                        self._settings.notify_fallback_seconds
                        if triggered
                        else self._settings.poll_interval_seconds
                    )
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._wake.wait(), wait)
                    self._wake.clear()
            except _SOURCE_ERRORS as e:
                log.warning(
                    "change watch of a member failed, retrying",
                    extra={"member": member, "error": type(e).__name__},
                )
                await asyncio.sleep(self._settings.poll_interval_seconds * 2)
            except Exception:
                # A watch that died would still hold the member's lock: keep it alive instead.
                log.exception("change watch of a member broke, retrying", extra={"member": member})
                await asyncio.sleep(self._settings.poll_interval_seconds * 2)
            finally:
                await self.feed.close()

    async def _load_watermarks(self) -> None:
        stored = await self._store.watermarks(self.feed.member)
        first: list[tuple[str, str, datetime]] = []
        for table in self.feed.kinds:
            if table in self._tables:
                continue
            if table in stored:
                self._tables[table] = _TableState(stored[table])
                continue
            # A new watch begins at the present: the member's history is not replayed as events.
            start = await self.feed.now_or_latest(table)
            self._tables[table] = _TableState(start)
            first.append((self.feed.member, table, start))
        await self._store.append([], first)

    async def poll(self) -> None:
        """Record every change since the watermarks."""
        for table, state in self._tables.items():
            await self._poll_table(table, state)

    async def _poll_table(self, table: str, state: _TableState) -> None:
        member = self.feed.member
        overlap = timedelta(seconds=self._settings.overlap_seconds)
        after = (state.watermark - overlap, "")
        while True:
            rows = await self.feed.changes(table, after, self._settings.batch_size)
            if not rows:
                break
            fresh = [r for r in rows if (r.id, r.version) not in state.seen]
            newest = max(state.watermark, rows[-1].updated_at)
            if fresh or newest > state.watermark:
                await self._store.append(
                    [events.of_change(member, r, DetectedBy.WATCHER) for r in fresh],
                    [(member, table, newest)],
                )
            for r in fresh:
                state.seen[(r.id, r.version)] = r.updated_at
            state.watermark = newest
            after = (rows[-1].updated_at, rows[-1].id)
            if len(rows) < self._settings.batch_size:
                break
        horizon = state.watermark - overlap
        state.seen = {k: at for k, at in state.seen.items() if at >= horizon}


Connect = Callable[[], Awaitable[asyncpg.Connection]]


class ChangeWatcher:
    """Claims the watch of every member this replica can, and keeps claiming those it lacks."""

    def __init__(
        self,
        alliance_id: str,
        connect_registry: Connect,
        store: EventStore,
        feeds: list[ChangeFeed],
        settings: WatchSettings,
    ) -> None:
        self._alliance_id = alliance_id
        self._connect = connect_registry
        self._store = store
        self._feeds = {f.member: f for f in feeds}
        self._settings = settings
        self._held: dict[str, asyncio.Task[None]] = {}
        self._watches: dict[str, MemberWatch] = {}
        self._task: asyncio.Task[None] | None = None

    @property
    def held(self) -> set[str]:
        return set(self._held)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="change watcher")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        while True:
            conn: asyncpg.Connection | None = None
            try:
                conn = await self._connect()
                # A source's wake-up may reach any replica (a FHIR server's rest hook lands behind
                # the load balancer): it is relayed here, on the session that holds the watches.
                await listen_for_wakes(conn, self._alliance_id, self._wake_member)
                while not conn.is_closed():
                    await self._claim(conn)
                    await asyncio.sleep(self._settings.claim_interval_seconds)
            except _SOURCE_ERRORS as e:
                log.warning("change watcher lost the registry", extra={"error": type(e).__name__})
            finally:
                # The locks went with the connection: another replica may be watching already.
                await self._release_all()
                if conn is not None and not conn.is_closed():
                    conn.terminate()
            await asyncio.sleep(self._settings.claim_interval_seconds)

    def _wake_member(self, member: str) -> None:
        watch = self._watches.get(member)
        if watch is not None:
            watch.wake()

    async def _claim(self, conn: asyncpg.Connection) -> None:
        unwatched = [m for m in self._feeds if m not in self._held]
        if not unwatched:
            return
        for member in await claim_watches(conn, self._alliance_id, unwatched):
            watch = MemberWatch(self._feeds[member], self._store, self._settings)
            self._watches[member] = watch
            self._held[member] = asyncio.create_task(watch.run(), name=f"watch {member}")

    async def _release_all(self) -> None:
        tasks = list(self._held.values())
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._held.clear()
        self._watches.clear()
