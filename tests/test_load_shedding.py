"""A worker at capacity answers 503 OVERLOADED with Retry-After instead of queueing more
operations behind its own work. Over real HTTP, with a member that answers slowly."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest

from gateway.app import create_app
from gateway.settings import load_settings
from tests.conftest import Demo, serving

QUERY = "{ referrals(first: 5) { edges { node { id } } } }"


@pytest.fixture
async def silent_server() -> AsyncIterator[int]:
    """Accepts connections and never answers: a member whose database hangs."""
    held: list[asyncio.StreamWriter] = []

    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)
        await reader.read()

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    yield server.sockets[0].getsockname()[1]
    server.close()
    for writer in held:
        writer.close()


async def test_a_worker_at_capacity_sheds_load_with_retry_after(
    demo_env: Demo, silent_server: int
) -> None:
    settings = load_settings(
        demo_env.root / "alliance.toml", events={"watch": False}, limits={"max_in_flight": 2}
    )
    members = [
        m.model_copy(
            update={
                "dsn": f"postgresql://gateway:x@127.0.0.1:{silent_server}/exchange",
                "dsn_env": None,
                "timeout_seconds": 1.0,
            }
        )
        if m.code == "LHZX"
        else m
        for m in settings.members
    ]
    app = create_app(settings.model_copy(update={"members": members}))
    token = demo_env.token("SECRETARIAT")
    async with serving(app) as url, httpx.AsyncClient(base_url=url, timeout=10) as http:
        answers = await asyncio.gather(
            *(
                http.post(
                    "/graphql",
                    json={"query": QUERY},
                    headers={"authorization": f"Bearer {token}"},
                )
                for _ in range(6)
            )
        )
        shed = [a for a in answers if a.status_code == 503]
        served = [a for a in answers if a.status_code == 200]
        assert len(served) == 2 and len(shed) == 4, [a.status_code for a in answers]
        for answer in shed:
            assert answer.headers["retry-after"] == "1"
            assert answer.json()["errors"][0]["extensions"]["code"] == "OVERLOADED"
        for answer in served:
            body = answer.json()
            assert body["data"]["referrals"]["edges"], "the other members' part"
            assert [e["extensions"]["member"] for e in body["errors"]] == ["LHZX"]
        # Capacity returns as operations end.
        after = await http.post(
            "/graphql", json={"query": QUERY}, headers={"authorization": f"Bearer {token}"}
        )
        assert after.status_code == 200
