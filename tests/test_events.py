"""Event subscriptions on one replica: mutations and direct writes at a hospital become events,
subscribers see only what concerns them, resume without gap or repeat, over WebSocket (the stock
gql client) and SSE; slow subscribers and expired tokens are cut off with their own codes."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
import websockets

from adapters.exchange.changes import PostgresChangeFeed
from adapters.exchange.columns import ColumnMap
from adapters.registry.events import EventStore
from adapters.registry.records import NewEvent
from gateway.app import create_app
from gateway.demo import data as demo_data
from gateway.settings import load_settings
from resolvers import global_ids
from tests.conftest import Api, Demo, serving
from tests.events_client import (
    EVENTS,
    metric_sum,
    next_event,
    quiet,
    subscribed,
    until_subscribed,
    watching,
    ws_url,
)
from tests.test_referrals import new_referral, resident_id

CREATE = """mutation($input: CreateReferralInput!) { createReferral(input: $input) {
  referral { id status } } }"""
ACCEPT = """mutation($id: ID!) { acceptReferral(id: $id) { referral { id status version } } }"""


async def latest_cursor(registry_db: asyncpg.Connection) -> str:
    """The newest cursor, or the retention horizon when a prune left the log empty (a cursor
    before the horizon is EVENTS_EXPIRED)."""
    return str(
        await registry_db.fetchval(
            """SELECT GREATEST(
                   (SELECT coalesce(max(cursor), 0) FROM event_log),
                   (SELECT coalesce(max(pruned_through), 0) FROM event_log_horizon))"""
        )
    )


async def create_referral(api: Api, seed: int) -> str:
    body = await api.run(
        CREATE,
        {
            "input": new_referral(
                patient={"residentId": resident_id(seed), "sex": "MALE", "age": 60}
            )
        },
        role="CLINICIAN",
        member="LHZY",
    )
    assert "errors" not in body, body
    return body["data"]["createReferral"]["referral"]["id"]


async def test_a_referral_created_through_the_gateway_reaches_the_receiving_hospital(
    api: Api, demo_env: Demo, base_url: str, registry_db: asyncpg.Connection
) -> None:
    after = await latest_cursor(registry_db)
    token = demo_env.token("PARTNER_SYSTEM", "LYZG")
    async with subscribed(base_url, token, after=after, types=["REFERRAL_CREATED"]) as received:
        referral_id = await create_referral(api, 501)
        event = await next_event(received)
    assert event["type"] == "REFERRAL_CREATED"
    assert event["entityId"] == referral_id
    assert event["entityType"] == "Referral"
    assert event["entityVersion"] == 1
    assert event["detectedBy"] == "GATEWAY"
    assert {h["code"] for h in event["hospitals"]} == {"LHZY", "LYZG"}
    # The record is resolved live, under the subscriber's own authorization.
    assert event["referral"] == {
        "id": referral_id,
        "status": "INITIATED",
        "fromHospital": {"code": "LHZY"},
        "toHospital": {"code": "LYZG"},
    }
    # No content in the envelope kept by the gateway.
    row = await registry_db.fetchrow(
        "SELECT * FROM event_log WHERE cursor = $1", int(event["cursor"])
    )
    assert set(row.keys()) >= {"type", "members", "entity_id", "entity_version"}
    assert "patient" not in json.dumps({k: str(v) for k, v in row.items()})


async def test_open_subscriptions_and_event_lag_are_metrics(
    api: Api, demo_env: Demo, base_url: str, registry_db: asyncpg.Connection
) -> None:
    after = await latest_cursor(registry_db)
    async with subscribed(base_url, demo_env.token("SECRETARIAT", "LYZG"), after=after) as got:
        await create_referral(api, 507)
        await next_event(got)
        during = (await api.http.get("/metrics")).text
    assert metric_sum(during, "alliance_subscriptions_open") >= 1
    assert metric_sum(during, "alliance_events_lag_milliseconds_count") >= 1


async def test_a_hospital_never_hears_of_records_it_is_not_party_to(
    api: Api, demo_env: Demo, base_url: str, registry_db: asyncpg.Connection
) -> None:
    after = await latest_cursor(registry_db)
    outsider = demo_env.token("PARTNER_SYSTEM", "LHGK")
    office = demo_env.token("SECRETARIAT", "LYZG")
    async with (
        subscribed(base_url, outsider, after=after) as outsider_events,
        subscribed(base_url, office, after=after) as office_events,
    ):
        referral_id = await create_referral(api, 502)
        # The office sees every record: by the time it has the event, so would the outsider.
        seen = await next_event(office_events)
        assert seen["entityId"] == referral_id
        assert seen["referral"]["id"] == referral_id
        leaked = [e for e in await quiet(outsider_events, 1.0) if e.get("entityId") == referral_id]
    assert leaked == []


async def test_resuming_from_the_last_cursor_delivers_exactly_what_was_missed(
    api: Api, demo_env: Demo, base_url: str, registry_db: asyncpg.Connection
) -> None:
    token = demo_env.token("PARTNER_SYSTEM", "LYZG")
    start = await latest_cursor(registry_db)
    async with subscribed(base_url, token, after=start, members=["LYZG"]) as received:
        first_id = await create_referral(api, 503)
        first = await next_event(received)
    assert first["entityId"] == first_id
    # Disconnected: two more changes happen meanwhile.
    missed_id = await create_referral(api, 504)
    accepted = await api.run(ACCEPT, {"id": first_id}, role="CLINICIAN", member="LYZG")
    assert "errors" not in accepted, accepted
    async with subscribed(base_url, token, after=first["cursor"], members=["LYZG"]) as received:
        replayed = [await next_event(received), await next_event(received)]
        # Live after the replay, with no repeat at the seam.
        live_id = await create_referral(api, 505)
        live = await next_event(received)
        extra = await quiet(received, 0.5)
    assert [(e["entityId"], e["type"], e["entityVersion"]) for e in replayed] == [
        (missed_id, "REFERRAL_CREATED", 1),
        (first_id, "REFERRAL_STATUS_CHANGED", 2),
    ]
    assert replayed[1]["referral"]["status"] == "ACCEPTED"
    assert live["entityId"] == live_id
    assert extra == []
    cursors = [int(first["cursor"]), *(int(e["cursor"]) for e in replayed), int(live["cursor"])]
    assert cursors == sorted(set(cursors))


async def test_a_change_written_at_the_hospital_becomes_an_event(
    demo_env: Demo, registry_db: asyncpg.Connection
) -> None:
    settings = load_settings(
        demo_env.root / "alliance.toml",
        events={"poll_interval_seconds": 0.2, "claim_interval_seconds": 0.2},
    )
    member = next(m for m in settings.members if m.code == "LHRH")  # renamed columns
    token = demo_env.token("PARTNER_SYSTEM", "LYZG")
    async with serving(create_app(settings)) as url:
        await watching(url, "LHRH")
        after = await latest_cursor(registry_db)
        async with subscribed(url, token, after=after, members=["LHRH"]) as received:
            row_id = await _his_writes_referral(member.resolved_dsn(), "LHRH", "LYZG")
            event = await next_event(received, within=5)
    assert event["type"] == "REFERRAL_CREATED"
    assert event["detectedBy"] == "WATCHER"
    assert event["referral"]["fromHospital"] == {"code": "LHRH"}
    assert event["referral"]["status"] == "INITIATED"
    stored = await registry_db.fetchval(
        "SELECT updated_at FROM change_watermark WHERE member = 'LHRH' AND source_table = "
        "'referral'"
    )
    assert stored is not None
    # The hospital's own write, read through the gateway's global id.
    assert event["entityId"] == global_ids.encode("Referral", "LHRH", row_id)


async def _his_writes_referral(dsn: str, sender: str, receiver: str) -> int:
    """A hospital's own system inserting a referral, as its HIS would: not through the gateway."""
    conn = await asyncpg.connect(dsn)
    try:
        columns = {
            r["column_name"]
            for r in await conn.fetch(
                "SELECT column_name FROM information_schema.columns WHERE table_name = 'referral'"
            )
        }
        sex = "hzxb" if "hzxb" in columns else "patient_sex"
        dx_code = "zdbm" if "zdbm" in columns else "diagnosis_code"
        dx_name = "zdmc" if "zdmc" in columns else "diagnosis_name"
        return await conn.fetchval(
            f"""INSERT INTO referral (referral_no, direction, from_hospital, to_hospital,
                   patient_pseudonym, {sex}, {dx_code}, {dx_name}, reason)
               VALUES ($1, 'UP', $2, $3, $4, 'FEMALE', 'I63.9', '脑梗死', '需进一步诊治')
               RETURNING id""",
            f"HIS-{time.time_ns()}",
            sender,
            receiver,
            "ab" * 32,
        )
    finally:
        await conn.close()


