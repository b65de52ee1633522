"""The demo's MariaDB hospital (LHYZ3, served by the mysql adapter when MariaDB's server is
installed) is one member like the others: its records are in the merged lists in one stable order
across pages, writes through the gateway land there once however often they are retried, and a row
its own systems write straight into its exchange tables becomes an event.

Its server killed, a wrong password, its statement limit and a missing table are in
tests/test_fault_matrix_mysql.py (on a server of that module's own, so that killing it costs no
other test its member)."""

from __future__ import annotations

import time
from datetime import date
from typing import Any

import aiomysql
import asyncpg
import pytest

from adapters.mysql import session
from gateway.app import create_app
from gateway.demo.provision import MARIADB_MEMBER
from gateway.settings import load_settings
from resolvers import clock, global_ids
from tests.conftest import Api, Demo, serving
from tests.events_client import next_event, subscribed, watching
from tests.mariadb_server import require_mariadb
from tests.member_lists import LISTS, assert_merged_in_one_order, member_of
from tests.test_events import latest_cursor
from tests.test_referrals import new_referral, resident_id

pytestmark = pytest.mark.usefixtures("mariadb_member")


@pytest.fixture(scope="module")
def mariadb_member(demo_env: Demo) -> dict[str, Any]:
    member = next(m for m in demo_env.info["members"] if m["code"] == MARIADB_MEMBER)
    if member["kind"] != "mysql":
        require_mariadb()
    assert member["kind"] == "mysql" and member["dsn"].startswith("mysql://")
    return member


async def _mysql(member: dict[str, Any]) -> aiomysql.Connection:
    """The hospital's own systems, with its own account, on its exchange database."""
    conn = await aiomysql.connect(**session.connect_options(member["dsn"], connect_timeout=5))
    await session.prepare(conn, 30.0)
    return conn


@pytest.mark.parametrize("field", sorted(LISTS))
async def test_its_records_are_in_the_merged_lists_in_one_stable_order(
    api: Api, field: str
) -> None:
    if field == "placements":
        # Only the lead hospital hosts placements in the demo's data: one hosted here, stored in
        # MariaDB, recorded through the gateway.
        await _record_placement(api)
    await assert_merged_in_one_order(api, field, MARIADB_MEMBER)


async def test_its_test_results_are_merged_with_the_other_hospitals(
    api: Api, demo_env: Demo
) -> None:
    patient = next(
        p
        for p in demo_env.info["sample_patients"]
        if MARIADB_MEMBER in p["members"] and len(p["members"]) >= 2
    )
    reader = next(m for m in patient["members"] if m != MARIADB_MEMBER)
    query = """query($p: String!, $after: String) { testResults(patient: {residentId: $p},
        first: 7, after: $after) { edges { node { id performedAt performer { code } } }
        pageInfo { hasNextPage endCursor } } }"""
    nodes: list[dict[str, Any]] = []
    after = None
    while True:
        body = await api.run(
            query, {"p": patient["resident_id"], "after": after}, role="CLINICIAN", member=reader
        )
        assert "errors" not in body, body["errors"]
        page = body["data"]["testResults"]
        nodes += [e["node"] for e in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    performers = {n["performer"]["code"] for n in nodes}
    assert MARIADB_MEMBER in performers and len(performers) >= 2
    assert len({n["id"] for n in nodes}) == len(nodes)
    times = [n["performedAt"] for n in nodes]
    assert times == sorted(times, reverse=True)


async def _record_placement(api: Api) -> None:
    body = await api.run(
        """mutation($input: RecordPlacementInput!) { recordPlacement(input: $input) {
          placement { id host { code } } } }""",
        {
            "input": {
                "homeHospital": "LHZX",
                "traineeName": "钱进修",
                "profession": "DOCTOR",
                "department": "骨科",
                "startsOn": date(clock.today().year - 2, 9, 1).isoformat(),
                "endsOn": date(clock.today().year - 2, 11, 30).isoformat(),
            }
        },
        role="MEMBER_ADMIN",
        member=MARIADB_MEMBER,
    )
    assert "errors" not in body, body["errors"]
    placement = body["data"]["recordPlacement"]["placement"]
    assert member_of(placement["id"], "Placement") == MARIADB_MEMBER


CREATE = """mutation($input: CreateReferralInput!) { createReferral(input: $input) {
  referral { id status fromHospital { code } } } }"""


async def test_a_write_through_the_gateway_lands_there_once_when_retried(
    api: Api, mariadb_member: dict[str, Any]
) -> None:
    key = f"retry-{time.time_ns()}"
    referral = new_referral(
        idempotencyKey=key, patient={"residentId": resident_id(4242), "sex": "FEMALE", "age": 71}
    )
    answers = [
        await api.run(CREATE, {"input": referral}, role="CLINICIAN", member=MARIADB_MEMBER)
        for _ in range(3)
    ]
    assert all("errors" not in a for a in answers), answers
    ids = {a["data"]["createReferral"]["referral"]["id"] for a in answers}
    assert len(ids) == 1
    (referral_id,) = ids
    assert global_ids.decode_member_key(referral_id, "Referral")[0] == MARIADB_MEMBER
    conn = await _mysql(mariadb_member)
    try:
        async with conn.cursor() as cur:
            await cur.execute("SELECT COUNT(*) FROM referral WHERE idempotency_key = %s", [key])
            assert await cur.fetchone() == (1,)
    finally:
        conn.close()
    accepted = await api.run(
        """mutation($id: ID!) { acceptReferral(id: $id) { referral { status version } } }""",
        {"id": referral_id},
        role="CLINICIAN",
        member="LYZG",
    )
    assert accepted["data"]["acceptReferral"]["referral"] == {"status": "ACCEPTED", "version": 2}


async def test_a_row_its_own_systems_write_becomes_an_event(
    demo_env: Demo, registry_db: asyncpg.Connection, mariadb_member: dict[str, Any]
) -> None:
    settings = load_settings(
        demo_env.root / "alliance.toml",
        events={"poll_interval_seconds": 0.2, "claim_interval_seconds": 0.2},
    )
    token = demo_env.token("PARTNER_SYSTEM", "LYZG")
    async with serving(create_app(settings)) as url:
        await watching(url, MARIADB_MEMBER)
        after = await latest_cursor(registry_db)
        async with subscribed(url, token, after=after, members=[MARIADB_MEMBER]) as received:
            conn = await _mysql(mariadb_member)
            try:
                async with conn.cursor() as cur:
                    # As its HIS would: the database's defaults for id, times and version.
                    await cur.execute(
                        """INSERT INTO referral (referral_no, direction, from_hospital, to_hospital,
                             patient_pseudonym, patient_sex, diagnosis_code, diagnosis_name, reason)
                           VALUES (%s, 'UP', %s, 'LYZG', %s, 'FEMALE', 'I63.9', '脑梗死', '需进一步诊治')""",
                        [f"HIS-{time.time_ns()}", MARIADB_MEMBER, "cd" * 32],
                    )
                    row_id = cur.lastrowid
            finally:
                conn.close()
            event = await next_event(received, within=5)
    assert event["type"] == "REFERRAL_CREATED"
    assert event["detectedBy"] == "WATCHER"
    assert event["entityId"] == global_ids.encode("Referral", MARIADB_MEMBER, row_id)
    assert event["referral"]["fromHospital"] == {"code": MARIADB_MEMBER}
