"""The source port over a PostgreSQL exchange database: one pool per member, with that member's
own credentials, bounded size and timeouts. Filters, order, keyset bounds, counts and aggregates
are pushed down into SQL; every value is a bound parameter, every identifier comes from the
checked column map. asyncpg's failures become SourceErrors here, where the driver is called."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

import asyncpg

from adapters.exchange import conditions
from adapters.exchange.changes import PostgresChangeFeed
from adapters.exchange.columns import ColumnMap, Table
from adapters.exchange.driver_errors import driver_errors
from adapters.observe import traced
from adapters.sources import port
from adapters.sources.errors import SourceError, SourceErrorCode
from adapters.sources.port import (
    AggregateRequest,
    AggregateRow,
    Capabilities,
    Children,
    Created,
    CreateRequest,
    LookupRequest,
    Page,
    PageRequest,
    PoolStats,
    RecordKind,
    SourceConfig,
    UpdateRequest,
)
from adapters.sources.records import (
    ListQuery,
)

R = TypeVar("R")

CAPABILITIES = Capabilities(
    serves=frozenset(port.RECORD_KINDS),
    writable=True,
    notifies=True,
    pushdown=conditions.PUSHDOWN,
    key_pattern=conditions.INTEGER_KEY,
)


class _Where(conditions.Where):
    """PostgreSQL's placeholders are numbered; a list is one array parameter."""

    def param(self, value: Any) -> str:
        self.params.append(value)
        return f"${len(self.params)}"

    def any_of(self, column: str, values: Sequence[Any]) -> str:
        return f"{column} = ANY({self.param(list(values))}::text[])"


