"""The event log and the change watermarks in the gateway's own database, the NOTIFY channel
that wakes every replica when the log grows, and the one that wakes a member's change watch on
whichever replica holds it."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import datetime

import asyncpg

from adapters.registry.records import EventRecord, NewEvent

CHANNEL = "alliance_events"
# Payload: {"alliance": …, "member": …}. A member's source said it changed (a FHIR rest hook).
WAKE_CHANNEL = "alliance_member_wake"


class EventLogUnavailable(Exception):
    """The event log could not be written: the registry database is down or refused."""


# Held for the rest of an appending transaction: cursors are then committed in the order they are
# taken, and a reader never sees cursor N+1 before N.
_APPEND_LOCK = 0x65766E74

_COLUMNS = (
    "cursor, type, members, entity_type, entity_id, entity_version, occurred_at, recorded_at, "
    "detected_by"
)


async def insert_events(
    conn: asyncpg.Connection, alliance_id: str, events: Sequence[NewEvent]
) -> None:
    """Record `events` inside the caller's transaction; those already recorded are skipped.
    Every replica is woken when the transaction commits."""
    if not events:
        return
    await conn.execute("SELECT pg_advisory_xact_lock($1)", _APPEND_LOCK)
    # One pipelined round trip for the batch; cursors are taken in the batch's order.
    await conn.executemany(
        """INSERT INTO event_log (cursor, alliance_id, type, members, entity_type, entity_id,
               entity_version, occurred_at, detected_by)
           VALUES (nextval('event_log_cursor'), $1, $2, $3, $4, $5,
               coalesce($6, (SELECT coalesce(max(entity_version), 0) + 1 FROM event_log
                             WHERE alliance_id = $1 AND entity_id = $5)),
               $7, $8)
           ON CONFLICT (alliance_id, entity_id, entity_version, type) DO NOTHING""",
        [
            (
                alliance_id,
                e.type,
                list(e.members),
                e.entity_type,
                e.entity_id,
                e.entity_version,
                e.occurred_at,
                e.detected_by,
            )
            for e in events
        ],
    )
    await conn.execute("SELECT pg_notify($1, '')", CHANNEL)


async def claim_watches(
    conn: asyncpg.Connection, alliance_id: str, members: list[str]
) -> list[str]:
    """The members among `members` whose watch this session now holds: a session-level advisory
    lock each, released when the session ends, however it ends."""
    rows = await conn.fetch(
        """SELECT member FROM unnest($1::text[]) AS member
           WHERE pg_try_advisory_lock(hashtextextended($2 || member, 0))""",
        members,
        f"alliance-gateway watch {alliance_id} ",
    )
    return [r["member"] for r in rows]


async def listen_for_wakes(
    conn: asyncpg.Connection, alliance_id: str, on_wake: Callable[[str], None]
) -> None:
    """`on_wake(member)` on this session whenever any replica relays that member's wake-up."""

    def received(_conn: object, _pid: int, _channel: str, payload: str) -> None:
        try:
            wake = json.loads(payload)
        except ValueError:
            return
        if isinstance(wake, dict) and wake.get("alliance") == alliance_id:
            member = wake.get("member")
            if isinstance(member, str):
                on_wake(member)

    await conn.add_listener(WAKE_CHANNEL, received)


class EventStore:
    def __init__(self, pool: asyncpg.Pool, alliance_id: str) -> None:
        self._pool = pool
        self._alliance_id = alliance_id

    async def append(
        self,
        events: Sequence[NewEvent],
        watermarks: Sequence[tuple[str, str, datetime]] = (),
    ) -> None:
        """Record `events` (those already recorded are skipped) and move the (member, table)
        watermarks forward, in one transaction."""
        if not events and not watermarks:
            return
        try:
            await self._append(events, watermarks)
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as e:
            raise EventLogUnavailable(type(e).__name__) from None

    async def _append(
        self, events: Sequence[NewEvent], watermarks: Sequence[tuple[str, str, datetime]]
    ) -> None:
        async with self._pool.acquire() as conn, conn.transaction():
            await insert_events(conn, self._alliance_id, events)
            if watermarks:
                # GREATEST: a replica that lost its watch while appending never moves it back.
                await conn.executemany(
                    """INSERT INTO change_watermark (alliance_id, member, source_table, updated_at)
                       VALUES ($1, $2, $3, $4)
                       ON CONFLICT (alliance_id, member, source_table) DO UPDATE
                       SET updated_at = GREATEST(change_watermark.updated_at, EXCLUDED.updated_at)""",
                    [(self._alliance_id, m, t, at) for m, t, at in watermarks],
                )

    async def wake_watch(self, member: str) -> None:
        """Wakes the change watch of `member`, on whichever replica holds it."""
        payload = json.dumps({"alliance": self._alliance_id, "member": member})
        try:
            await self._pool.execute("SELECT pg_notify($1, $2)", WAKE_CHANNEL, payload)
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError) as e:
            raise EventLogUnavailable(type(e).__name__) from None

    async def after(self, cursor: int, limit: int) -> list[EventRecord]:
        rows = await self._pool.fetch(
            f"""SELECT {_COLUMNS} FROM event_log
                WHERE alliance_id = $1 AND cursor > $2 ORDER BY cursor LIMIT $3""",
            self._alliance_id,
            cursor,
            limit,
        )
        return [EventRecord.from_row(r) for r in rows]

    async def latest(self) -> int:
        """The highest cursor committed so far (0 for an empty log)."""
        value = await self._pool.fetchval(
            """SELECT GREATEST(
                   (SELECT max(cursor) FROM event_log WHERE alliance_id = $1),
                   (SELECT pruned_through FROM event_log_horizon WHERE alliance_id = $1), 0)""",
            self._alliance_id,
        )
        return int(value)

    async def horizon(self) -> int:
        """Events up to this cursor have been removed by retention."""
        value = await self._pool.fetchval(
            "SELECT pruned_through FROM event_log_horizon WHERE alliance_id = $1",
            self._alliance_id,
        )
        return int(value or 0)

    async def prune(self, recorded_before: datetime) -> int:
        """Remove the events recorded before `recorded_before`; how many were removed."""
        async with self._pool.acquire() as conn, conn.transaction():
            gone = await conn.fetchrow(
                """WITH gone AS (
                       DELETE FROM event_log WHERE alliance_id = $1 AND recorded_at < $2
                       RETURNING cursor)
                   SELECT count(*) AS count, max(cursor) AS through FROM gone""",
                self._alliance_id,
                recorded_before,
            )
            count, through = gone["count"], gone["through"]
            if count:
                await conn.execute(
                    """INSERT INTO event_log_horizon (alliance_id, pruned_through) VALUES ($1, $2)
                       ON CONFLICT (alliance_id) DO UPDATE SET pruned_through =
                           GREATEST(event_log_horizon.pruned_through, EXCLUDED.pruned_through)""",
                    self._alliance_id,
                    through,
                )
            return count

    async def watermarks(self, member: str) -> dict[str, datetime]:
        rows = await self._pool.fetch(
            """SELECT source_table, updated_at FROM change_watermark
               WHERE alliance_id = $1 AND member = $2""",
            self._alliance_id,
            member,
        )
        return {r["source_table"]: r["updated_at"] for r in rows}


async def listen(dsn: str, on_notify: Callable[[], None]) -> asyncpg.Connection:
    """A dedicated connection on which `on_notify` is called whenever the log grows."""
    conn = await asyncpg.connect(
        dsn, timeout=5, server_settings={"application_name": "alliance-gateway event hub"}
    )
    await conn.add_listener(CHANNEL, lambda *_: on_notify())
    return conn
