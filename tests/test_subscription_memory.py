"""A long-lived subscription must not grow with every event it delivers (graphql-core 3.3 keeps a
memo per event on the subscription's executor; gateway/runtime/execution.py gives each event its own),
and an open subscriber must keep little alive in the server: thousands of them stay open for hours."""

from __future__ import annotations

import asyncio
import gc
import json
import os
import tracemalloc
from typing import Any

import websockets
from graphql import build_schema as build_sdl
from graphql import parse
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

from gateway.runtime.build import build_schema
from tests.conftest import Demo
from tests.events_client import open_subscriptions, until_subscribed, ws_url

SDL = """type Query { ok: Boolean }
type Subscription { events: Event }
type Event { cursor: String type: String hospital: Hospital }
type Hospital { code: String }"""
DOCUMENT = parse("subscription { events { cursor type hospital { code } } }")


def _deliver(executor_class: Any, events: int) -> int:
    """Executes `events` events; the entries then left in the subscription's memo."""
    subscription = executor_class.build(build_sdl(SDL), DOCUMENT)
    for n in range(events):
        payload = {"events": {"cursor": str(n), "type": "T", "hospital": {"code": "LYZG"}}}
        result = subscription.build_per_event_executor(payload).execute_operation(False)
        assert result.data["events"]["cursor"] == str(n)
    return len(subscription._relevant_sub_fields)


def test_a_subscription_keeps_nothing_of_the_events_it_delivered() -> None:
    executor_class = build_schema(introspection=False).execution_context_class
    assert _deliver(executor_class, 100) == 0


def test_the_library_alone_would_keep_something_of_every_event() -> None:
    # What the gateway's executor prevents: if this stops growing, graphql-core fixed it.
    assert _deliver(StrawberryGraphQLCoreExecutionContext, 100) >= 100


# -- what an open WebSocket subscriber keeps alive in the server ---------------------------------

ENVELOPE = (
    "subscription { events(types: [REFERRAL_CREATED]) { cursor type occurredAt recordedAt "
    "entityId entityType entityVersion detectedBy } }"
)
# The server's code (uvicorn, Starlette, Strawberry, graphql-core and the gateway's own): an
# allocation made under one of these is the server's, not the test's clients'.
SERVER_CODE = (
    f"{os.sep}uvicorn{os.sep}",
    f"{os.sep}starlette{os.sep}",
    f"{os.sep}strawberry{os.sep}",
    f"{os.sep}graphql{os.sep}",
    f"{os.sep}gateway{os.sep}",
    f"{os.sep}resolvers{os.sep}",
    f"{os.sep}schema{os.sep}",
)
SUBSCRIBERS = 40
# Measured this way: 51 KiB a subscriber before the connection's queue, flags and handshake, the
# extensions' hooks, the expiry timer and the subscriber's queue were made lighter, 30 KiB after.
# (What the event loop allocates in C, the socket's transport, is not seen here: RSS per subscriber
# in tests/bench/subscriptions.py is a few KiB more. The target there is 40 KiB.)
BUDGET = 36 * 1024


def _servers(stat: tracemalloc.StatisticDiff) -> bool:
    return any(any(part in frame.filename for part in SERVER_CODE) for frame in stat.traceback)


async def _subscribe(url: str, token: str) -> websockets.ClientConnection:
    ws = await websockets.connect(
        ws_url(url), subprotocols=[websockets.Subprotocol("graphql-transport-ws")]
    )
    await ws.send(
        json.dumps({"type": "connection_init", "payload": {"authorization": f"Bearer {token}"}})
    )
    assert json.loads(await ws.recv())["type"] == "connection_ack"
    await ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": {"query": ENVELOPE}}))
    return ws


async def test_an_open_websocket_subscriber_keeps_little_alive_in_the_server(
    demo_env: Demo, base_url: str
) -> None:
    token = demo_env.mint("memory-probe", "PARTNER_SYSTEM", hospital="LYZG")
    # One first, untraced: what the first subscriber makes once for all (caches, imports).
    first = await _subscribe(base_url, token)
    opened = [first]
    try:
        await until_subscribed(base_url, 1)
        start = await open_subscriptions(base_url)
        gc.collect()
        tracemalloc.start(25)
        try:
            before = tracemalloc.take_snapshot()
            for _ in range(SUBSCRIBERS):
                opened.append(await _subscribe(base_url, token))
            await until_subscribed(base_url, start + SUBSCRIBERS)
            await asyncio.sleep(0.2)
            gc.collect()
            after = tracemalloc.take_snapshot()
        finally:
            tracemalloc.stop()
    finally:
        for ws in opened:
            await ws.close()
    kept = sum(s.size_diff for s in after.compare_to(before, "traceback") if _servers(s))
    assert kept / SUBSCRIBERS < BUDGET, f"{kept / SUBSCRIBERS / 1024:.1f} KiB a subscriber"
