"""Change capture at a member's exchange database: the rows changed since a watermark, and the
optional NOTIFY trigger (change_notify.sql) that says when to look. One dedicated connection per
watched member, with the member's own credentials."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from adapters.exchange.columns import ColumnMap
from adapters.exchange.driver_errors import driver_errors
from adapters.sources.records import ChangeRow

NOTIFY_CHANNEL = "alliance_exchange_change"
TRIGGER_NAME = "alliance_change_notify"


@dataclass(frozen=True, slots=True)
class _Watched:
    """How to read one table's changes: its key, and the columns naming the parties."""

    key: str
    parties: tuple[str, ...]
    # The table whose party columns apply, joined on key = its id (a report's consultation).
    parties_from: str | None = None


WATCHED: dict[str, _Watched] = {
    "referral": _Watched("id", ("from_hospital", "to_hospital")),
    "consultation": _Watched("id", ("requesting_hospital", "invited_hospital")),
    "consultation_report": _Watched(
        "consultation_id", ("requesting_hospital", "invited_hospital"), parties_from="consultation"
    ),
    "training_event": _Watched("id", ("host_hospital",)),
    "test_result": _Watched("id", ()),
    "recognition_decision": _Watched("id", ("result_member",)),
}


class PostgresChangeFeed:
    """The source port's ChangeFeed over a PostgreSQL exchange database."""

    kinds: tuple[str, ...] = tuple(WATCHED)

    def __init__(
        self, member: str, dsn: str, columns: ColumnMap, *, timeout_seconds: float = 5.0
    ) -> None:
        self.member = member
        self._dsn = dsn
        self._columns = columns
        self._timeout = timeout_seconds
        self._conn: asyncpg.Connection | None = None
        self._sql = {table: self._changes_sql(table) for table in WATCHED}

    def _changes_sql(self, table: str) -> str:
        watched = WATCHED[table]
        t = self._columns[table]
        key, version, updated = t.col(watched.key), t.col("version"), t.col("updated_at")
        if watched.parties_from is None:
            parties = ", ".join(f"c.{t.col(p)}" for p in watched.parties)
            join = ""
        else:
            other = self._columns[watched.parties_from]
            parties = ", ".join(f"p.{other.col(col)}" for col in watched.parties)
            join = f"JOIN {other.name} p ON p.{other.col('id')} = c.{key}"
        return (
            f"SELECT c.{key}::text AS id, c.{version} AS version, c.{updated} AS updated_at, "
            f"ARRAY[{parties}]::text[] AS parties FROM {t.name} c {join} "
            f"WHERE c.{updated} >= $1 AND (c.{updated}, c.{key}) > ($1, $2::bigint) "
            f"ORDER BY c.{updated}, c.{key} LIMIT $3"
        )

    @driver_errors
    async def connect(self, on_notify: Callable[[], None]) -> bool:
        """Opens the feed's connection; True when the member has the NOTIFY trigger installed,
        in which case `on_notify` is called whenever a watched table changes."""
        self._conn = await asyncpg.connect(
            self._dsn,
            timeout=self._timeout,
            command_timeout=self._timeout,
            server_settings={"application_name": "alliance-gateway change watcher"},
        )
        triggered = await self._conn.fetchval(
            "SELECT count(DISTINCT tgrelid) FROM pg_trigger WHERE tgname = $1", TRIGGER_NAME
        )
        if triggered:
            await self._conn.add_listener(NOTIFY_CHANNEL, lambda *_: on_notify())
        return bool(triggered)

    @property
    def connected(self) -> bool:
        return self._conn is not None and not self._conn.is_closed()

    async def close(self) -> None:
        if self._conn is not None:
            conn, self._conn = self._conn, None
            try:
                await conn.close(timeout=self._timeout)
            except (OSError, asyncpg.PostgresError, TimeoutError):
                conn.terminate()

    @driver_errors
    async def changes(self, table: str, after: tuple[datetime, str], limit: int) -> list[ChangeRow]:
        """Rows of `table` changed after `after` (updated_at, key; "" before every key), oldest
        first."""
        assert self._conn is not None, "connect() first"
        key = int(after[1]) if after[1] else -1
        rows = await self._conn.fetch(self._sql[table], after[0], key, limit)
        return [
            ChangeRow(
                table, r["id"], r["version"], r["updated_at"], tuple(p for p in r["parties"] if p)
            )
            for r in rows
        ]

    @driver_errors
    async def now_or_latest(self, table: str) -> datetime:
        """Where a watch of `table` begins the first time: the present by the database's own
        clock (not ours: the clocks may differ), or a newest row stamped in its future."""
        assert self._conn is not None, "connect() first"
        t = self._columns[table]
        latest: datetime = await self._conn.fetchval(
            f"SELECT greatest(max({t.col('updated_at')}), now()) FROM {t.name}"
        )
        return latest
