"""GraphQL over WebSocket (graphql-transport-ws), authenticated like HTTP."""

from __future__ import annotations

from typing import Any

import pytest
from httpx_ws import AsyncWebSocketSession, WebSocketDisconnect, aconnect_ws

from tests.conftest import Api, Demo

PROTOCOL = ["graphql-transport-ws"]
QUERY = "{ alliance { name leadHospital { code } } }"


async def _operate(api: Api, init: dict[str, Any], headers: dict[str, str] | None = None) -> Any:
    ws: AsyncWebSocketSession  # aconnect_ws's session type is left unsolved by its default
    async with aconnect_ws(
        "/graphql", api.http, subprotocols=PROTOCOL, headers=headers or {}
    ) as ws:
        await ws.send_json({"type": "connection_init", "payload": init})
        ack = await ws.receive_json()
        assert ack["type"] == "connection_ack"
        await ws.send_json({"id": "1", "type": "subscribe", "payload": {"query": QUERY}})
        message = await ws.receive_json()
        assert message["type"] == "next"
        assert (await ws.receive_json()) == {"id": "1", "type": "complete"}
        return message["payload"]


async def test_token_in_connection_init(api: Api, demo_env: Demo) -> None:
    payload = await _operate(api, {"authorization": f"Bearer {demo_env.token('OPS')}"})
    assert payload["data"]["alliance"]["leadHospital"]["code"] == "LYZG"


async def test_token_in_the_upgrade_request(api: Api, demo_env: Demo) -> None:
    headers = {"authorization": f"Bearer {demo_env.token('PARTNER_SYSTEM', 'LHZX')}"}
    payload = await _operate(api, {}, headers=headers)
    assert payload["data"]["alliance"]["name"]


@pytest.mark.parametrize("init", [{}, {"authorization": "Bearer not-a-token"}])
async def test_connections_without_a_valid_token_are_closed(api: Api, init: dict[str, Any]) -> None:
    ws: AsyncWebSocketSession
    async with aconnect_ws("/graphql", api.http, subprotocols=PROTOCOL) as ws:
        await ws.send_json({"type": "connection_init", "payload": init})
        with pytest.raises(WebSocketDisconnect) as closed:
            await ws.receive_json()
    assert closed.value.code == 4403


async def test_each_operation_on_a_connection_reads_fresh_data(api: Api, demo_env: Demo) -> None:
    created = await api.run(
        """mutation { createReferral(input: {direction: UP, toHospital: "LYZG",
             patient: {residentId: "11010519491231002X", sex: FEMALE, age: 76},
             diagnosis: {code: "S72.001", name: "股骨颈骨折"}, reason: "手术"}) { referral { id } } }""",
        role="CLINICIAN",
        member="LHZY",
    )
    referral_id = created["data"]["createReferral"]["referral"]["id"]
    status = "query($id: ID!) { node(id: $id) { ... on Referral { status } } }"
    init = {"authorization": f"Bearer {demo_env.token('CLINICIAN', 'LHZY')}"}
    ws: AsyncWebSocketSession
    async with aconnect_ws("/graphql", api.http, subprotocols=PROTOCOL) as ws:
        await ws.send_json({"type": "connection_init", "payload": init})
        assert (await ws.receive_json())["type"] == "connection_ack"
        seen = []
        for op in ("1", "2"):
            await ws.send_json(
                {
                    "id": op,
                    "type": "subscribe",
                    "payload": {"query": status, "variables": {"id": referral_id}},
                }
            )
            message = await ws.receive_json()
            seen.append(message["payload"]["data"]["node"]["status"])
            assert (await ws.receive_json())["type"] == "complete"
            if op == "1":
                await api.run(
                    "mutation($id: ID!) { acceptReferral(id: $id) { referral { id } } }",
                    {"id": referral_id},
                    role="CLINICIAN",
                    member="LYZG",
                )
    assert seen == ["INITIATED", "ACCEPTED"]
