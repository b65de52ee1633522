"""The FHIR members' fast path: with `[events] fhir_hook_base_url`, the change feed keeps rest-hook
Subscriptions at the member's FHIR server (one per watched kind, no payload, the member's secret
in `channel.header`), the server notifies the gateway, and the watch reads at once instead of at
its next poll. Against a real sekmet-fhir server and the real gateway over HTTP: a ServiceRequest
posted straight to the server reaches a subscriber long before the (30 s) poll could have found
it, though the notification lands on a replica that does not hold the watch; it is recorded
once; a notification without the member's secret is 401 and relays nothing; a restart keeps the
same Subscriptions (same ids, not even rewritten); a server that puts them in error, or a gateway
without a hook URL, polls as before; one the server has since turned off is written again.

Run: uv run pytest tests/test_fhir_rest_hook.py -s"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
import uvicorn
from pydantic import ValidationError
from starlette.types import ASGIApp

from adapters.fhir import mapping
from adapters.fhir.changes import FhirChangeFeed
from adapters.fhir.client import FhirClient
from adapters.fhir.source import WATCHED
from adapters.registry.events import WAKE_CHANNEL
from gateway.app import create_app
from gateway.fhir_hooks import member_secret
from gateway.settings import EventSettings, Settings
from resolvers import global_ids
from tests.conftest import Demo, free_port, serving
from tests.events_client import next_event, subscribed, watching
from tests.fhir_server import FhirServer
from tests.test_events import latest_cursor
from tests.test_fault_matrix import VICTIM
from tests.test_fhir_member import fhir_settings, post, referral

SECRET = "a-test-secret-that-is-long-enough-0123456789"
SLOW = 30.0  # the poll interval: only a notification explains an event within seconds


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[FhirServer]:
    fhir = FhirServer(
        tmp_path / "fhir", settings={"subscriptions": {"notify_method": "post-endpoint"}}
    )
    await fhir.start()
    try:
        yield fhir
    finally:
        fhir.stop()


@asynccontextmanager
async def serving_on(app: ASGIApp, port: int) -> AsyncIterator[str]:
    """As conftest's `serving`, on a port chosen beforehand: the hook URL is in the settings."""
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


def hooked(demo: Demo, fhir_url: str, hook_url: str | None, **events: Any) -> Settings:
    hook = {"fhir_hook_base_url": hook_url, "fhir_hook_secret": SECRET} if hook_url else {}
    settings = fhir_settings(demo, fhir_url, **hook, **events)
    # The demo's own FHIR hospital is left out: no Subscription of these tests' is left there.
    members = [m for m in settings.members if m.kind != "fhir" or m.code == VICTIM]
    return settings.model_copy(update={"members": members})


def watched(**more: Any) -> dict[str, Any]:
    return {
        "watch": True,
        "poll_interval_seconds": SLOW,
        "notify_fallback_seconds": SLOW,
        "claim_interval_seconds": 0.2,
        **more,
    }


async def subscriptions(server: FhirServer) -> list[dict[str, Any]]:
    async with httpx.AsyncClient(timeout=10) as http:
        bundle = (await http.get(f"{server.base_url}/Subscription", params={"_count": 100})).json()
    return [e["resource"] for e in bundle.get("entry") or ()]


