"""The source port over a MySQL 8 / MariaDB 10.11 exchange database: one aiomysql pool per member,
with that member's own credentials, bounded size, connect and read timeouts and a server-side
statement limit (see `session`). Filters, order, keyset bounds, counts and aggregates are pushed
down into SQL; every value is a bound parameter, every identifier comes from the checked column
map (`adapters.exchange.columns`, quoted for the session's ANSI_QUOTES). aiomysql's failures
become SourceErrors here, where the driver is called."""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import aiomysql
from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from adapters.exchange import conditions
from adapters.exchange.columns import ColumnMap, Table
from adapters.mysql import session, values
from adapters.mysql.changes import MysqlChangeFeed
from adapters.mysql.driver_errors import driver_errors, error_number
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

_DUPLICATE_KEY = 1062

# Database spans of the adapter's statements, beneath the member call's span (there is no
# OpenTelemetry instrumentation of aiomysql): stable semantic-convention names, the statement with
# its placeholders, never a value.
_tracer = trace.get_tracer("alliance_gateway.mysql")

CAPABILITIES = Capabilities(
    serves=frozenset(port.RECORD_KINDS),
    writable=True,
    notifies=False,  # MySQL has no NOTIFY: change capture polls by the updated_at watermark
    pushdown=conditions.PUSHDOWN,
    key_pattern=conditions.INTEGER_KEY,
)


class _Where(conditions.Where):
    """MySQL's placeholders are all %s; a list is written out value by value."""

    def param(self, value: Any) -> str:
        self.params.append(values.param(value))
        return "%s"

    def any_of(self, column: str, choices: Sequence[Any]) -> str:
        if not choices:
            return "FALSE"
        return f"{column} IN ({', '.join(self.param(v) for v in choices)})"


