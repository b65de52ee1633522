"""Bulk loading into an exchange database: how a hospital's own systems (or the demo acting as
them) fill it. Uses COPY under the hospital's column names."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import asyncpg

from adapters.exchange import exchange_schema_sql, part_2
from adapters.exchange.columns import PART_2_TABLES, TABLES, ColumnMap, quote


async def install_schema(
    conn: asyncpg.Connection, renamed: dict[str, dict[str, str]] | None = None
) -> None:
    """Create the exchange schema; `renamed` gives a hospital's own column names. A database
    that has it already is left alone (its indexes name the hospital's columns, not ours), but
    for the contract's part 2, which one installed before it gets."""
    if await conn.fetchval("SELECT to_regclass('referral') IS NOT NULL"):
        if await conn.fetchval("SELECT to_regclass('specialty_volume') IS NOT NULL"):
            return
        schema, tables = part_2(exchange_schema_sql()), PART_2_TABLES
    else:
        schema, tables = exchange_schema_sql(), tuple(TABLES)
    async with conn.transaction():
        await conn.execute(schema)
        for table, names in (renamed or {}).items():
            if table not in tables:
                continue
            for logical, physical in names.items():
                exists = await conn.fetchval(
                    "SELECT 1 FROM information_schema.columns "
                    "WHERE table_name = $1 AND column_name = $2",
                    table,
                    physical,
                )
                if not exists:
                    await conn.execute(
                        f"ALTER TABLE {quote(table)} RENAME COLUMN {quote(logical)} TO {quote(physical)}"
                    )


async def has_rows(conn: asyncpg.Connection, table: str) -> bool:
    return bool(await conn.fetchval(f"SELECT EXISTS (SELECT 1 FROM {quote(table)})"))


async def load(
    conn: asyncpg.Connection, columns: ColumnMap, table: str, rows: Sequence[dict[str, Any]]
) -> None:
    """COPY `rows` (dicts keyed by logical column names) into `table`."""
    if not rows:
        return
    logical = [c for c in TABLES[table] if c in rows[0]]
    physical = [columns[table].col(c).strip('"') for c in logical]
    await conn.copy_records_to_table(
        table, records=[tuple(r.get(c) for c in logical) for r in rows], columns=physical
    )


async def reset_identity(conn: asyncpg.Connection, table: str) -> None:
    """After loading explicit ids, let new rows continue after the highest one."""
    await conn.execute(
        f"SELECT setval(pg_get_serial_sequence({_literal(table)}, 'id'), "
        f"coalesce((SELECT max(id) FROM {quote(table)}), 0) + 1, false)"
    )


def _literal(name: str) -> str:
    quote(name)  # validates
    return f"'{name}'"
