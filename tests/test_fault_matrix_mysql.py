"""The fault matrix for a member whose exchange database is MySQL/MariaDB: the member's source
down, misconfigured or drifted from the contract costs the answer its own part, never more, and
comes back without a restart. As tests/test_fault_matrix.py (whose answers, settings and checks
this reuses), through the real app, with VICTIM served by the mysql adapter from a MariaDB server
of this module's own.

| case            | mechanism                                                             | first answer |
|-----------------|-----------------------------------------------------------------------|--------------|
| server-killed   | kill -9 of mariadbd while the gateway's statement waits on a lock      | SOURCE_UNAVAILABLE (2013 lost connection, then 2003 refused) |
| wrong-password  | the account's password changed under the gateway, its sessions killed | SOURCE_ACCESS_DENIED (1045) |
| statement-limit | the DBA's MAX_STATEMENT_TIME 0.2 s for the account, the table locked  | SOURCE_TIMEOUT (1969 max_statement_time exceeded) |
| table-missing   | referral renamed                                                      | SOURCE_SCHEMA_MISMATCH (1146) |

Run: uv run pytest tests/test_fault_matrix_mysql.py -s   (-s prints one line per case)
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import aiomysql
import pytest

from adapters.exchange.columns import ColumnMap
from adapters.mysql import bulk
from gateway.demo.embedded_mariadb import EmbeddedMariaDB
from gateway.settings import Settings, load_settings
from tests.conftest import Demo
from tests.mariadb_server import MariaDBDatabase, exchange_database, require_mariadb
from tests.test_fault_matrix import (
    DEADLINE,
    FAST,
    RESET,
    THRESHOLD,
    VICTIM,
    Answer,
    assert_partial,
    gateway,
    without_victim,  # noqa: F401  (a fixture: the others' answer alone)
)

ROWS = 5


@dataclass
class Site:
    server: EmbeddedMariaDB
    db: MariaDBDatabase
    kills: int = 0


@pytest.fixture(scope="module")
async def site(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Site]:
    require_mariadb()
    server = EmbeddedMariaDB(tmp_path_factory.mktemp("mariadb-faults") / "data")
    await server.start()
    try:
        db = await exchange_database(server)
        now = datetime.now(UTC)
        conn = await db.connect()
        try:
            await bulk.load(
                conn,
                ColumnMap(),
                "referral",
                [
                    {
                        "referral_no": f"MYSQL-{i}",
                        "direction": "UP",
                        "from_hospital": VICTIM,
                        "to_hospital": "LYZG",
                        "patient_pseudonym": f"{i:064x}",
                        "patient_sex": "FEMALE",
                        "patient_age": 70,
                        "diagnosis_code": "S72.001",
                        "diagnosis_name": "股骨颈骨折",
                        "reason": "需手术治疗",
                        # Newer than the demo's, so on the first page.
                        "created_at": now - timedelta(seconds=i),
                        "updated_at": now,
                    }
                    for i in range(ROWS)
                ],
            )
        finally:
            conn.close()
        yield Site(server, db)
    finally:
        await server.stop(delete=True)


def mysql_victim_settings(demo: Demo, dsn: str) -> Settings:
    settings = load_settings(demo.root / "alliance.toml", events={"watch": False})
    members = [
        m
        if m.code != VICTIM
        else m.model_copy(
            update={
                "kind": "mysql",
                "dsn": dsn,
                "dsn_env": None,
                "columns": {},
                "timeout_seconds": DEADLINE,
                "circuit_failure_threshold": THRESHOLD,
                "circuit_reset_seconds": RESET,
            }
        )
        for m in settings.members
    ]
    return settings.model_copy(update={"members": members})


# -- the faults ----------------------------------------------------------------------------------


async def _root(site: Site) -> aiomysql.Connection:
    return await site.db.admin()


async def _sql(conn: aiomysql.Connection, sql: str, *params: object) -> list[tuple[object, ...]]:
    async with conn.cursor() as cur:
        await cur.execute(sql, list(params) or None)
        return list(await cur.fetchall())


async def kill_sessions(site: Site) -> None:
    """Ends every session of the member's account (the gateway's pooled connections)."""
    root = await _root(site)
    try:
        for (pid,) in await _sql(
            root, "SELECT id FROM information_schema.processlist WHERE user = %s", site.db.user
        ):
            with contextlib.suppress(aiomysql.Error):
                await _sql(root, f"KILL CONNECTION {int(str(pid))}")
    finally:
        root.close()
    await asyncio.sleep(0.1)


@asynccontextmanager
async def table_locked(site: Site) -> AsyncIterator[None]:
    """Another session holds the referral table locked for writing."""
    holder = await _root(site)
    try:
        await _sql(holder, "LOCK TABLES referral WRITE")
        yield
        with contextlib.suppress(aiomysql.Error, OSError):
            await _sql(holder, "UNLOCK TABLES")
    finally:
        holder.close()


async def _waiting(site: Site) -> bool:
    root = await _root(site)
    try:
        rows = await _sql(
            root,
            "SELECT COUNT(*) FROM information_schema.processlist WHERE user = %s AND state LIKE %s",
            site.db.user,
            "%lock%",
        )
        return bool(rows and rows[0][0])
    finally:
        root.close()


@asynccontextmanager
async def server_killed(site: Site) -> AsyncIterator[None]:
    """The first statement after the fault waits on a lock; while it is in flight, the whole
    server is killed. It stays down until the fault is removed, then restarts."""

    async def kill_when_waiting() -> None:
        # The server's process list, polled: nothing there could set an Event.
        while not await _waiting(site):  # noqa: ASYNC110
            await asyncio.sleep(0.02)
        await site.server.kill()
        site.kills += 1

    try:
        async with table_locked(site):
            killer = asyncio.create_task(kill_when_waiting())
            try:
                yield
                assert site.kills, "the server was killed while the gateway's statement waited"
            finally:
                killer.cancel()
                with contextlib.suppress(asyncio.CancelledError, aiomysql.Error, OSError):
                    await killer
    finally:
        if not site.server.running():
            await site.server.start()


@asynccontextmanager
async def wrong_password(site: Site) -> AsyncIterator[None]:
    await site.db.execute(
        "ALTER USER %s@'%%' IDENTIFIED BY 'rotated-by-the-dba'", site.db.user, admin=True
    )
    try:
        await kill_sessions(site)
        yield
    finally:
        await site.db.execute(
            "ALTER USER %s@'%%' IDENTIFIED BY %s", site.db.user, site.db.password, admin=True
        )


@asynccontextmanager
async def statement_limit(site: Site) -> AsyncIterator[None]:
    await site.db.execute(
        "ALTER USER %s@'%%' WITH MAX_STATEMENT_TIME 0.2", site.db.user, admin=True
    )
    try:
        await kill_sessions(site)  # new sessions start under the account's limit
        async with table_locked(site):
            yield
    finally:
        await site.db.execute(
            "ALTER USER %s@'%%' WITH MAX_STATEMENT_TIME 0", site.db.user, admin=True
        )
        await kill_sessions(site)


@asynccontextmanager
async def table_missing(site: Site) -> AsyncIterator[None]:
    await site.db.execute("RENAME TABLE referral TO referral_v0", admin=True)
    try:
        yield
    finally:
        await site.db.execute("RENAME TABLE referral_v0 TO referral", admin=True)


@dataclass(frozen=True)
class Case:
    id: str
    fault: Callable[[Site], AbstractAsyncContextManager[None]]
    codes: frozenset[str]  # what the first answer may say


CASES = [
    Case("server-killed", server_killed, frozenset({"SOURCE_UNAVAILABLE"})),
    Case("wrong-password", wrong_password, frozenset({"SOURCE_ACCESS_DENIED"})),
    Case("statement-limit", statement_limit, frozenset({"SOURCE_TIMEOUT"})),
    Case("table-missing", table_missing, frozenset({"SOURCE_SCHEMA_MISMATCH"})),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
async def test_a_faulty_mysql_member_costs_only_its_part(
    case: Case,
    demo_env: Demo,
    without_victim: Answer,  # noqa: F811  (the fixture imported above)
    site: Site,
) -> None:
    started = time.perf_counter()
    settings = mysql_victim_settings(demo_env, site.db.dsn)
    async with gateway(settings, demo_env.token("ALLIANCE_ADMIN")) as ask:
        healthy = await ask()
        assert healthy.status == 200 and not healthy.errors, healthy.summary()
        assert healthy.ids != without_victim.ids, f"{VICTIM}'s MariaDB rows are on the first page"
        assert healthy.total == without_victim.total + ROWS

        seen: list[Answer] = []
        async with case.fault(site):
            first = await ask()
            seen.append(first)
            print(f"\n[{case.id}] first answer: {first.summary()}")
            assert_partial(first, without_victim, healthy)
            assert set(first.codes) <= case.codes, first.summary()
            for _ in range(4):
                answer = await ask()
                seen.append(answer)
                assert_partial(answer, without_victim, healthy)
                if answer.codes == ["SOURCE_CIRCUIT_OPEN"]:
                    break
            print(f"[{case.id}] then: {[f'{a.codes[0]} {a.elapsed:.3f}s' for a in seen]}")
            opened = seen[-1]
            assert opened.codes == ["SOURCE_CIRCUIT_OPEN"], (
                f"the circuit did not open after {len(seen)} failing answers"
            )
            assert opened.elapsed < FAST, opened.summary()

        fault_removed = time.perf_counter()
        recovered: Answer | None = None
        while time.perf_counter() - fault_removed < RESET + 4.0:
            await asyncio.sleep(RESET / 2)
            answer = await ask()
            if not answer.errors and answer.referrals is not None:
                recovered = answer
                break
        assert recovered is not None, f"{VICTIM} did not come back: {answer.summary()}"
        assert recovered.ids == healthy.ids and recovered.total == healthy.total
        print(
            f"[{case.id}] recovered {time.perf_counter() - fault_removed:.2f} s after the "
            f"fault was removed; case took {time.perf_counter() - started:.1f} s"
        )