async def _sse_events(
    base_url: str, token: str, variables: dict[str, Any], count: int
) -> AsyncIterator[dict[str, Any]]:
    async with (
        httpx.AsyncClient(base_url=base_url, timeout=10) as http,
        http.stream(
            "POST",
            "/graphql",
            json={"query": EVENTS, "variables": variables},
            headers={"accept": "text/event-stream", "authorization": f"Bearer {token}"},
        ) as response,
    ):
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        event = None
        async for line in response.aiter_lines():
            if line.startswith("event: "):
                event = line.removeprefix("event: ")
            elif line.startswith("data: ") and event == "next":
                yield json.loads(line.removeprefix("data: "))
                count -= 1
                if count == 0:
                    return


async def test_events_over_server_sent_events(
    api: Api, demo_env: Demo, base_url: str, registry_db: asyncpg.Connection
) -> None:
    token = demo_env.token("PARTNER_SYSTEM", "LYZG")
    after = await latest_cursor(registry_db)
    referral_id = await create_referral(api, 506)
    payloads = [
        p async for p in _sse_events(base_url, token, {"after": after, "members": ["LHZY"]}, 1)
    ]
    assert payloads[0]["data"]["events"]["entityId"] == referral_id
    assert payloads[0]["data"]["events"]["referral"]["status"] == "INITIATED"


