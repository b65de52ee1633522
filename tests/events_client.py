"""Subscribing the way a partner system does: the stock `gql` client over graphql-transport-ws."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
from gql import Client, gql
from gql.transport.websockets import WebsocketsTransport

EVENTS = """subscription($types: [EventType!], $members: [String!], $after: String) {
  events(types: $types, members: $members, after: $after) {
    cursor type entityId entityType entityVersion detectedBy occurredAt
    hospitals { code }
    referral { id status fromHospital { code } toHospital { code } }
  } }"""


def ws_url(base_url: str) -> str:
    return base_url.replace("http://", "ws://") + "/graphql"


@asynccontextmanager
async def subscribed(
    base_url: str, token: str, document: str = EVENTS, **variables: Any
) -> AsyncIterator[asyncio.Queue[Any]]:
    """A running subscription: its results (or the exception that ended it) arrive in the queue."""
    received: asyncio.Queue[Any] = asyncio.Queue()

    async def run() -> None:
        transport = WebsocketsTransport(
            url=ws_url(base_url),
            subprotocols=[WebsocketsTransport.GRAPHQLWS_SUBPROTOCOL],
            init_payload={"authorization": f"Bearer {token}"},
        )
        try:
            async with Client(transport=transport) as session:
                request = gql(document)
                request.variable_values = variables
                async for result in session.subscribe(request):
                    await received.put(result["events"])
        except Exception as e:
            await received.put(e)

    task = asyncio.create_task(run())
    try:
        yield received
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def next_event(received: asyncio.Queue[Any], within: float = 5.0) -> dict[str, Any]:
    item = await asyncio.wait_for(received.get(), within)
    if isinstance(item, Exception):
        raise item
    return item


async def quiet(received: asyncio.Queue[Any], seconds: float) -> list[Any]:
    """Whatever arrives within `seconds` (expected: nothing)."""
    await asyncio.sleep(seconds)
    items = []
    while not received.empty():
        items.append(received.get_nowait())
    return items


async def watching(url: str, member: str, within: float = 10.0) -> None:
    deadline = time.monotonic() + within
    async with httpx.AsyncClient(base_url=url) as http:
        while time.monotonic() < deadline:
            if member in (await http.get("/readyz")).json()["watching"]:
                return
            await asyncio.sleep(0.1)
    raise AssertionError(f"{url} did not take the watch of {member} within {within} s")


async def open_subscriptions(url: str) -> int:
    async with httpx.AsyncClient(base_url=url) as http:
        return int((await http.get("/readyz")).json()["subscriptions"])


async def until_subscribed(url: str, count: int, within: float = 10.0) -> None:
    """Waits until the replica at `url` counts at least `count` open subscriptions."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if await open_subscriptions(url) >= count:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"fewer than {count} subscriptions within {within} s")


def metric_sum(text: str, name: str) -> float:
    """The sum of the samples of `name` (and of names it begins) in Prometheus text."""
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith(name) and not line.startswith("#")
    )


async def metric_sums(url: str, *names: str) -> list[float]:
    async with httpx.AsyncClient(base_url=url) as http:
        text = (await http.get("/metrics")).text
    return [metric_sum(text, name) for name in names]
