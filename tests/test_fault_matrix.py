"""The fault matrix of issue 9: a member whose source is down, slow or misbehaving costs the answer
its own part, never more, and comes back without a restart.

Every case runs against real PostgreSQL: the demo's server (one exchange database per hospital,
each with its own role) or, where the whole server must die or drift from the contract, a second
server this module starts. One member, VICTIM, is faulted; the fault is removed in a `finally`,
since the suite shares the demo's server. Each case:

1. serves an app of its own whose VICTIM has a short deadline, a low circuit threshold and a
   short reset, and asks it once while healthy (the full answer, VICTIM's rows included);
2. injects the fault and asks again: HTTP 200, `data.referrals` holds exactly the page the other
   members give without VICTIM (same ids, same order), one error naming VICTIM with a `SOURCE_*`
   code, never `INTERNAL_SERVER_ERROR`, within one deadline plus a margin with `totalCount`
   selected (page and count must not wait one after the other);
3. asks until `SOURCE_CIRCUIT_OPEN` appears (every fault here says the source is unhealthy), which
   must answer without waiting for the member;
4. removes the fault and asks until the full answer is back, without restarting the app.

Any `SOURCE_*` code is accepted. What each case answered first on main at 8ab4fba, before the
source-port rewrite (driver exception in brackets; ✗ = the case fails there):

| case                 | mechanism                                                    | seen on 8ab4fba |
|----------------------|--------------------------------------------------------------|-----------------|
| connection-refused   | DSN on a loopback port whose listener is closed              | SOURCE_UNAVAILABLE (ConnectionRefusedError) |
| database-closed      | ALTER DATABASE … ALLOW_CONNECTIONS false + terminate         | ✗ INTERNAL_SERVER_ERROR, referrals null (ObjectNotInPrerequisiteStateError 55000) |
| terminated-mid-query | table locked, the gateway's waiting backends terminated      | SOURCE_UNAVAILABLE (ConnectionDoesNotExistError) |
| role-nologin         | ALTER ROLE … NOLOGIN + terminate                             | SOURCE_UNAVAILABLE (InvalidAuthorizationSpecificationError) |
| wrong-password       | the role's password changed under the gateway + terminate    | SOURCE_UNAVAILABLE (InvalidPasswordError) |
| lock-timeout         | ALTER ROLE … SET lock_timeout = '100ms', table locked        | ✗ INTERNAL_SERVER_ERROR, referrals null (LockNotAvailableError 55P03) |
| statement-cancelled  | table locked, waiting statements cancelled (57014)           | SOURCE_UNAVAILABLE (QueryCanceledError) |
| lock-wait            | ACCESS EXCLUSIVE held past the member's deadline             | ✗ SOURCE_TIMEOUT after 2.0 s: page, then count, each waits a deadline |
| server-killed        | own server: kill -9 of postmaster and children mid-query, restarted | SOURCE_UNAVAILABLE (ConnectionDoesNotExistError, then ConnectionRefusedError) |
| column-missing       | own server: referral.diagnosis_name renamed                  | ✗ SOURCE_UNAVAILABLE (UndefinedColumnError) but the circuit never opens: the count still succeeds and resets the breaker |
| table-missing        | own server: referral renamed                                 | SOURCE_UNAVAILABLE (UndefinedTableError) |

The member's own statement timeout cannot be made shorter than its deadline from outside: the
adapter sets `statement_timeout` when it connects, which overrides `ALTER ROLE … SET
statement_timeout`. `lock_timeout` is not set by the adapter, so a DBA's role setting applies, and
cancelling the statement raises the very SQLSTATE (57014) a statement timeout does.

Run: uv run pytest tests/test_fault_matrix.py -s   (-s prints one line per case)
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlsplit, urlunsplit

import asyncpg
import httpx
import pytest

from gateway.app import create_app
from gateway.settings import Settings, load_settings
from tests.conftest import Demo, free_port, serving
from tests.member_server import MemberServer

VICTIM = "LHRM6"  # no other test file faults it, and it holds some of the newest referrals
DEADLINE = 1.0
RESET = 0.5
THRESHOLD = 2
# One deadline plus a margin for the other members and the machine; two deadlines (page, then
# count) do not fit.
WITHIN_DEADLINE = 1.5 * DEADLINE + 0.3
FAST = 0.5  # an open circuit answers without waiting for the member
QUERY = "{ referrals(first: 50) { totalCount edges { node { id fromHospital { code } } } } }"
EXCHANGE_SQL = Path(__file__).resolve().parent.parent / "adapters" / "exchange" / "exchange.sql"


# -- asking --------------------------------------------------------------------------------------


@dataclass
class Answer:
    status: int
    body: dict[str, Any]
    elapsed: float

    @property
    def referrals(self) -> dict[str, Any] | None:
        return (self.body.get("data") or {}).get("referrals")

    @property
    def ids(self) -> list[str]:
        assert self.referrals is not None, self.summary()
        return [e["node"]["id"] for e in self.referrals["edges"]]

    @property
    def total(self) -> int:
        assert self.referrals is not None, self.summary()
        return int(self.referrals["totalCount"])

    @property
    def errors(self) -> list[dict[str, Any]]:
        return list(self.body.get("errors") or [])

    @property
    def codes(self) -> list[str | None]:
        return [(e.get("extensions") or {}).get("code") for e in self.errors]

    def summary(self) -> str:
        errors = [
            ((e.get("extensions") or {}).get("code"), (e.get("extensions") or {}).get("member"))
            for e in self.errors
        ]
        return (
            f"HTTP {self.status} in {self.elapsed:.3f} s, referrals "
            f"{'null' if self.referrals is None else 'present'}, errors {errors}"
        )


Ask = Callable[[], Awaitable[Answer]]


def victim_settings(demo: Demo, victim_dsn: str | None, *, drop_victim: bool = False) -> Settings:
    settings = load_settings(demo.root / "alliance.toml", events={"watch": False})
    members = []
    for m in settings.members:
        if m.code != VICTIM:
            members.append(m)
        elif not drop_victim:
            members.append(
                m.model_copy(
                    update={
                        "dsn": victim_dsn,
                        "dsn_env": None,
                        "timeout_seconds": DEADLINE,
                        "circuit_failure_threshold": THRESHOLD,
                        "circuit_reset_seconds": RESET,
                    }
                )
            )
    return settings.model_copy(update={"members": members})


@asynccontextmanager
async def gateway(settings: Settings, token: str) -> AsyncIterator[Ask]:
    async with serving(create_app(settings)) as base, httpx.AsyncClient(timeout=30) as http:

        async def ask() -> Answer:
            started = time.perf_counter()
            response = await http.post(
                f"{base}/graphql",
                json={"query": QUERY},
                headers={
                    "authorization": f"Bearer {token}",
                    "accept": "application/graphql-response+json",
                },
            )
            elapsed = time.perf_counter() - started
            try:
                body = response.json()
            except json.JSONDecodeError:
                body = {"errors": [{"message": response.text[:200]}]}
            return Answer(response.status_code, body, elapsed)

        yield ask


def assert_partial(answer: Answer, without: Answer, healthy: Answer) -> None:
    """VICTIM's part is missing, all of the others' is there, and one error says why."""
    assert answer.status == 200, answer.summary()
    assert answer.referrals is not None, answer.summary()
    assert len(answer.errors) == 1, answer.summary()
    extensions = answer.errors[0].get("extensions") or {}
    assert extensions.get("member") == VICTIM, answer.summary()
    assert str(extensions.get("code")).startswith("SOURCE_"), answer.summary()
    assert answer.ids == without.ids, "the other members' page, whole and in order"
    # The victim's count is either missing with its rows, or (page and count asked concurrently,
    # the count answered) still in; nothing else.
    assert answer.total in (without.total, healthy.total), answer.summary()
    assert answer.elapsed < WITHIN_DEADLINE, answer.summary()


# -- the servers ---------------------------------------------------------------------------------


def with_database(dsn: str, database: str) -> str:
    url = urlsplit(dsn)
    return urlunsplit((url.scheme, url.netloc, f"/{quote(database)}", url.query, ""))


@dataclass
class Site:
    """Where VICTIM's source lives in one case, and how its DBA reaches it."""

    member_dsn: str  # what the gateway is configured with
    superuser_dsn: str  # a superuser, on the server's `postgres` database
    database: str
    role: str
    password: str
    relay: Relay | None = None
    server: SpareServer | None = None

    @property
    def dba_dsn(self) -> str:
        """A superuser on VICTIM's own database."""
        return with_database(self.superuser_dsn, self.database)


