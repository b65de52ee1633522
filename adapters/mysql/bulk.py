"""Bulk loading into a MySQL/MariaDB exchange database: how a hospital's own systems (or the demo
and the tests, acting as them) fill it. Multi-row INSERTs under the hospital's column names."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import aiomysql

from adapters.exchange import part_2
from adapters.exchange.columns import PART_2_TABLES, TABLES, ColumnMap, quote
from adapters.mysql import exchange_schema_sql, session, values

# Rows per INSERT statement: well under max_allowed_packet (16 MiB by default) for these tables.
BATCH = 500


def schema_statements(schema_sql: str | None = None) -> list[str]:
    """exchange.mysql.sql (or a part of it) as single statements (the driver sends one at a
    time)."""
    lines = [
        line
        for line in (schema_sql or exchange_schema_sql()).splitlines()
        if line.strip() and not line.lstrip().startswith("--")
    ]
    return [s.strip() for s in "\n".join(lines).split(";") if s.strip()]


async def install_schema(
    conn: aiomysql.Connection, renamed: dict[str, dict[str, str]] | None = None
) -> None:
    """Create the exchange schema; `renamed` gives a hospital's own column names. A database
    that has it already is left alone, but for the contract's part 2, which one installed before
    it gets. (DDL commits by itself in MySQL: not one transaction.)"""
    await session.prepare(conn, 60.0)
    async with conn.cursor() as cur:
        if await _has_table(cur, "referral"):
            if await _has_table(cur, "specialty_volume"):
                return
            schema, tables = part_2(exchange_schema_sql()), PART_2_TABLES
        else:
            schema, tables = exchange_schema_sql(), tuple(TABLES)
        for statement in schema_statements(schema):
            await cur.execute(statement)
        for table, names in (renamed or {}).items():
            if table not in tables:
                continue
            for logical, physical in names.items():
                await cur.execute(
                    f"ALTER TABLE {quote(table)} RENAME COLUMN {quote(logical)} TO {quote(physical)}"
                )


async def _has_table(cur: aiomysql.Cursor, table: str) -> bool:
    await cur.execute(
        "SELECT COUNT(*) FROM information_schema.tables "
        "WHERE table_schema = DATABASE() AND table_name = %s",
        [table],
    )
    row = await cur.fetchone()
    return bool(row and row[0])


async def has_rows(conn: aiomysql.Connection, table: str) -> bool:
    async with conn.cursor() as cur:
        await cur.execute(f"SELECT EXISTS (SELECT 1 FROM {quote(table)})")
        row = await cur.fetchone()
    return bool(row and row[0])


async def load(
    conn: aiomysql.Connection, columns: ColumnMap, table: str, rows: Sequence[dict[str, Any]]
) -> None:
    """INSERT `rows` (dicts keyed by logical column names) into `table`, in batches."""
    if not rows:
        return
    logical = [c for c in TABLES[table] if c in rows[0]]
    physical = columns[table].cols(logical)
    one = f"({', '.join(['%s'] * len(logical))})"
    async with conn.cursor() as cur:
        for start in range(0, len(rows), BATCH):
            batch = rows[start : start + BATCH]
            sql = f"INSERT INTO {quote(table)} ({physical}) VALUES {', '.join([one] * len(batch))}"
            await cur.execute(sql, [values.param(r.get(c)) for r in batch for c in logical])
