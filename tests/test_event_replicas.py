"""Two gateway processes on one registry: events cross replicas, and the watch of a member moves
to the surviving replica, without losing an event, when the watching one dies."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path

import asyncpg
import httpx

from gateway.settings import load_settings
from tests.conftest import Api, Demo, free_port
from tests.events_client import next_event, quiet, subscribed, watching
from tests.test_events import _his_writes_referral, create_referral, latest_cursor

CLI = [sys.executable, "-m", "gateway.cli"]
FAST_WATCH = {
    "ALLIANCE_EVENTS__POLL_INTERVAL_SECONDS": "0.3",
    "ALLIANCE_EVENTS__CLAIM_INTERVAL_SECONDS": "0.3",
}


@contextmanager
def replica(demo_env: Demo, log: Path) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    port = free_port()
    config = str(demo_env.root / "alliance.toml")
    with log.open("wb") as stderr:
        process = subprocess.Popen(
            # One process per replica: the test stops and kills replicas as whole processes.
            [*CLI, "serve", "--config", config, "--port", str(port), "--workers", "1"],
            stderr=stderr,
            env={**os.environ, **FAST_WATCH},
        )
    try:
        yield f"http://127.0.0.1:{port}", process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGCONT)
            process.terminate()
            process.wait(10)


async def ready(url: str, process: subprocess.Popen[bytes], log: Path) -> dict[str, object]:
    async with httpx.AsyncClient(base_url=url) as http:
        for _ in range(300):
            assert process.poll() is None, log.read_text()
            try:
                response = await http.get("/readyz")
                if response.status_code == 200:
                    return response.json()
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.1)
    raise AssertionError("the replica did not become ready")


@asynccontextmanager
async def two_replicas(
    demo_env: Demo, tmp_path: Path
) -> AsyncIterator[tuple[tuple[str, subprocess.Popen[bytes]], tuple[str, subprocess.Popen[bytes]]]]:
    with (
        replica(demo_env, tmp_path / "a.log") as a,
        replica(demo_env, tmp_path / "b.log") as b,
    ):
        await ready(*a, tmp_path / "a.log")
        await ready(*b, tmp_path / "b.log")
        yield a, b


async def test_a_subscriber_on_one_replica_hears_of_a_referral_created_through_another(
    demo_env: Demo, tmp_path: Path, registry_db: asyncpg.Connection
) -> None:
    async with two_replicas(demo_env, tmp_path) as ((url_a, _), (url_b, _)):
        after = await latest_cursor(registry_db)
        token = demo_env.token("PARTNER_SYSTEM", "LYZG")
        async with (
            subscribed(url_b, token, after=after, types=["REFERRAL_CREATED"]) as received,
            httpx.AsyncClient(base_url=url_a, timeout=10) as http,
        ):
            api = Api(http=http, demo=demo_env)
            referral_id = await create_referral(api, 601)
            created = time.monotonic()
            event = await next_event(received, within=5)
            took = time.monotonic() - created
            duplicates = await quiet(received, 0.5)
    assert event["entityId"] == referral_id
    assert event["referral"]["status"] == "INITIATED"
    assert took < 2.0
    assert duplicates == []


async def test_killing_the_watching_replica_moves_the_watch_without_losing_an_event(
    demo_env: Demo, tmp_path: Path, registry_db: asyncpg.Connection
) -> None:
    member = "LHZX"
    dsn = next(
        m.resolved_dsn()
        for m in load_settings(demo_env.root / "alliance.toml").members
        if m.code == member
    )
    token = demo_env.token("SECRETARIAT", "LYZG")
    with replica(demo_env, tmp_path / "a.log") as (url_a, process_a):
        await ready(url_a, process_a, tmp_path / "a.log")
        await watching(url_a, member)
        with replica(demo_env, tmp_path / "b.log") as (url_b, process_b):
            await ready(url_b, process_b, tmp_path / "b.log")
            after = await latest_cursor(registry_db)
            async with subscribed(url_b, token, after=after, members=[member]) as received:
                # A stops mid-flight: the hospital writes, and A dies before it could append.
                process_a.send_signal(signal.SIGSTOP)
                row_id = await _his_writes_referral(dsn, member, "LYZG")
                process_a.kill()
                process_a.wait(10)
                await watching(url_b, member)
                event = await next_event(received, within=10)
                duplicates = await quiet(received, 1.0)
    assert event["type"] == "REFERRAL_CREATED"
    assert event["detectedBy"] == "WATCHER"
    assert event["referral"]["fromHospital"] == {"code": member}
    assert event["entityVersion"] == 1
    assert duplicates == []
    recorded = await registry_db.fetchval(
        "SELECT count(*) FROM event_log WHERE entity_id = $1", event["entityId"]
    )
    assert recorded == 1
    assert row_id > 0