async def polled_once(server: FhirServer, since: int, within: float = 10.0) -> None:
    """Until the watch has read its last watched kind (recognition decisions, Tasks) by
    `_lastUpdated` after request number `since`: its first poll is done, the next is 30 s away."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if any(
            url.startswith("/fhir/Task?") and "_lastUpdated=ge" in url
            for url, _ in server.inbound_headers()[since:]
        ):
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the watch did not poll")


async def arrival(url: str, token: str, after: str, server: FhirServer) -> tuple[float, list[Any]]:
    """Posts a referral straight to the FHIR server; seconds until its event reached a
    subscriber, and every event of it received within a second more."""
    async with subscribed(url, token, after=after, members=[VICTIM]) as received:
        started = time.monotonic()
        posted = await post(server, mapping.referral_resource(referral(7, datetime.now(UTC))))
        wanted = global_ids.encode("Referral", VICTIM, posted["id"])
        events: list[dict[str, Any]] = []
        while not any(e["entityId"] == wanted for e in events):
            events.append(await next_event(received, within=SLOW / 3))
        elapsed = time.monotonic() - started
        with contextlib.suppress(TimeoutError):
            while True:
                events.append(await next_event(received, within=1.0))
    return elapsed, [e for e in events if e["entityId"] == wanted]


async def test_a_change_at_the_server_reaches_a_subscriber_through_the_hook_at_once(
    demo_env: Demo, server: FhirServer, registry_db: asyncpg.Connection
) -> None:
    # The notifications go to a replica that does not watch: the wake must be relayed.
    hook_port = free_port()
    hook_url = f"http://127.0.0.1:{hook_port}"
    token = demo_env.token("PARTNER_SYSTEM", "LYZG")
    watching_replica = hooked(demo_env, server.base_url, hook_url, **watched())
    async with (
        serving_on(create_app(hooked(demo_env, server.base_url, hook_url)), hook_port),
        serving(create_app(watching_replica)) as url,
    ):
        since = len(server.inbound_headers())
        await watching(url, VICTIM)
        await polled_once(server, since)
        after = await latest_cursor(registry_db)
        elapsed, ours = await arrival(url, token, after, server)
    print(f"\nPOST to event with the rest hook: {elapsed * 1000:.0f} ms")
    assert elapsed < 3.0, "only the notification explains it: the next poll was 30 s away"
    assert len(ours) == 1, "recorded once"
    assert ours[0]["type"] == "REFERRAL_CREATED" and ours[0]["detectedBy"] == "WATCHER"
    recorded = await registry_db.fetchval(
        "SELECT count(*) FROM event_log WHERE entity_id = $1", ours[0]["entityId"]
    )
    assert recorded == 1
    subs = await subscriptions(server)
    assert len(subs) == len(WATCHED)
    for sub in subs:
        assert sub["status"] == "active"
        channel = sub["channel"]
        assert channel["type"] == "rest-hook" and "payload" not in channel
        assert channel["endpoint"] == f"{hook_url}/fhir-hooks/{VICTIM}"
        secret = member_secret(SECRET.encode(), watching_replica.alliance_id, VICTIM)
        assert channel["header"] == [f"Authorization: Bearer {secret}"]


async def test_without_a_hook_url_the_member_is_polled_as_before(
    demo_env: Demo, server: FhirServer, registry_db: asyncpg.Connection
) -> None:
    token = demo_env.token("PARTNER_SYSTEM", "LYZG")
    settings = hooked(demo_env, server.base_url, None, **watched(poll_interval_seconds=1.0))
    async with serving(create_app(settings)) as url, httpx.AsyncClient(base_url=url) as http:
        since = len(server.inbound_headers())
        await watching(url, VICTIM)
        await polled_once(server, since)
        after = await latest_cursor(registry_db)
        elapsed, ours = await arrival(url, token, after, server)
        refused = await http.post(f"/fhir-hooks/{VICTIM}")
    print(f"\nPOST to event by polling every second: {elapsed * 1000:.0f} ms")
    assert len(ours) == 1
    assert await subscriptions(server) == []
    assert refused.status_code == 404


async def test_a_notification_without_the_members_secret_is_refused_and_relays_nothing(
    demo_env: Demo, registry_db: asyncpg.Connection
) -> None:
    wakes: asyncio.Queue[str] = asyncio.Queue()
    await registry_db.add_listener(WAKE_CHANNEL, lambda *args: wakes.put_nowait(args[3]))
    # Nothing contacts the FHIR server here: the replica does not watch.
    settings = hooked(demo_env, "http://127.0.0.1:9/fhir", "http://127.0.0.1:9")
    alliance = settings.alliance_id
    others = member_secret(SECRET.encode(), alliance, "LYZG")
    right = member_secret(SECRET.encode(), alliance, VICTIM)
    async with serving(create_app(settings)) as url, httpx.AsyncClient(base_url=url) as http:
        path = f"/fhir-hooks/{VICTIM}"
        refused = [
            await http.post(path),
            await http.post(path, headers={"authorization": "Bearer wrong"}),
            await http.post(path, headers={"authorization": f"Bearer {others}"}),
            await http.post(path, headers={"authorization": right}),  # without its scheme
            await http.put(
                f"{path}/ServiceRequest/1", headers={"authorization": f"Bearer {right}x"}
            ),
        ]
        for answer in refused:
            assert answer.status_code == 401
            assert answer.json() == {
                "errors": [
                    {
                        "message": "A notification must carry the member's hook secret.",
                        "extensions": {"code": "UNAUTHENTICATED"},
                    }
                ]
            }
        unknown = await http.post("/fhir-hooks/LYZG", headers={"authorization": f"Bearer {others}"})
        assert unknown.status_code == 404
        assert unknown.json()["errors"][0]["extensions"]["code"] == "NOT_FOUND"
        await asyncio.sleep(0.5)
        assert wakes.empty(), "a refused notification wakes nothing"
        accepted = [
            await http.post(path, headers={"authorization": f"Bearer {right}"}),
            await http.put(
                f"{path}/ServiceRequest/1",
                headers={"authorization": f"Bearer {right}"},
                content=b"{}",
            ),
        ]
        assert [a.status_code for a in accepted] == [204, 204]
        relayed = [await asyncio.wait_for(wakes.get(), 5) for _ in accepted]
    assert [json.loads(w) for w in relayed] == [{"alliance": alliance, "member": VICTIM}] * 2


async def test_a_restarted_watch_keeps_the_same_subscriptions(
    demo_env: Demo, server: FhirServer
) -> None:
    hook_port = free_port()
    settings = hooked(demo_env, server.base_url, f"http://127.0.0.1:{hook_port}", **watched())
    found: list[list[tuple[str, str, str]]] = []
    for _ in range(2):
        since = len(server.inbound_headers())
        async with serving_on(create_app(settings), hook_port) as url:
            await watching(url, VICTIM)
            await polled_once(server, since)
        found.append(
            sorted(
                (s["id"], s["status"], s["meta"]["versionId"]) for s in await subscriptions(server)
            )
        )
    assert len(found[0]) == len(WATCHED)
    assert {status for _, status, _ in found[0]} == {"active"}
    assert found[1] == found[0], "found and left alone, not created again nor rewritten"


def feed(server: FhirServer) -> FhirChangeFeed:
    return FhirChangeFeed(
        VICTIM, FhirClient(VICTIM, server.base_url, timeout_seconds=5.0, pool_max_size=1)
    )


async def test_the_feed_polls_when_the_server_refuses_and_rewrites_what_it_turned_off(
    server: FhirServer,
) -> None:
    refused = feed(server)
    # The server will not notify anything but http(s): it stores them in error.
    refused.use_rest_hook(f"ftp://127.0.0.1:9/fhir-hooks/{VICTIM}", "x" * 64, 30.0)
    try:
        assert await refused.connect(lambda: None) is False
    finally:
        await refused.close()
    assert {s["status"] for s in await subscriptions(server)} == {"error"}

    plain = feed(server)
    try:
        assert await plain.connect(lambda: None) is False
    finally:
        await plain.close()

    hooked_feed = feed(server)
    hooked_feed.use_rest_hook(f"http://127.0.0.1:9/fhir-hooks/{VICTIM}", "y" * 64, 0.0)
    try:
        assert await hooked_feed.connect(lambda: None) is True
        ours = [
            s for s in await subscriptions(server) if s["channel"]["endpoint"].startswith("http")
        ]
        assert len(ours) == len(WATCHED) and {s["status"] for s in ours} == {"active"}
        # Its server turns one off (sekmet does so when a notification cannot be delivered).
        off = dict(ours[0], status="error")
        async with httpx.AsyncClient(timeout=10) as http:
            answer = await http.put(
                f"{server.base_url}/Subscription/{off['id']}",
                json=off,
                headers={"Content-Type": "application/fhir+json"},
            )
        assert answer.status_code == 200, answer.text
        at = datetime.now(UTC) - timedelta(seconds=1)
        await hooked_feed.changes("referral", (at, ""), 10)
        assert hooked_feed.connected
    finally:
        await hooked_feed.close()
    again = {s["id"]: s["status"] for s in await subscriptions(server)}
    assert again[off["id"]] == "active"


def test_a_hook_url_needs_a_shared_secret_of_some_length() -> None:
    for secret in (None, "short"):
        with pytest.raises(ValidationError, match="fhir_hook_secret"):
            EventSettings(fhir_hook_base_url="https://gateway.example.org", fhir_hook_secret=secret)
    with pytest.raises(ValidationError, match="http"):
        EventSettings(fhir_hook_base_url="gateway.example.org", fhir_hook_secret=SECRET)
    settings = EventSettings(
        fhir_hook_base_url="https://gateway.example.org", fhir_hook_secret=SECRET
    )
    assert SECRET not in repr(settings) and SECRET not in str(settings.model_dump())