async def test_bad_cursors_are_refused_with_a_clear_error(
    demo_env: Demo, base_url: str, registry_db: asyncpg.Connection
) -> None:
    token = demo_env.token("PARTNER_SYSTEM", "LYZG")
    ahead = str(int(await latest_cursor(registry_db)) + 1000)
    for cursor, code in (("not-a-cursor", "BAD_USER_INPUT"), (ahead, "BAD_USER_INPUT")):
        payloads = [p async for p in _sse_events(base_url, token, {"after": cursor}, 1)]
        assert payloads[0]["errors"][0]["extensions"]["code"] == code


async def test_an_ops_token_may_not_subscribe(demo_env: Demo, base_url: str) -> None:
    payloads = [p async for p in _sse_events(base_url, demo_env.token("OPS"), {}, 1)]
    assert payloads[0]["errors"][0]["extensions"]["code"] == "FORBIDDEN"


async def test_a_slow_subscriber_is_cut_off_with_where_to_resume(
    demo_env: Demo, registry_db: asyncpg.Connection
) -> None:
    settings = load_settings(
        demo_env.root / "alliance.toml", events={"watch": False, "subscriber_queue": 3}
    )
    token = demo_env.token("SECRETARIAT", "LYZG")
    async with serving(create_app(settings)) as url:
        after = await latest_cursor(registry_db)
        async with subscribed(url, token, after=after) as received:
            await until_subscribed(url, 1)
            # Ten events in one commit reach the hub at once: more than the queue holds.
            store = EventStore(
                await asyncpg.create_pool(demo_env.registry_dsn), demo_data.ALLIANCE_ID
            )
            await store.append([_synthetic_event(i) for i in range(10)])
            failure = await asyncio.wait_for(received.get(), 5)
    assert not isinstance(failure, dict), failure
    error = failure.errors[0]  # gql's TransportQueryError
    assert error["extensions"]["code"] == "SUBSCRIBER_TOO_SLOW"
    assert error["extensions"]["resumeAfter"] == after