class MysqlExchange:
    """A member's exchange database on MySQL or MariaDB, as a SourcePort."""

    adapter = "mysql"
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
        self._options = session.connect_options(dsn, connect_timeout=connect_timeout_seconds)
        self._columns = columns or ColumnMap()
        self._pool_max_size = pool_max_size
        self._statement_timeout = statement_timeout_seconds
        # No statement waits on the socket longer than the server's own limit, plus a margin.
        self._read_timeout = statement_timeout_seconds + 1.0
        self._pool: aiomysql.Pool | None = None
        self._pool_lock = asyncio.Lock()
        self._prepared: weakref.WeakSet[aiomysql.Connection] = weakref.WeakSet()

    @classmethod
    def from_config(cls, config: SourceConfig) -> MysqlExchange:
        if not config.dsn:
            raise ValueError(f"member {config.member}: a mysql source needs a dsn")
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

    async def _pool_or_open(self) -> aiomysql.Pool:
        # Created on first use, not at start-up: a member that is down must not stop the gateway,
        # and a member that comes back is reached again without a restart.
        if self._pool is not None:
            return self._pool
        async with self._pool_lock:
            if self._pool is None:
                self._pool = await aiomysql.create_pool(
                    minsize=0, maxsize=self._pool_max_size, pool_recycle=60, **self._options
                )
        assert self._pool is not None
        return self._pool

    @asynccontextmanager
    async def _connection(self) -> AsyncIterator[aiomysql.Connection]:
        """A pooled connection whose session is set up. A statement cancelled by a deadline
        closes its connection (aiomysql does), so a half-read answer is never reused."""
        pool = await self._pool_or_open()
        async with pool.acquire() as conn:
            if conn not in self._prepared:
                async with asyncio.timeout(self._read_timeout):
                    await session.prepare(conn, self._statement_timeout)
                self._prepared.add(conn)
            yield conn

    @asynccontextmanager
    async def _statement(
        self, conn: aiomysql.Connection, sql: str, params: Sequence[Any]
    ) -> AsyncIterator[aiomysql.Cursor]:
        """Runs one statement, under the read timeout and in a database span; yields its cursor."""
        text = traced(sql)  # names the member call's span, as for PostgreSQL
        parent = trace.get_current_span()
        if not parent.is_recording():
            async with asyncio.timeout(self._read_timeout), conn.cursor() as cur:
                await cur.execute(text, list(params))
                yield cur
            return
        database = self._options["db"]
        # Exceptions are not recorded as they come: the driver's text may quote a value.
        with _tracer.start_as_current_span(
            f"{sql.split(' ', 1)[0]} {database}",
            kind=SpanKind.CLIENT,
            attributes={
                "db.system.name": "mysql",
                "db.namespace": database,
                "db.query.text": text,
                "server.address": self._options["host"],
                "server.port": self._options["port"],
            },
            record_exception=False,
            set_status_on_exception=False,
        ) as span:
            try:
                async with asyncio.timeout(self._read_timeout), conn.cursor() as cur:
                    await cur.execute(text, list(params))
                    yield cur
            except BaseException as e:
                number = error_number(e)
                span.set_attribute("error.type", str(number) if number else type(e).__name__)
                span.set_status(Status(StatusCode.ERROR))
                raise

    async def _query(
        self, conn: aiomysql.Connection, sql: str, params: Sequence[Any]
    ) -> tuple[list[str], list[tuple[Any, ...]]]:
        async with self._statement(conn, sql, params) as cur:
            columns = [d[0] for d in cur.description or ()]
            return columns, list(await cur.fetchall())

    async def _execute(self, conn: aiomysql.Connection, sql: str, params: Sequence[Any]) -> int:
        """Runs a write; the number of rows it changed."""
        async with self._statement(conn, sql, params) as cur:
            return int(cur.rowcount)

    async def _insert_id(self, conn: aiomysql.Connection, sql: str, params: Sequence[Any]) -> int:
        async with self._statement(conn, sql, params) as cur:
            return int(cur.lastrowid)

    def _columns_of(self, kind: RecordKind[Any], wanted: frozenset[str] | None = None) -> str:
        """The select list of `kind`'s records, in the record's order. The fields not `wanted`
        (None: all are) are left out, their columns named in one NULL column: PyMySQL decodes
        every column of every row in Python, NULLs too."""
        return self.t(kind).record_select(
            kind.fields, wanted, keys_as_text=False, unread_in_one=True
        )

    async def _fetch(
        self,
        kind: RecordKind[R],
        sql: str,
        params: Sequence[Any],
        conn: aiomysql.Connection | None = None,
        wanted: frozenset[str] | None = None,
    ) -> list[R]:
        if conn is not None:
            columns, rows = await self._query(conn, sql, params)
        else:
            async with self._connection() as pooled:
                columns, rows = await self._query(pooled, sql, params)
        return values.records(kind, columns, rows, wanted)

    async def _scalar(self, sql: str, params: Sequence[Any]) -> Any:
        async with self._connection() as conn:
            _, rows = await self._query(conn, sql, params)
        return rows[0][0] if rows else None

    def pool_stats(self) -> PoolStats | None:
        pool = self._pool
        if pool is None:
            return None
        return PoolStats(size=pool.size, idle=pool.freesize, max_size=pool.maxsize)

    async def close(self) -> None:
        if self._pool is not None:
            pool, self._pool = self._pool, None
            pool.terminate()
            await pool.wait_closed()

    def change_feed(self) -> MysqlChangeFeed:
        return MysqlChangeFeed(
            self.member, self._dsn, self._columns, statement_timeout_seconds=self._statement_timeout
        )

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
        wanted = kind.wanted(request.fields)
        sql = (
            f"SELECT {self._columns_of(kind, wanted)} FROM {t.name} WHERE {w.sql} "
            f"ORDER BY {t.col(sort or 'id')} DESC, {t.col('id')} DESC LIMIT {int(q.limit)}"
        )
        if not request.with_total:
            return Page(await self._fetch(kind, sql, w.params, wanted=wanted))
        counted = self._where(kind, q, request.filter, bounded=False)
        count_sql = f"SELECT COUNT(*) FROM {t.name} WHERE {counted.sql}"
        # Both at once, on two connections: a slow member costs one deadline, not two.
        records, total = await asyncio.gather(
            self._fetch(kind, sql, w.params, wanted=wanted),
            self._scalar(count_sql, counted.params),
        )
        return Page(records, int(total))

    @driver_errors
    async def aggregate(self, request: AggregateRequest) -> list[AggregateRow]:
        kind, t = request.kind, self.t(request.kind)
        w = self._where(kind, request.query, request.filter, bounded=False)
        groups = [t.col(g) for g in request.group_by]
        sums = [f"COALESCE(SUM({t.col(s)}), 0)" for s in request.sums]
        group_sql = f" GROUP BY {', '.join(groups)}" if groups else ""
        sql = (
            f"SELECT {', '.join([*groups, 'COUNT(*)', *sums])} FROM {t.name} "
            f"WHERE {w.sql}{group_sql}"
        )
        async with self._connection() as conn:
            _, rows = await self._query(conn, sql, w.params)
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
        w.parts.append(w.any_of(t.col(request.field), keys))
        for name, value in request.where:
            w.add(f"{t.col(name)} = {{}}", conditions.integer_key(t, name, value, self.member))
        order = f" ORDER BY {t.col(kind.sort_field)} DESC" if kind.sort_field else ""
        return await self._fetch(
            kind, f"SELECT {self._columns_of(kind)} FROM {t.name} WHERE {w.sql}{order}", w.params
        )

    # -- writes -----------------------------------------------------------------------------

    def _insert_sql(self, t: Table, row: Mapping[str, Any]) -> tuple[str, list[Any]]:
        names = list(row)
        sql = f"INSERT INTO {t.name} ({t.cols(names)}) VALUES ({', '.join(['%s'] * len(names))})"
        params = [
            values.param(conditions.integer_key(t, n, v, self.member) if isinstance(v, str) else v)
            for n, v in row.items()
        ]
        return sql, params

    async def _insert_children(
        self, children: Children | None, parent_key: str, conn: aiomysql.Connection
    ) -> None:
        if children is None:
            return
        t = self.t(children.kind)
        for row in children.values:
            sql, params = self._insert_sql(t, {**row, children.parent_field: parent_key})
            await self._execute(conn, sql, params)

    def _by_key_sql(self, kind: RecordKind[Any]) -> str:
        t = self.t(kind)
        return f"SELECT {self._columns_of(kind)} FROM {t.name} WHERE {t.col('id')} = %s"

    @driver_errors
    async def create(self, request: CreateRequest[R]) -> Created[R]:
        self._refuse_writes()
        kind, t = request.kind, self.t(request.kind)
        try:
            async with self._connection() as conn:
                await conn.begin()
                try:
                    sql, params = self._insert_sql(t, request.values)
                    key = str(await self._insert_id(conn, sql, params))
                    await self._insert_children(request.children, key, conn)
                    created = await self._fetch(kind, self._by_key_sql(kind), [int(key)], conn)
                    await conn.commit()
                except BaseException as e:
                    await _abandon(conn, e)
                    raise
                return Created(created[0], True)
        except aiomysql.IntegrityError as e:
            idempotency_key = request.values.get("idempotency_key")
            if error_number(e) != _DUPLICATE_KEY or idempotency_key is None:
                raise
            existing = await self._fetch(
                kind,
                f"SELECT {self._columns_of(kind)} FROM {t.name} "
                f"WHERE {t.col('idempotency_key')} = %s",
                [idempotency_key],
            )
            if not existing:
                raise
            return Created(existing[0], False)

    @driver_errors
    async def update(self, request: UpdateRequest[R]) -> R | None:
        self._refuse_writes()
        kind, t, w = request.kind, self.t(request.kind), _Where()
        sets = [f"{t.col(k)} = %s" for k in request.changes]
        params = [values.param(v) for v in request.changes.values()]
        sets += [
            f"{t.col('version')} = {t.col('version')} + 1",
            f"{t.col('updated_at')} = CURRENT_TIMESTAMP(6)",
        ]
        key = conditions.integer_key(t, "id", request.key, self.member)
        w.add(f"{t.col('id')} = {{}}", key)
        w.add(f"{t.col('version')} = {{}}", request.expected_version)
        sql = f"UPDATE {t.name} SET {', '.join(sets)} WHERE {w.sql}"
        async with self._connection() as conn:
            await conn.begin()
            try:
                if await self._execute(conn, sql, [*params, *w.params]) == 0:
                    await conn.rollback()
                    return None
                await self._insert_children(request.children, request.key, conn)
                updated = await self._fetch(kind, self._by_key_sql(kind), [key], conn)
                await conn.commit()
            except BaseException as e:
                await _abandon(conn, e)
                raise
            return updated[0]

    @driver_errors
    async def ping(self) -> None:
        await self._scalar("SELECT 1", [])


async def _abandon(conn: aiomysql.Connection, error: BaseException) -> None:
    """Ends a transaction that failed: rolled back when the server refused a statement; closed
    (the server then rolls back) when the call was cancelled or the connection broke. The pool
    drops a closed connection and never takes one back inside a transaction."""
    if conn.closed:
        return
    if not isinstance(error, Exception) or isinstance(error, TimeoutError):
        conn.close()
        return
    try:
        async with asyncio.timeout(2.0):
            await conn.rollback()
    except Exception:
        conn.close()
