"""A member whose source fails, hangs or recovers, seen through the real app. The member's
database is reached through a Unix-socket relay the test controls."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from gateway.app import create_app
from gateway.settings import MemberSourceSettings, load_settings
from tests.conftest import Demo, error_codes, serving

# A page deep enough that MEMBER is on it whatever the other tests have just created.
QUERY = """{ referrals(first: 100) { edges { node { fromHospital { code } } } } }"""
MEMBER = "LHZX"


class Relay:
    """Forwards connections to a PostgreSQL Unix socket; can refuse them or let them hang."""

    def __init__(self, target_socket: str, directory: Path) -> None:
        self.target = target_socket
        self.path = directory / ".s.PGSQL.5432"
        self.mode = "pass"
        self._server: asyncio.Server | None = None
        self._open: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_unix_server(self._serve, path=str(self.path))

    async def stop(self) -> None:
        if self._server:
            self._server.close()
        for writer in list(self._open):
            writer.close()

    def set(self, mode: str) -> None:
        self.mode = mode
        if mode != "pass":
            for writer in list(self._open):
                writer.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.mode == "refuse":
            writer.close()
            return
        if self.mode == "hang":
            self._open.add(writer)
            await reader.read()  # never forwards; the gateway's deadline must end it
            return
        up_reader, up_writer = await asyncio.open_unix_connection(self.target)
        self._open.update({writer, up_writer})

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(ConnectionError, OSError):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))


@pytest.fixture
async def relayed(demo_env: Demo, tmp_path: Path) -> AsyncIterator[tuple[str, Relay]]:
    member = next(m for m in demo_env.info["members"] if m["code"] == MEMBER)
    url = urlsplit(member["dsn"])
    socket_dir = parse_qs(url.query)["host"][0]
    relay_dir = Path("/tmp") / f"relay-{tmp_path.name[-12:]}"
    relay_dir.mkdir(exist_ok=True)
    relay = Relay(f"{socket_dir}/.s.PGSQL.5432", relay_dir)
    await relay.start()
    settings = load_settings(demo_env.root / "alliance.toml")
    members = [
        MemberSourceSettings(
            **{
                **m.model_dump(),
                "dsn": member["dsn"].replace(socket_dir, str(relay_dir)),
                "timeout_seconds": 0.5,
                "circuit_failure_threshold": 2,
                "circuit_reset_seconds": 1.0,
            }
        )
        if m.code == MEMBER
        else m
        for m in settings.members
    ]
    app = create_app(settings.model_copy(update={"members": members}))
    async with serving(app) as base:
        yield base, relay
    await relay.stop()


async def _ask(base: str, token: str) -> tuple[dict, float]:
    async with httpx.AsyncClient(timeout=10) as client:
        started = time.perf_counter()
        response = await client.post(
            f"{base}/graphql", json={"query": QUERY}, headers={"authorization": f"Bearer {token}"}
        )
        elapsed = time.perf_counter() - started
    assert response.status_code == 200
    return response.json(), elapsed


def _members(body: dict) -> set[str]:
    return {e["node"]["fromHospital"]["code"] for e in body["data"]["referrals"]["edges"]}


async def test_a_failing_member_costs_its_part_only_and_comes_back(
    relayed: tuple[str, Relay], demo_env: Demo
) -> None:
    base, relay = relayed
    token = demo_env.token("SECRETARIAT")
    body, _ = await _ask(base, token)
    assert "errors" not in body and MEMBER in _members(body)

    relay.set("hang")
    body, elapsed = await _ask(base, token)
    assert error_codes(body) == ["SOURCE_TIMEOUT"]
    assert body["errors"][0]["extensions"]["member"] == MEMBER
    assert MEMBER not in _members(body) and len(_members(body)) >= 3
    assert elapsed < 1.5

    body, _ = await _ask(base, token)  # the second failure opens the circuit
    body, elapsed = await _ask(base, token)
    assert error_codes(body) == ["SOURCE_CIRCUIT_OPEN"]
    assert elapsed < 0.4, "an open circuit answers without waiting for the member"

    relay.set("refuse")
    await asyncio.sleep(1.1)
    body, _ = await _ask(base, token)
    assert error_codes(body) == ["SOURCE_UNAVAILABLE"]

    relay.set("pass")
    await asyncio.sleep(1.1)
    body, _ = await _ask(base, token)
    assert "errors" not in body, body.get("errors")
    assert MEMBER in _members(body), "its data returns without a restart"


async def test_a_read_only_member_refuses_writes(demo_env: Demo) -> None:
    settings = load_settings(demo_env.root / "alliance.toml")
    members = [m.model_copy(update={"read_only": m.code == "LHZY"}) for m in settings.members]
    app = create_app(settings.model_copy(update={"members": members}))
    async with serving(app) as base, httpx.AsyncClient(timeout=10) as client:
        response = await client.post(
            f"{base}/graphql",
            json={
                "query": """mutation { createReferral(input: {direction: UP, toHospital: "LYZG",
                  patient: {residentId: "11010519491231002X", sex: FEMALE, age: 76},
                  diagnosis: {code: "S72.001", name: "股骨颈骨折"}, reason: "手术"}) {
                  referral { id } } }"""
            },
            headers={"authorization": f"Bearer {demo_env.token('CLINICIAN', 'LHZY')}"},
        )
    body = response.json()
    assert error_codes(body) == ["SOURCE_READ_ONLY"]
    assert body["errors"][0]["extensions"]["member"] == "LHZY"
