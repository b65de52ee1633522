"""The registry's hospitals, kept between requests for the names a page shows.

Every page of referrals or consultations names its hospitals, and reading them was one more
registry round trip on every page, after the members had answered. Hospitals change seldom (a
name, a level, the beds) and only in the registry, so each replica keeps those it has read and
forgets them all whenever the table changes: a trigger NOTIFYs `alliance_hospital_changed` on every
statement that changes it, whoever runs it (migration 0010), and a connection of the cache's own
listens. While that connection is not open (starting, or lost) nothing is kept and every read goes
to the registry, so no change is missed; a change is seen once its notification arrives, as an
event is. Writes and the rules that check them read the registry itself (`RegistryStore.hospitals`),
never this."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence

import asyncpg

from adapters.registry.records import HospitalRecord

log = logging.getLogger(__name__)

CHANNEL = "alliance_hospital_changed"

Read = Callable[[Sequence[str]], Awaitable[list[HospitalRecord]]]
Connect = Callable[[], Awaitable[asyncpg.Connection]]


class HospitalCache:
    def __init__(self, read: Read, connect: Connect, *, retry_seconds: float = 1.0) -> None:
        self._read = read
        self._connect = connect
        self._retry_seconds = retry_seconds
        self._kept: dict[str, HospitalRecord] = {}
        # Counts what the registry said changed: a read that began before a change keeps nothing.
        self._changes = 0
        self._listening = False
        self._task: asyncio.Task[None] | None = None

    async def hospitals(self, codes: Sequence[str]) -> list[HospitalRecord]:
        """The hospitals among `codes`, in no particular order; those not kept are read."""
        if not self._listening:
            return await self._read(codes)
        kept = self._kept
        found = [kept[code] for code in codes if code in kept]
        missing = [code for code in codes if code not in kept]
        if missing:
            changes = self._changes
            read = await self._read(missing)
            if self._listening and changes == self._changes:
                kept.update((record.code, record) for record in read)
            found.extend(read)
        return found

    @property
    def listening(self) -> bool:
        """Whether hospitals are kept: only while the registry can say when they change."""
        return self._listening

    def forget(self) -> None:
        self._kept.clear()
        self._changes += 1

    async def start(self) -> None:
        """Listens from now on, and reads the registry for every request until it does."""
        self._task = asyncio.create_task(self._listen())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _listen(self) -> None:
        while True:
            try:
                await self._session()
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError) as e:
                log.warning(
                    "hospital cache lost the registry, reading it for every request meanwhile",
                    extra={"error": type(e).__name__},
                )
            await asyncio.sleep(self._retry_seconds)

    async def _session(self) -> None:
        """Keeps hospitals for as long as one listening connection lasts."""
        conn = await self._connect()
        lost = asyncio.Event()
        try:
            conn.add_termination_listener(lambda _conn: lost.set())
            await conn.add_listener(CHANNEL, lambda *_: self.forget())
            self.forget()
            self._listening = True
            while not conn.is_closed():
                # A safety net: the termination listener is how a lost connection is told.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(lost.wait(), 5.0)
        finally:
            self._listening = False
            self.forget()
            if not conn.is_closed():
                conn.terminate()