async def terminate_backends(site: Site) -> None:
    """End every session of VICTIM's database (the gateway's pooled connections among them)."""
    admin = await asyncpg.connect(site.superuser_dsn)
    try:
        await admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = $1 AND pid <> pg_backend_pid()",
            site.database,
        )
    finally:
        await admin.close()
    await asyncio.sleep(0.1)  # let the pools see their connections closed


class Relay:
    """A TCP listener on a loopback port that forwards to the demo server's Unix socket; closed,
    the port refuses connections."""

    def __init__(self, target_socket: str) -> None:
        self.target = target_socket
        self.port = free_port()
        self._server: asyncio.Server | None = None
        self._open: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        for writer in list(self._open):
            writer.close()
        self._open.clear()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_unix_connection(self.target)
        except OSError:
            writer.close()
            return
        self._open.update({writer, up_writer})

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(ConnectionError, OSError):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        self._open.difference_update({writer, up_writer})


SPARE_ROLE = "exchange_spare"
SPARE_PASSWORD = "spare-password"


class SpareServer:
    """VICTIM's source on a PostgreSQL server of its own, holding the exchange schema and a few
    referrals (made after the demo's, so on the first page)."""

    rows = 5

    def __init__(self, directory: Path) -> None:
        self.pg = MemberServer(directory)
        self.kills = 0

    def site(self) -> Site:
        return Site(
            member_dsn=self.pg.dsn(SPARE_ROLE, SPARE_PASSWORD, SPARE_ROLE),
            superuser_dsn=self.pg.dsn(),
            database=SPARE_ROLE,
            role=SPARE_ROLE,
            password=SPARE_PASSWORD,
            server=self,
        )

    async def seed(self) -> None:
        admin = await asyncpg.connect(self.pg.dsn())
        try:
            await admin.execute(f"CREATE ROLE {SPARE_ROLE} LOGIN PASSWORD '{SPARE_PASSWORD}'")
            await admin.execute(f"CREATE DATABASE {SPARE_ROLE} OWNER {SPARE_ROLE}")
        finally:
            await admin.close()
        conn = await asyncpg.connect(self.site().member_dsn)
        try:
            await conn.execute(EXCHANGE_SQL.read_text(encoding="utf-8"))
            await conn.executemany(
                """INSERT INTO referral (referral_no, direction, from_hospital, to_hospital,
                     patient_pseudonym, patient_sex, patient_age, diagnosis_code, diagnosis_name,
                     reason, created_at, updated_at)
                   VALUES ($1, 'UP', $2, 'LYZG', $3, 'FEMALE', 70, 'S72.001', '股骨颈骨折',
                     '需手术治疗', now() - $4 * interval '1 second', now())""",
                [(f"SPARE-{i}", VICTIM, f"{i:064x}", i) for i in range(self.rows)],
            )
        finally:
            await conn.close()

    async def kill(self) -> None:
        await self.pg.kill()
        self.kills += 1

    async def restart(self) -> None:
        await self.pg.start()

    def running(self) -> bool:
        return self.pg.running()


