"""Change capture at a member's MySQL/MariaDB exchange database: the rows changed since a
watermark, by (updated_at, key). MySQL has no NOTIFY, so the watch always polls (`connect()` says
so). One connection of its own per watched member, with the member's own credentials, in the
gateway's session (UTC, autocommit: every read sees the latest commits)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime

import aiomysql

from adapters.exchange.changes import WATCHED
from adapters.exchange.columns import ColumnMap
from adapters.mysql import session, values
from adapters.mysql.driver_errors import driver_errors
from adapters.sources.records import ChangeRow


class MysqlChangeFeed:
    """The source port's ChangeFeed over a MySQL/MariaDB exchange database."""

    kinds: tuple[str, ...] = tuple(WATCHED)

    def __init__(
        self,
        member: str,
        dsn: str,
        columns: ColumnMap,
        *,
        timeout_seconds: float = 5.0,
        statement_timeout_seconds: float = 5.0,
    ) -> None:
        self.member = member
        self._options = session.connect_options(dsn, connect_timeout=timeout_seconds)
        self._columns = columns
        self._timeout = timeout_seconds
        self._statement_timeout = statement_timeout_seconds
        self._conn: aiomysql.Connection | None = None
        self._sql = {table: self._changes_sql(table) for table in WATCHED}

    def _changes_sql(self, table: str) -> str:
        watched = WATCHED[table]
        t = self._columns[table]
        key, version, updated = t.col(watched.key), t.col("version"), t.col("updated_at")
        if watched.parties_from is None:
            parties = [f"c.{t.col(p)}" for p in watched.parties]
            join = ""
        else:
            other = self._columns[watched.parties_from]
            parties = [f"p.{other.col(col)}" for col in watched.parties]
            join = f" JOIN {other.name} p ON p.{other.col('id')} = c.{key}"
        # (updated_at, key) > (after, after_key), expanded so that the (updated_at, key) index is
        # range-scanned from the watermark on both engines.
        return (
            f"SELECT c.{key}, c.{version}, c.{updated}{''.join(', ' + p for p in parties)} "
            f"FROM {t.name} c{join} "
            f"WHERE c.{updated} >= %s AND (c.{updated} > %s OR c.{key} > %s) "
            f"ORDER BY c.{updated}, c.{key} LIMIT %s"
        )

    @driver_errors
    async def connect(self, on_notify: Callable[[], None]) -> bool:
        """Opens the feed's connection. Always False: the source cannot push, the watch polls."""
        await self.close()
        conn = await aiomysql.connect(**self._options)
        try:
            async with asyncio.timeout(self._timeout):
                await session.prepare(conn, self._statement_timeout)
        except BaseException:
            conn.close()
            raise
        self._conn = conn
        return False

    @property
    def connected(self) -> bool:
        return self._conn is not None and not self._conn.closed

    async def close(self) -> None:
        if self._conn is not None:
            conn, self._conn = self._conn, None
            conn.close()

    @driver_errors
    async def changes(self, table: str, after: tuple[datetime, str], limit: int) -> list[ChangeRow]:
        """Rows of `table` changed after `after` (updated_at, key; "" before every key), oldest
        first."""
        assert self._conn is not None, "connect() first"
        at = values.param(after[0])
        key = int(after[1]) if after[1] else -1
        async with asyncio.timeout(self._timeout), self._conn.cursor() as cur:
            await cur.execute(self._sql[table], [at, at, key, limit])
            rows = await cur.fetchall()
        return [
            ChangeRow(
                table,
                str(r[0]),
                int(r[1]),
                values.aware(r[2]) or after[0],
                tuple(p for p in r[3:] if p),
            )
            for r in rows
        ]

    @driver_errors
    async def now_or_latest(self, table: str) -> datetime:
        """Where a watch of `table` begins the first time: the present by the database's own
        clock (not ours: the clocks may differ), or a newest row stamped in its future."""
        assert self._conn is not None, "connect() first"
        t = self._columns[table]
        updated = t.col("updated_at")
        async with asyncio.timeout(self._timeout), self._conn.cursor() as cur:
            await cur.execute(
                f"SELECT GREATEST(COALESCE(MAX({updated}), UTC_TIMESTAMP(6)), UTC_TIMESTAMP(6)) "
                f"FROM {t.name}"
            )
            row = await cur.fetchone()
        latest = values.aware(_datetime(row[0]))
        assert latest is not None
        return latest


def _datetime(value: object) -> datetime:
    # GREATEST() of a TIMESTAMP and a DATETIME comes back as DATETIME, or as its text on some
    # server versions.
    if isinstance(value, datetime):
        return value
    if isinstance(value, bytes):
        value = value.decode()
    return datetime.fromisoformat(str(value))
