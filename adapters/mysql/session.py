"""Connections to a member's MySQL/MariaDB exchange database: the DSN, the connect options and
the session every gateway connection runs in.

DSN: `mysql://user:password@host:port/database` (port 3306 by default; `mariadb://` is the same),
or over a Unix socket `mysql://user:password@localhost/database?unix_socket=/run/mysqld/mysqld.sock`;
`?ssl_ca=/path/ca.pem` connects with TLS, verifying the server against that CA. User and password
are percent-encoded, as in any URL.

Every connection's session is set up once, when the adapter first uses it:
- `time_zone = '+00:00'`: TIMESTAMP columns are read and written in UTC, whatever the server's;
- `sql_mode` with ANSI_QUOTES (identifiers are quoted "like this" by `adapters.exchange.columns`,
  as for PostgreSQL) and strict mode (a bad value is an error, never silently truncated);
- the server-side statement limit: MariaDB's `max_statement_time` (seconds, every statement) or
  MySQL's `MAX_EXECUTION_TIME` (milliseconds, SELECTs); a tighter limit the hospital's DBA set for
  the gateway's account (MariaDB: `ALTER USER … WITH MAX_STATEMENT_TIME`) is kept;
- `lock_wait_timeout` and `innodb_lock_wait_timeout` (whole seconds): no lock wait outlives it;
- autocommit: each read sees the latest commits; writes open their own transactions."""

from __future__ import annotations

import math
import ssl
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import aiomysql

SCHEMES = ("mysql", "mariadb")

SQL_MODE = (
    "ANSI_QUOTES,STRICT_ALL_TABLES,NO_ZERO_IN_DATE,NO_ZERO_DATE,"
    "ERROR_FOR_DIVISION_BY_ZERO,NO_ENGINE_SUBSTITUTION"
)


def connect_options(dsn: str, *, connect_timeout: float) -> dict[str, Any]:
    """aiomysql's connect arguments for `dsn` (see the module's docstring)."""
    url = urlsplit(dsn)
    if url.scheme not in SCHEMES:
        raise ValueError(
            f"a mysql source's dsn starts with {' or '.join(s + '://' for s in SCHEMES)}"
        )
    query = {k: v[-1] for k, v in parse_qs(url.query).items()}
    unknown = set(query) - {"unix_socket", "ssl_ca"}
    if unknown:
        raise ValueError(f"unknown mysql dsn options {sorted(unknown)}; known: unix_socket, ssl_ca")
    database = unquote(url.path.lstrip("/"))
    if not database:
        raise ValueError("a mysql source's dsn names its database: mysql://user:pass@host/db")
    options: dict[str, Any] = {
        "user": unquote(url.username or ""),
        "password": unquote(url.password or ""),
        "db": database,
        "host": url.hostname or "localhost",
        "port": url.port or 3306,
        "charset": "utf8mb4",
        "autocommit": True,
        "connect_timeout": connect_timeout,
    }
    if "unix_socket" in query:
        options["unix_socket"] = query["unix_socket"]
    if "ssl_ca" in query:
        options["ssl"] = ssl.create_default_context(cafile=query["ssl_ca"])
    return options


def is_mariadb(conn: aiomysql.Connection) -> bool:
    return "mariadb" in str(conn.get_server_info()).lower()


def session_sql(mariadb: bool, statement_timeout_seconds: float) -> str:
    """The one statement that sets a gateway connection's session up."""
    lock_wait = max(1, math.ceil(statement_timeout_seconds))
    if mariadb:
        limit = f"{statement_timeout_seconds:.3f}"
        statement_limit = (
            f"max_statement_time = IF(@@max_statement_time > 0 AND @@max_statement_time < "
            f"{limit}, @@max_statement_time, {limit})"
        )
    else:
        limit = str(max(1, round(statement_timeout_seconds * 1000)))
        statement_limit = (
            f"MAX_EXECUTION_TIME = IF(@@max_execution_time > 0 AND @@max_execution_time < "
            f"{limit}, @@max_execution_time, {limit})"
        )
    return (
        f"SET SESSION time_zone = '+00:00', sql_mode = '{SQL_MODE}', "
        f"lock_wait_timeout = {lock_wait}, innodb_lock_wait_timeout = {lock_wait}, "
        f"{statement_limit}"
    )


async def prepare(conn: aiomysql.Connection, statement_timeout_seconds: float) -> None:
    async with conn.cursor() as cur:
        await cur.execute(session_sql(is_mariadb(conn), statement_timeout_seconds))