class Spare:
    """The second server, started by the first case that needs it and stopped with the module."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.server: SpareServer | None = None

    async def get(self) -> SpareServer:
        if self.server is None:
            self.server = SpareServer(self.directory)
            await self.server.pg.start()
            await self.server.seed()
        return self.server

    async def stop(self) -> None:
        if self.server is not None:
            await self.server.pg.stop()


@pytest.fixture(scope="module")
async def spare(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Spare]:
    holder = Spare(tmp_path_factory.mktemp("spare-pg"))
    yield holder
    await holder.stop()


def demo_site(demo: Demo) -> Site:
    member = next(m for m in demo.info["members"] if m["code"] == VICTIM)
    url = urlsplit(member["dsn"])
    assert url.password is not None and url.username is not None
    return Site(
        member_dsn=member["dsn"],
        superuser_dsn=demo.info["admin_dsn"],
        database=member["database"],
        role=unquote(url.username),
        password=unquote(url.password),
    )


@pytest.fixture(scope="module")
async def without_victim(demo_env: Demo) -> Answer:
    """The answer of the others alone: what a faulted VICTIM must leave, exactly."""
    settings = victim_settings(demo_env, None, drop_victim=True)
    async with gateway(settings, demo_env.token("ALLIANCE_ADMIN")) as ask:
        answer = await ask()
    assert answer.status == 200 and not answer.errors, answer.summary()
    return answer


# -- the faults ----------------------------------------------------------------------------------


Fault = Callable[[Site], AbstractAsyncContextManager[None]]


@asynccontextmanager
async def connection_refused(site: Site) -> AsyncIterator[None]:
    assert site.relay is not None
    await site.relay.stop()
    try:
        yield
    finally:
        await site.relay.start()


@asynccontextmanager
async def database_closed(site: Site) -> AsyncIterator[None]:
    admin = await asyncpg.connect(site.superuser_dsn)
    try:
        await admin.execute(f'ALTER DATABASE "{site.database}" ALLOW_CONNECTIONS false')
        try:
            await terminate_backends(site)
            yield
        finally:
            await admin.execute(f'ALTER DATABASE "{site.database}" ALLOW_CONNECTIONS true')
    finally:
        await admin.close()


@asynccontextmanager
async def role_altered(site: Site, change: str, undo: str) -> AsyncIterator[None]:
    admin = await asyncpg.connect(site.superuser_dsn)
    try:
        await admin.execute(f'ALTER ROLE "{site.role}" {change}')
        try:
            await terminate_backends(site)
            yield
        finally:
            await admin.execute(f'ALTER ROLE "{site.role}" {undo}')
            await terminate_backends(site)
    finally:
        await admin.close()


def role_nologin(site: Site) -> AbstractAsyncContextManager[None]:
    return role_altered(site, "NOLOGIN", "LOGIN")


def wrong_password(site: Site) -> AbstractAsyncContextManager[None]:
    original = site.password.replace("'", "''")
    return role_altered(site, "PASSWORD 'rotated-by-the-dba'", f"PASSWORD '{original}'")


@asynccontextmanager
async def table_locked(site: Site, table: str = "referral") -> AsyncIterator[int]:
    """Another session holds ACCESS EXCLUSIVE on VICTIM's table; yields its backend pid."""
    holder = await asyncpg.connect(site.dba_dsn)
    try:
        tx = holder.transaction()
        await tx.start()
        await holder.execute(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE")
        yield holder.get_server_pid()
        with contextlib.suppress(asyncpg.PostgresError, asyncpg.InterfaceError, OSError):
            await tx.rollback()
    finally:
        holder.terminate()


@asynccontextmanager
async def whenever_waiting(
    site: Site,
    holder_pid: int,
    act: Callable[[asyncpg.Connection, list[int]], Awaitable[None]],
    *,
    once: bool = False,
) -> AsyncIterator[None]:
    """Watches for backends of VICTIM's database waiting on a lock (the gateway's statements:
    nothing else asks there) and acts on them."""
    watcher = await asyncpg.connect(site.superuser_dsn)

    async def watch() -> None:
        while True:
            waiting = [
                r["pid"]
                for r in await watcher.fetch(
                    "SELECT pid FROM pg_stat_activity WHERE datname = $1 "
                    "AND wait_event_type = 'Lock' AND pid <> $2",
                    site.database,
                    holder_pid,
                )
            ]
            if waiting:
                await act(watcher, waiting)
                if once:
                    return
            await asyncio.sleep(0.02)

    task = asyncio.create_task(watch())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        watcher.terminate()


async def _terminate(watcher: asyncpg.Connection, pids: list[int]) -> None:
    await watcher.execute("SELECT pg_terminate_backend(p) FROM unnest($1::int[]) p", pids)


async def _cancel(watcher: asyncpg.Connection, pids: list[int]) -> None:
    await watcher.execute("SELECT pg_cancel_backend(p) FROM unnest($1::int[]) p", pids)


@asynccontextmanager
async def terminated_mid_query(site: Site) -> AsyncIterator[None]:
    async with table_locked(site) as holder, whenever_waiting(site, holder, _terminate):
        yield


@asynccontextmanager
async def statement_cancelled(site: Site) -> AsyncIterator[None]:
    async with table_locked(site) as holder, whenever_waiting(site, holder, _cancel):
        yield


@asynccontextmanager
async def lock_timeout(site: Site) -> AsyncIterator[None]:
    async with (
        role_altered(site, "SET lock_timeout = '100ms'", "RESET lock_timeout"),
        table_locked(site),
    ):
        yield


@asynccontextmanager
async def lock_wait(site: Site) -> AsyncIterator[None]:
    async with table_locked(site):
        yield


@asynccontextmanager
async def server_killed(site: Site) -> AsyncIterator[None]:
    """The first statement after the fault waits on a lock; while it is in flight, the whole
    server is killed. It stays down until the fault is removed, then restarts."""
    server = site.server
    assert server is not None

    async def kill(_: asyncpg.Connection, __: list[int]) -> None:
        await server.kill()

    try:
        async with table_locked(site) as holder, whenever_waiting(site, holder, kill, once=True):
            yield
            assert server.kills, "the server was killed while the gateway's statement waited"
    finally:
        if not server.running():
            await server.restart()


@asynccontextmanager
async def ddl(site: Site, change: str, undo: str) -> AsyncIterator[None]:
    admin = await asyncpg.connect(site.dba_dsn)
    try:
        await admin.execute(change)
        try:
            yield
        finally:
            await admin.execute(undo)
    finally:
        await admin.close()


def column_missing(site: Site) -> AbstractAsyncContextManager[None]:
    return ddl(
        site,
        "ALTER TABLE referral RENAME COLUMN diagnosis_name TO diagnosis_title",
        "ALTER TABLE referral RENAME COLUMN diagnosis_title TO diagnosis_name",
    )


def table_missing(site: Site) -> AbstractAsyncContextManager[None]:
    return ddl(
        site,
        "ALTER TABLE referral RENAME TO referral_v0",
        "ALTER TABLE referral_v0 RENAME TO referral",
    )


@dataclass(frozen=True)
class Case:
    id: str
    fault: Fault
    where: str = "demo"  # demo | relay (the demo's server through a loopback port) | spare


CASES = [
    Case("connection-refused", connection_refused, where="relay"),
    Case("database-closed", database_closed),
    Case("terminated-mid-query", terminated_mid_query),
    Case("role-nologin", role_nologin),
    Case("wrong-password", wrong_password),
    Case("lock-timeout", lock_timeout),
    Case("statement-cancelled", statement_cancelled),
    Case("lock-wait", lock_wait),
    Case("server-killed", server_killed, where="spare"),
    Case("column-missing", column_missing, where="spare"),
    Case("table-missing", table_missing, where="spare"),
]


@asynccontextmanager
async def site_for(case: Case, demo: Demo, spare: Spare) -> AsyncIterator[Site]:
    if case.where == "spare":
        yield (await spare.get()).site()
        return
    site = demo_site(demo)
    if case.where == "demo":
        yield site
        return
    socket_dir = dict(p.split("=", 1) for p in urlsplit(site.member_dsn).query.split("&"))["host"]
    relay = Relay(f"{unquote(socket_dir)}/.s.PGSQL.5432")
    await relay.start()
    try:
        yield Site(
            member_dsn=(
                f"postgresql://{quote(site.role)}:{quote(site.password)}"
                f"@127.0.0.1:{relay.port}/{quote(site.database)}"
            ),
            superuser_dsn=site.superuser_dsn,
            database=site.database,
            role=site.role,
            password=site.password,
            relay=relay,
        )
    finally:
        await relay.stop()


# -- the test ------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
async def test_a_faulty_member_costs_only_its_part(
    case: Case, demo_env: Demo, without_victim: Answer, spare: Spare
) -> None:
    started = time.perf_counter()
    async with site_for(case, demo_env, spare) as site:
        settings = victim_settings(demo_env, site.member_dsn)
        async with gateway(settings, demo_env.token("ALLIANCE_ADMIN")) as ask:
            healthy = await ask()
            assert healthy.status == 200 and not healthy.errors, healthy.summary()
            assert healthy.ids != without_victim.ids, f"{VICTIM} has rows on the first page"
            assert healthy.total > without_victim.total

            seen: list[Answer] = []
            async with case.fault(site):
                first = await ask()
                seen.append(first)
                print(f"\n[{case.id}] first answer: {first.summary()}")
                assert_partial(first, without_victim, healthy)
                assert first.codes != ["SOURCE_CIRCUIT_OPEN"], "the circuit was closed"
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
