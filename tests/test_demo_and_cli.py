"""The embedded demo and the command line, run as a newcomer would run them."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import asyncpg
import httpx
import psutil
import pytest

from gateway.demo import provision
from tests.conftest import Demo, free_port

ROLES = {
    "ALLIANCE_ADMIN",
    "SECRETARIAT",
    "MEMBER_ADMIN",
    "CLINICIAN",
    "PARTNER_SYSTEM",
    "OPS",
    "REGULATOR",
}
CLI = [sys.executable, "-m", "gateway.cli"]


def test_demo_json_lists_members_and_tokens(demo_env: Demo) -> None:
    info = demo_env.info
    assert {"graphql_url", "registry_dsn", "admin_dsn", "members", "tokens"} <= info.keys()
    members = info["members"]
    assert len(members) >= 7
    assert {m["role"] for m in members} == {"LEAD", "BACKBONE", "MEMBER"}
    assert all(
        {"code", "name", "role", "kind"} <= m.keys()
        and ({"base_url"} if m["kind"] == "fhir" else {"database", "dsn"}) <= m.keys()
        for m in members
    )
    assert {m["kind"] for m in members} >= {"postgres", "fhir"}
    tokens = info["tokens"]
    assert {t["role"] for t in tokens} == ROLES
    for member in members:
        for role in ("CLINICIAN", "PARTNER_SYSTEM"):
            assert any(t["role"] == role and t["member"] == member["code"] for t in tokens)
    assert all(
        json.loads(_claims(t["token"]))["purpose_of_use"] == "TREATMENT"
        for t in tokens
        if t["role"] == "CLINICIAN"
    )


def _claims(token: str) -> str:
    import base64

    body = token.split(".")[1]
    return base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)).decode()


async def test_each_exchange_database_has_its_own_credentials(demo_env: Demo) -> None:
    first, second = demo_env.info["members"][:2]
    conn = await asyncpg.connect(first["dsn"])
    try:
        assert await conn.fetchval("SELECT current_database()") == first["database"]
        assert await conn.fetchval("SELECT current_user") == first["database"]
    finally:
        await conn.close()
    with pytest.raises(asyncpg.InvalidPasswordError):
        await asyncpg.connect(
            first["dsn"].replace(":", ":x", 2).replace("postgresql:x", "postgresql:")
        )
    foreign = first["dsn"].replace(f"/{first['database']}?", f"/{second['database']}?")
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        await asyncpg.connect(foreign)


async def test_preparing_again_reuses_the_directory(demo_env: Demo) -> None:
    conn = await asyncpg.connect(demo_env.registry_dsn)
    try:
        seats = await conn.fetchval("SELECT count(*) FROM council_seat")
        again = await provision.prepare(
            demo_env.root, reset=False, registry_dsn=None, graphql_url=""
        )
        assert await conn.fetchval("SELECT count(*) FROM council_seat") == seats
        assert (
            json.loads(again.paths.demo_json.read_text())["registry_dsn"] == demo_env.registry_dsn
        )
    finally:
        await conn.close()


async def _wait_ready(url: str, process: subprocess.Popen[bytes]) -> None:
    async with httpx.AsyncClient() as client:
        for _ in range(300):
            assert process.poll() is None, process.stderr.read().decode() if process.stderr else ""
            try:
                if (await client.get(f"{url}/readyz")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.1)
    raise AssertionError("the gateway did not become ready")


async def _alliance_name(url: str, token: str) -> str:
    async with httpx.AsyncClient() as client:
        response = await client.post(
            f"{url}/graphql",
            json={"query": "{ alliance { name } }"},
            headers={"authorization": f"Bearer {token}"},
        )
    return response.json()["data"]["alliance"]["name"]


async def test_a_second_replica_serves_the_same_data_from_every_worker(
    demo_env: Demo, tmp_path: Path
) -> None:
    port = free_port()
    config = str(demo_env.root / "alliance.toml")
    access = tmp_path / "stdout"
    replica = subprocess.Popen(
        [*CLI, "serve", "--config", config, "--port", str(port), "--workers", "2"],
        stdout=access.open("wb"),
        stderr=subprocess.PIPE,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        await _wait_ready(url, replica)
        # Both worker processes up, each a replica of its own on the one port.
        for _ in range(100):
            workers = [
                child
                for child in psutil.Process(replica.pid).children()
                if "spawn_main" in " ".join(child.cmdline())
            ]
            if len(workers) == 2:
                break
            await asyncio.sleep(0.1)
        assert len(workers) == 2
        minted = subprocess.run(
            [
                *CLI,
                "token",
                "--data-dir",
                str(demo_env.root),
                "--role",
                "MEMBER_ADMIN",
                "--member",
                "LHZY",
            ],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
        assert (await _alliance_name(url, minted)).endswith("专科联盟")
        migrated = subprocess.run(
            [*CLI, "migrate", "--config", str(demo_env.root / "alliance.toml")],
            check=True,
            capture_output=True,
            text=True,
        )
        assert "up to date" in migrated.stdout
    finally:
        replica.terminate()
        replica.wait(10)
    # One access line per request, the gateway's own, written after the response (uvicorn's,
    # written before its first byte, stays off in the workers).
    lines = [json.loads(line) for line in access.read_text().splitlines() if line.startswith("{")]
    asked = [line for line in lines if "POST /graphql" in str(line["message"])]
    assert [line["logger"] for line in asked] == ["alliance_gateway.access"], lines


async def test_the_demo_command_runs_and_ctrl_c_stops_postgres(tmp_path: Path) -> None:
    port = free_port()
    data_dir = tmp_path / "fresh-demo"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        [*CLI, "demo", "--data-dir", str(data_dir), "--port", str(port), "--reset"],
        stderr=subprocess.PIPE,
        env=env,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        await _wait_ready(url, process)
        info = json.loads((data_dir / "demo.json").read_text())
        assert info["graphql_url"] == f"{url}/graphql"
        token = next(t["token"] for t in info["tokens"] if t["role"] == "OPS")
        assert (await _alliance_name(url, token)).endswith("专科联盟")
        assert (data_dir / "pgdata" / "postmaster.pid").exists()
    finally:
        process.send_signal(signal.SIGINT)
        assert process.wait(30) == 0
    # PostgreSQL removes its pid file when it has shut down cleanly.
    assert not (data_dir / "pgdata" / "postmaster.pid").exists()
