"""Identical queries in flight answered once (gateway/runtime/shared_queries.py), over real HTTP
to the running app: the readers that share an execution each get the whole answer and are each
audited under their own name; readers of another visibility class never share it."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import asyncpg
import httpx

from tests.conftest import Api, Demo

PAGE = """query Page($first: Int!) { referrals(first: $first) {
  edges { cursor node { id status patient { pseudonym sex } fromHospital { name } } } } }"""


def _token(demo_env: Demo, subject: str, hospital: str) -> str:
    return demo_env.mint(subject, "CLINICIAN", hospital=hospital, purpose="TREATMENT")


async def _shared_so_far(http: httpx.AsyncClient) -> float:
    text = (await http.get("/metrics")).text
    found = re.search(r"^alliance_queries_shared_total(?:\{[^}]*\})? (\S+)$", text, re.M)
    return float(found.group(1)) if found else 0.0


async def _all_at_once(api: Api, readers: list[str]) -> list[dict[str, Any]]:
    responses = await asyncio.gather(
        *(
            api.http.post(
                "/graphql",
                json={"query": PAGE, "variables": {"first": 40}},
                headers={"authorization": f"Bearer {token}"},
            )
            for token in readers
        )
    )
    assert all(r.status_code == 200 for r in responses), responses[0].text
    return [r.json() for r in responses]


async def test_identical_queries_in_flight_share_one_execution_and_are_each_audited(
    api: Api, demo_env: Demo, registry_db: asyncpg.Connection
) -> None:
    subjects = [f"shared-reader-{i}" for i in range(16)]
    readers = [_token(demo_env, subject, "LHZX") for subject in subjects]
    before = await registry_db.fetchval("SELECT coalesce(max(id), 0) FROM audit_event")
    shared = await _shared_so_far(api.http)

    bodies = await _all_at_once(api, readers)

    assert all("errors" not in body for body in bodies), bodies[0]
    assert all(body == bodies[0] for body in bodies)
    assert len(bodies[0]["data"]["referrals"]["edges"]) == 40
    assert await _shared_so_far(api.http) > shared, "some of the sixteen shared an execution"
    rows = await registry_db.fetch(
        "SELECT subject, hospital_code, patients, members_asked FROM audit_event "
        "WHERE id > $1 AND operation = 'referrals'",
        before,
    )
    assert sorted(r["subject"] for r in rows) == sorted(subjects), "each reader audited once"
    seen = {e["node"]["patient"]["pseudonym"] for e in bodies[0]["data"]["referrals"]["edges"]}
    for row in rows:
        assert set(row["patients"]) == seen and row["hospital_code"] == "LHZX"
        assert len(row["members_asked"]) >= 8


async def test_readers_of_other_hospitals_never_share_an_answer(api: Api, demo_env: Demo) -> None:
    hospitals = ["LHZX", "LYZG"] * 6
    readers = [_token(demo_env, f"reader-of-{h}-{i}", h) for i, h in enumerate(hospitals)]

    bodies = await _all_at_once(api, readers)

    for hospital, body in zip(hospitals, bodies, strict=True):
        alone = await api.run(PAGE, {"first": 40}, role="CLINICIAN", member=hospital)
        assert body == alone, hospital
    assert bodies[0] != bodies[1]
