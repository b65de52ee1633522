"""A MariaDB server of the tests' own (Debian's `mariadb-server` binaries, run as a child of the
test process over a temporary data directory; see gateway.demo.embedded_mariadb), and exchange
databases on it, each with its own account.

The tests that need it skip only when the binaries are not installed on this machine; `.ci/run`
installs them, so CI always runs them."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from dataclasses import dataclass

import aiomysql
import pytest

from adapters.mysql import bulk, session
from gateway.demo.embedded_mariadb import INSTALL_HINT, EmbeddedMariaDB, binaries

_names = itertools.count(1)


def require_mariadb() -> None:
    if binaries() is None:
        pytest.skip(f"MariaDB's server binaries (mariadbd) are not installed: {INSTALL_HINT}")


@dataclass
class MariaDBDatabase:
    server: EmbeddedMariaDB
    name: str
    user: str
    password: str

    @property
    def dsn(self) -> str:
        return self.server.dsn(self.user, self.password, self.name)

    async def connect(self) -> aiomysql.Connection:
        """The member's own account (as its HIS would write), in the gateway's session."""
        conn = await aiomysql.connect(**session.connect_options(self.dsn, connect_timeout=5))
        await session.prepare(conn, 30.0)
        return conn

    async def admin(self) -> aiomysql.Connection:
        """Root, on this database."""
        conn = await self.server.admin()
        await conn.select_db(self.name)
        await session.prepare(conn, 30.0)
        return conn

    async def execute(self, sql: str, *params: object, admin: bool = False) -> None:
        conn = await (self.admin() if admin else self.connect())
        try:
            async with conn.cursor() as cur:
                await cur.execute(sql, list(params) or None)
        finally:
            conn.close()


async def exchange_database(
    server: EmbeddedMariaDB, renamed: dict[str, dict[str, str]] | None = None
) -> MariaDBDatabase:
    """A new database holding the exchange schema, with an account of its own."""
    n = next(_names)
    db = MariaDBDatabase(server, f"exchange_t{n}", f"member_t{n}", f"pw-{n}'\"%")
    await server.ensure_database(db.name, db.user, db.password)
    conn = await db.connect()
    try:
        await bulk.install_schema(conn, renamed)
    finally:
        conn.close()
    return db


@pytest.fixture(scope="session")
async def mariadb_if_installed(
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[EmbeddedMariaDB | None]:
    """The session's MariaDB server, started on first use; None when it is not installed."""
    if binaries() is None:
        yield None
        return
    server = EmbeddedMariaDB(tmp_path_factory.mktemp("mariadb") / "data")
    await server.start()
    yield server
    await server.stop(delete=True)


@pytest.fixture(scope="session")
def mariadb(mariadb_if_installed: EmbeddedMariaDB | None) -> EmbeddedMariaDB:
    """The session's MariaDB server; the test is skipped when it is not installed."""
    if mariadb_if_installed is None:
        require_mariadb()
    assert mariadb_if_installed is not None
    return mariadb_if_installed