def _synthetic_event(i: int) -> NewEvent:
    return NewEvent(
        type="MEMBERSHIP_CHANGED",
        members=("LHZY",),
        entity_type="Member",
        entity_id=f"bench-{time.time_ns()}-{i}",
        entity_version=1,
        occurred_at=datetime.now(UTC),
        detected_by="REGISTRY",
    )


async def test_a_connection_is_closed_when_its_token_expires(demo_env: Demo, base_url: str) -> None:
    token = demo_env.mint("short-lived", "PARTNER_SYSTEM", hospital="LYZG", ttl_seconds=2)
    async with websockets.connect(
        ws_url(base_url), subprotocols=[websockets.Subprotocol("graphql-transport-ws")]
    ) as ws:
        await ws.send(
            json.dumps({"type": "connection_init", "payload": {"authorization": f"Bearer {token}"}})
        )
        assert json.loads(await ws.recv())["type"] == "connection_ack"
        await ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": {"query": EVENTS}}))
        started = time.monotonic()
        with pytest.raises(websockets.ConnectionClosed) as closed:
            while True:
                await asyncio.wait_for(ws.recv(), 5)
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 4401
    assert closed.value.rcvd.reason == "Token expired"
    assert time.monotonic() - started < 4


async def test_a_resume_past_retention_is_refused_as_expired(
    demo_env: Demo, base_url: str, registry_db: asyncpg.Connection
) -> None:
    # Last in this module: it removes the events recorded so far.
    store = EventStore(await asyncpg.create_pool(demo_env.registry_dsn), demo_data.ALLIANCE_ID)
    before = await latest_cursor(registry_db)
    assert await store.prune(datetime.now(UTC) + timedelta(seconds=1)) > 0
    token = demo_env.token("PARTNER_SYSTEM", "LYZG")
    payloads = [p async for p in _sse_events(base_url, token, {"after": "1"}, 1)]
    error = payloads[0]["errors"][0]
    assert error["extensions"]["code"] == "EVENTS_EXPIRED"
    assert error["extensions"]["horizon"] == before
    # The newest cursor is still a valid place to resume from.
    async with subscribed(base_url, token, after=before) as received:
        assert await quiet(received, 0.5) == []


async def test_every_watched_table_is_read_under_the_hospitals_own_column_names(
    demo_env: Demo,
) -> None:
    settings = load_settings(demo_env.root / "alliance.toml")
    members = [m for m in settings.members if m.code in ("LHRH", "LHZY")]
    assert len(members) == 2
    for member in members:
        feed = PostgresChangeFeed(member.code, member.resolved_dsn(), ColumnMap(member.columns))
        assert await feed.connect(lambda: None) is False  # no NOTIFY trigger in the demo
        try:
            since = (datetime(2000, 1, 1, tzinfo=UTC), "")
            read = {table: await feed.changes(table, since, 3) for table in feed.kinds}
        finally:
            await feed.close()
        for table in ("referral", "consultation", "consultation_report", "test_result"):
            rows = read[table]
            assert len(rows) == 3, (member.code, table)
            assert all(r.version >= 1 and r.updated_at for r in rows)
        assert all(len(r.parties) == 2 for r in read["referral"] + read["consultation_report"])


async def test_a_hospital_with_the_notify_trigger_is_heard_at_once(demo_env: Demo) -> None:
    member = next(
        m for m in load_settings(demo_env.root / "alliance.toml").members if m.code == "LHGK"
    )
    install = Path(__file__).parents[1] / "adapters" / "exchange" / "change_notify.sql"
    conn = await asyncpg.connect(member.resolved_dsn())
    try:
        await conn.execute(install.read_text(encoding="utf-8"))
    finally:
        await conn.close()
    heard = asyncio.Event()
    feed = PostgresChangeFeed(member.code, member.resolved_dsn(), ColumnMap(member.columns))
    assert await feed.connect(heard.set) is True
    try:
        await _his_writes_referral(member.resolved_dsn(), "LHGK", "LYZG")
        await asyncio.wait_for(heard.wait(), 2)
    finally:
        await feed.close()
