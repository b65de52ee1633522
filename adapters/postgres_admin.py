"""Provisioning on a PostgreSQL server the gateway administers (the embedded demo's): roles and
databases, each database owned by its own login role."""

from __future__ import annotations

import asyncpg


def _ident(name: str) -> str:
    if not name.replace("_", "").isalnum() or not name[0].isalpha():
        raise ValueError(f"unsafe SQL identifier {name!r}")
    return '"' + name + '"'


async def ensure_role(admin: asyncpg.Connection, role: str, password: str) -> None:
    exists = await admin.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", role)
    verb = "ALTER" if exists else "CREATE"
    # Passwords cannot be bound as parameters in DDL; quote_literal makes the literal safe.
    literal = await admin.fetchval("SELECT quote_literal($1)", password)
    await admin.execute(f"{verb} ROLE {_ident(role)} LOGIN PASSWORD {literal}")


async def ensure_database(admin: asyncpg.Connection, database: str, owner: str) -> None:
    exists = await admin.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", database)
    if not exists:
        await admin.execute(f"CREATE DATABASE {_ident(database)} OWNER {_ident(owner)}")
    await admin.execute(f"REVOKE ALL ON DATABASE {_ident(database)} FROM PUBLIC")
    await admin.execute(f"GRANT ALL ON DATABASE {_ident(database)} TO {_ident(owner)}")


async def hba_file(admin: asyncpg.Connection) -> str:
    return await admin.fetchval("SHOW hba_file")


async def reload_config(admin: asyncpg.Connection) -> None:
    await admin.execute("SELECT pg_reload_conf()")


async def set_max_connections(admin: asyncpg.Connection, value: int) -> None:
    await admin.execute(f"ALTER SYSTEM SET max_connections = {int(value)}")