class PostgresExchange:
    """A member's exchange database on PostgreSQL, as a SourcePort."""

    adapter = "postgres"
    capabilities = CAPABILITIES

    def __init__(
        self,
        member: str,
        dsn: str,
        *,
        columns: ColumnMap | None = None,
        read_only: bool = False,
        pool_max_size: int = 5,
        connect_timeout_seconds: float = 2.0,
        statement_timeout_seconds: float = 5.0,
    ) -> None:
        self.member = member
        self.read_only = read_only
        if read_only:
            self.capabilities = CAPABILITIES.read_only()
        self._dsn = dsn
        self._columns = columns or ColumnMap()
        self._pool_max_size = pool_max_size
        self._connect_timeout = connect_timeout_seconds
        self._statement_timeout_ms = int(statement_timeout_seconds * 1000)
        self._pool: asyncpg.Pool | None = None
        self._pool_lock = asyncio.Lock()

    @classmethod
    def from_config(cls, config: SourceConfig) -> PostgresExchange:
        if not config.dsn:
            raise ValueError(f"member {config.member}: a postgres source needs a dsn")
        return cls(
            config.member,
            config.dsn,
            columns=ColumnMap(config.columns),
            read_only=config.read_only,
            pool_max_size=config.pool_max_size,
            connect_timeout_seconds=config.timeout_seconds,
        )

    def t(self, kind: RecordKind[Any]) -> Table:
        return self._columns[kind.name]

    async def _pool_or_open(self) -> asyncpg.Pool:
        # Created on first use, not at start-up: a member that is down must not stop the gateway,
        # and a member that comes back is reached again without a restart.
        if self._pool is not None:
            return self._pool
        async with self._pool_lock:
            if self._pool is None:
                self._pool = await asyncpg.create_pool(
                    self._dsn,
                    min_size=0,
                    max_size=self._pool_max_size,
                    timeout=self._connect_timeout,
                    max_inactive_connection_lifetime=60,
                    reset=_session_unchanged,
                    server_settings={
                        "application_name": "alliance-gateway",
                        "statement_timeout": str(self._statement_timeout_ms),
                    },
                )
        assert self._pool is not None
        return self._pool

    def pool_stats(self) -> PoolStats | None:
        pool = self._pool
        if pool is None:
            return None
        return PoolStats(
            size=pool.get_size(), idle=pool.get_idle_size(), max_size=pool.get_max_size()
        )

    async def close(self) -> None:
        if self._pool is not None:
            pool, self._pool = self._pool, None
            await pool.close()

    def change_feed(self) -> PostgresChangeFeed:
        return PostgresChangeFeed(self.member, self._dsn, self._columns)

    def _columns_of(self, kind: RecordKind[Any], wanted: frozenset[str] | None = None) -> str:
        """The select list of `kind`'s records: see `_record`."""
        return self.t(kind).record_select(kind.fields, wanted, keys_as_text=True)

    async def _fetch(
        self, kind: RecordKind[R], sql: str, params: Sequence[Any], db: Any = None
    ) -> list[R]:
        rows = await (db or await self._pool_or_open()).fetch(traced(sql), *params)
        record = kind.record
        return [record(*r) for r in rows]

    def _refuse_writes(self) -> None:
        if self.read_only:
            raise SourceError(SourceErrorCode.SOURCE_READ_ONLY, self.member)

    # -- lists -----------------------------------------------------------------------------

    def _where(
        self, kind: RecordKind[Any], q: ListQuery, f: port.RecordFilter, *, bounded: bool
    ) -> _Where:
        w = _Where()
        conditions.list_conditions(
            w, self._columns, kind, q, f, bounded=bounded, member=self.member
        )
        return w

    @driver_errors
    async def page(self, request: PageRequest[R]) -> Page[R]:
        kind, q = request.kind, request.query
        t, sort = self.t(kind), kind.sort_field
        w = self._where(kind, q, request.filter, bounded=True)
        columns = self._columns_of(kind, kind.wanted(request.fields))
        sql = (
            f"SELECT {columns} FROM {t.name} WHERE {w.sql} "
            f"ORDER BY {t.col(sort or 'id')} DESC, {t.col('id')} DESC LIMIT {w.param(q.limit)}"
        )
        if not request.with_total:
            return Page(await self._fetch(kind, sql, w.params))
        counted = self._where(kind, q, request.filter, bounded=False)
        count_sql = f"SELECT count(*) FROM {t.name} WHERE {counted.sql}"
        pool = await self._pool_or_open()
        # Both at once, on two connections: a slow member costs one deadline, not two.
        records, total = await asyncio.gather(
            self._fetch(kind, sql, w.params),
            pool.fetchval(traced(count_sql), *counted.params),
        )
        return Page(records, int(total))

    @driver_errors
    async def aggregate(self, request: AggregateRequest) -> list[AggregateRow]:
        kind, t = request.kind, self.t(request.kind)
        w = self._where(kind, request.query, request.filter, bounded=False)
        groups = [t.col(g) for g in request.group_by]
        sums = [f"coalesce(sum({t.col(s)}), 0)" for s in request.sums]
        group_sql = f" GROUP BY {', '.join(groups)}" if groups else ""
        sql = (
            f"SELECT {', '.join([*groups, 'count(*)', *sums])} FROM {t.name} "
            f"WHERE {w.sql}{group_sql}"
        )
        rows = await (await self._pool_or_open()).fetch(traced(sql), *w.params)
        n = len(groups)
        return [
            AggregateRow(
                group=tuple(r[i] for i in range(n)),
                count=int(r[n]),
                sums=tuple(int(r[i]) for i in range(n + 1, n + 1 + len(sums))),
            )
            for r in rows
        ]

    @driver_errors
    async def lookup(self, request: LookupRequest[R]) -> list[R]:
        kind, t = request.kind, self.t(request.kind)
        keys = conditions.integer_keys(t, request.field, request.values)
        if not keys:
            return []
        w = _Where()
        array = "bigint[]" if t.is_integer_key(request.field) else "text[]"
        w.add(f"{t.col(request.field)} = ANY({{}}::{array})", keys)
        for name, value in request.where:
            w.add(f"{t.col(name)} = {{}}", conditions.integer_key(t, name, value, self.member))
        order = f" ORDER BY {t.col(kind.sort_field)} DESC" if kind.sort_field else ""
        return await self._fetch(
            kind, f"SELECT {self._columns_of(kind)} FROM {t.name} WHERE {w.sql}{order}", w.params
        )

    # -- writes -----------------------------------------------------------------------------

    async def _insert(
        self, kind: RecordKind[R], values: Mapping[str, Any], conn: asyncpg.Connection
    ) -> R:
        t = self.t(kind)
        names = list(values)
        placeholders = ", ".join(f"${i}" for i in range(1, len(names) + 1))
        sql = (
            f"INSERT INTO {t.name} ({t.cols(names)}) VALUES ({placeholders}) "
            f"RETURNING {self._columns_of(kind)}"
        )
        params = [
            conditions.integer_key(t, n, v, self.member) if isinstance(v, str) else v
            for n, v in values.items()
        ]
        return _record(kind, await conn.fetchrow(traced(sql), *params))

    async def _insert_children(
        self, children: Children | None, parent_key: str, conn: asyncpg.Connection
    ) -> None:
        if children is None:
            return
        for values in children.values:
            await self._insert(children.kind, {**values, children.parent_field: parent_key}, conn)

    @driver_errors
    async def create(self, request: CreateRequest[R]) -> Created[R]:
        self._refuse_writes()
        kind, t = request.kind, self.t(request.kind)
        pool = await self._pool_or_open()
        try:
            async with pool.acquire() as conn, conn.transaction():
                record = await self._insert(kind, request.values, conn)
                await self._insert_children(request.children, record.id, conn)  # type: ignore[attr-defined]
                return Created(record, True)
        except asyncpg.UniqueViolationError:
            key = request.values.get("idempotency_key")
            if key is None:
                raise
            existing = await self._fetch(
                kind,
                f"SELECT {self._columns_of(kind)} FROM {t.name} "
                f"WHERE {t.col('idempotency_key')} = $1",
                [key],
            )
            if not existing:
                raise
            return Created(existing[0], False)

    @driver_errors
    async def update(self, request: UpdateRequest[R]) -> R | None:
        self._refuse_writes()
        kind, t, w = request.kind, self.t(request.kind), _Where()
        sets = [f"{t.col(k)} = {w.param(v)}" for k, v in request.changes.items()]
        sets += [f"{t.col('version')} = {t.col('version')} + 1", f"{t.col('updated_at')} = now()"]
        w.add(f"{t.col('id')} = {{}}", conditions.integer_key(t, "id", request.key, self.member))
        w.add(f"{t.col('version')} = {{}}", request.expected_version)
        sql = (
            f"UPDATE {t.name} SET {', '.join(sets)} WHERE {w.sql} "
            f"RETURNING {self._columns_of(kind)}"
        )
        pool = await self._pool_or_open()
        async with pool.acquire() as conn, conn.transaction():
            row = await conn.fetchrow(traced(sql), *w.params)
            if row is None:
                return None
            await self._insert_children(request.children, request.key, conn)
            return _record(kind, row)

    @driver_errors
    async def ping(self) -> None:
        await (await self._pool_or_open()).fetchval("SELECT 1")


async def _session_unchanged(conn: asyncpg.Connection) -> None:
    """The gateway never changes a member connection's session (no LISTEN, SET, advisory lock or
    cursor; settings come with the connection), so a released connection needs no reset query,
    which would cost a round trip per call. asyncpg still rolls back a transaction left open."""


def _record(kind: RecordKind[R], row: Any) -> R:
    # Selected by `_columns_of`: the row holds the record's arguments in order, so no column is
    # looked up by name (records are built by the thousand per page).
    return kind.record(*row)
