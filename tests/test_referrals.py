"""Two-way referrals across the members' own databases, through the real app."""

from __future__ import annotations

import base64
import json
import uuid
from typing import Any

import asyncpg
import pytest

from resolvers.patients import check_character
from tests.conftest import Api, Demo, error_codes

LIST = """query($filter: ReferralFilter, $first: Int, $after: String) {
  referrals(filter: $filter, first: $first, after: $after) {
    totalCount pageInfo { hasNextPage endCursor }
    edges { cursor node { id direction status greenChannel createdAt
      fromHospital { code } toHospital { code } patient { pseudonym sex age }
      diagnosis { code name } conditionSummary } } } }"""
CREATE = """mutation($input: CreateReferralInput!) { createReferral(input: $input) {
  referral { id status direction referralNo fromHospital { code } toHospital { code }
             patient { pseudonym sex age } } } }"""
STEP = """mutation($id: ID!) { %s(id: $id) { referral { id status version } } }"""


def resident_id(seed: int) -> str:
    first17 = f"41112119800101{seed % 1000:03d}"
    return first17 + check_character(first17)


def new_referral(**overrides: Any) -> dict[str, Any]:
    referral: dict[str, Any] = {
        "direction": "UP",
        "toHospital": "LYZG",
        "patient": {"residentId": resident_id(1234), "sex": "MALE", "age": 63},
        "diagnosis": {"code": "S72.001", "name": "股骨颈骨折"},
        "reason": "需手术治疗",
        "greenChannel": True,
    }
    referral.update(overrides)
    return referral


async def all_pages(
    api: Api, role: str, member: str | None, filter: dict[str, Any], first: int
) -> tuple[list[dict[str, Any]], int]:
    nodes: list[dict[str, Any]] = []
    after = None
    total = -1
    while True:
        body = await api.run(
            LIST, {"filter": filter, "first": first, "after": after}, role=role, member=member
        )
        assert "errors" not in body, body["errors"]
        page = body["data"]["referrals"]
        total = page["totalCount"]
        nodes += [e["node"] for e in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            return nodes, total
        after = page["pageInfo"]["endCursor"]


async def test_merged_pages_never_skip_or_repeat(api: Api) -> None:
    filter = {"direction": "UP"}
    nodes, total = await all_pages(api, "SECRETARIAT", None, filter, first=40)
    ids = [n["id"] for n in nodes]
    assert len(ids) == len(set(ids)) == total > 100
    created = [n["createdAt"] for n in nodes]
    assert created == sorted(created, reverse=True)
    assert {n["direction"] for n in nodes} == {"UP"}
    assert len({n["fromHospital"]["code"] for n in nodes}) >= 5, "rows come from many members"
    big = await api.run(LIST, {"filter": filter, "first": 100}, role="SECRETARIAT")
    assert [e["node"]["id"] for e in big["data"]["referrals"]["edges"]] == ids[:100]


def _cursor(parts: list[Any]) -> str:
    raw = json.dumps(parts).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


async def test_cursors_with_integer_keys_keep_working(api: Api) -> None:
    """Cursors issued before record keys became strings: flat, with an integer key."""
    first = await api.run(LIST, {"first": 3}, role="SECRETARIAT")
    edges = first["data"]["referrals"]["edges"]
    kind, (value, member, key) = json.loads(base64.urlsafe_b64decode(edges[1]["cursor"] + "=="))
    old = _cursor([kind, value, member, int(key)])
    resumed = await api.run(LIST, {"first": 1, "after": old}, role="SECRETARIAT")
    assert resumed["data"]["referrals"]["edges"][0]["node"]["id"] == edges[2]["node"]["id"]


@pytest.mark.parametrize(
    "after",
    [
        _cursor(["Referral", "2026-01-01T00:00:00+08:00", "LHZX", "١٢٣"]),  # non-ASCII digits
        _cursor(["Referral", "2026-01-01T00:00:00+08:00", "LHZX", "9" * 20]),  # past bigint
        _cursor(["Referral", "2026-01-01T00:00:00+08:00", "LHZX", "12\u0000"]),
        _cursor(["Referral", "not a time", "LHZX", "1"]),
        _cursor(["Consultation", "2026-01-01T00:00:00+08:00", "LHZX", "1"]),
        _cursor(["Referral", ["2026-01-01T00:00:00+08:00", "LHZX", True]]),
        _cursor(["Referral"] + [[[[]]]] * 3),
        "[" * 5000,
        "x" * 5000,
    ],
)
async def test_a_tampered_cursor_is_bad_input(api: Api, after: str) -> None:
    body = await api.run(LIST, {"first": 3, "after": after}, role="SECRETARIAT")
    assert error_codes(body) == ["BAD_USER_INPUT"], body
    assert body["errors"][0]["extensions"]["argument"] == "after"


@pytest.mark.parametrize("key", ["١٢٣", "9" * 20, "0", "-1", "1e3", "abc"])
async def test_a_global_id_no_member_could_have_issued_finds_nothing(api: Api, key: str) -> None:
    forged = base64.urlsafe_b64encode(f"Referral:LHZX:{key}".encode()).decode()
    body = await api.run(
        "query($id: ID!) { node(id: $id) { id } }", {"id": forged}, role="SECRETARIAT"
    )
    assert "errors" not in body, body
    assert body["data"]["node"] is None


async def test_parties_see_their_own_with_the_patient_and_the_office_sees_all_without(
    api: Api,
) -> None:
    nodes, total = await all_pages(api, "CLINICIAN", "LHZY", {}, first=100)
    assert total == len(nodes) > 0
    for node in nodes:
        assert "LHZY" in (node["fromHospital"]["code"], node["toHospital"]["code"])
        assert len(node["patient"]["pseudonym"]) == 64
    office = await api.run(LIST, {"first": 50}, role="ALLIANCE_ADMIN")
    edges = office["data"]["referrals"]["edges"]
    assert office["data"]["referrals"]["totalCount"] > total
    assert all(
        e["node"]["patient"] is None and e["node"]["conditionSummary"] is None for e in edges
    )
    # Operations sees the shape of every referral, and nothing clinical.
    body = await api.run(LIST, {"first": 5}, role="OPS")
    assert "errors" not in body, body
    ops = body["data"]["referrals"]
    assert ops["totalCount"] == office["data"]["referrals"]["totalCount"]
    assert [e["node"]["id"] for e in ops["edges"]] == [e["node"]["id"] for e in edges[:5]]
    assert all(
        e["node"]["patient"] is None
        and e["node"]["diagnosis"] is None
        and e["node"]["conditionSummary"] is None
        and e["node"]["status"]
        for e in ops["edges"]
    )


async def test_filters_are_applied(api: Api) -> None:
    body = await api.run(
        LIST,
        {
            "filter": {"statuses": ["COMPLETED"], "greenChannel": True, "hospital": "LHGK"},
            "first": 100,
        },
        role="SECRETARIAT",
    )
    edges = body["data"]["referrals"]["edges"]
    assert edges
    for e in edges:
        assert e["node"]["status"] == "COMPLETED" and e["node"]["greenChannel"] is True
        assert "LHGK" in (e["node"]["fromHospital"]["code"], e["node"]["toHospital"]["code"])


async def test_a_referral_goes_up_and_is_completed(api: Api, demo_env: Demo) -> None:
    key = uuid.uuid4().hex
    body = await api.run(
        CREATE, {"input": new_referral(idempotencyKey=key)}, role="CLINICIAN", member="LHZY"
    )
    referral = body["data"]["createReferral"]["referral"]
    assert referral["status"] == "INITIATED"
    assert referral["fromHospital"]["code"] == "LHZY" and referral["toHospital"]["code"] == "LYZG"
    again = await api.run(
        CREATE, {"input": new_referral(idempotencyKey=key)}, role="CLINICIAN", member="LHZY"
    )
    assert again["data"]["createReferral"]["referral"]["id"] == referral["id"]

    # Stored in the sending hospital's own database, with the pseudonym only.
    lhzy = next(m for m in demo_env.info["members"] if m["code"] == "LHZY")
    conn = await asyncpg.connect(lhzy["dsn"])
    try:
        rows = await conn.fetch(
            "SELECT patient_pseudonym FROM referral WHERE idempotency_key = $1", key
        )
        assert [r["patient_pseudonym"] for r in rows] == [referral["patient"]["pseudonym"]]
        leaked = await conn.fetchval(
            "SELECT count(*) FROM referral WHERE referral::text LIKE '%' || $1 || '%'",
            resident_id(1234),
        )
        assert leaked == 0
    finally:
        await conn.close()

    rid = referral["id"]
    assert error_codes(
        await api.run(STEP % "acceptReferral", {"id": rid}, role="CLINICIAN", member="LHZY")
    ) == ["FORBIDDEN"], "the sender cannot accept"
    assert error_codes(
        await api.run(STEP % "recordReferralArrival", {"id": rid}, role="CLINICIAN", member="LYZG")
    ) == ["INVALID_TRANSITION"]
    for step, status in [
        ("acceptReferral", "ACCEPTED"),
        ("recordReferralArrival", "ARRIVED"),
        ("completeReferral", "COMPLETED"),
    ]:
        body = await api.run(STEP % step, {"id": rid}, role="CLINICIAN", member="LYZG")
        assert body["data"][step]["referral"]["status"] == status, body
    body = await api.run(
        """query($id: ID!) { node(id: $id) { ... on Referral { status } } }""",
        {"id": rid},
        role="CLINICIAN",
        member="LHZY",
    )
    assert body["data"]["node"] == {"status": "COMPLETED"}
    other = await api.run(
        """query($id: ID!) { node(id: $id) { id } }""",
        {"id": rid},
        role="CLINICIAN",
        member="LHRM6",
    )
    assert other["data"]["node"] is None, "not a party: not visible"


async def test_a_downward_referral_needs_its_discharge_papers(api: Api) -> None:
    body = await api.run(
        CREATE,
        {"input": new_referral(direction="DOWN", toHospital="LHZY")},
        role="CLINICIAN",
        member="LYZG",
    )
    rid = body["data"]["createReferral"]["referral"]["id"]
    for step in ("acceptReferral", "recordReferralArrival"):
        await api.run(STEP % step, {"id": rid}, role="CLINICIAN", member="LHZY")
    body = await api.run(STEP % "completeReferral", {"id": rid}, role="CLINICIAN", member="LHZY")
    assert error_codes(body) == ["BAD_USER_INPUT"]
    body = await api.run(
        """mutation($id: ID!) { completeReferral(id: $id, dischargeSummary: "术后稳定",
             rehabAdvice: "康复训练六周") { referral { status } } }""",
        {"id": rid},
        role="CLINICIAN",
        member="LHZY",
    )
    assert body["data"]["completeReferral"]["referral"]["status"] == "COMPLETED"


async def test_bad_referrals_are_refused(api: Api) -> None:
    cases = [
        (new_referral(patient={"residentId": "411121198001011234", "sex": "MALE"}), "residentId"),
        (new_referral(toHospital="LHZY"), "toHospital"),  # the sender itself
        (new_referral(direction="DOWN", toHospital="LYZG"), "direction"),
        (new_referral(toHospital="NOWHERE"), "toHospital"),
        (new_referral(reason=" "), "reason"),
    ]
    for referral, field in cases:
        body = await api.run(CREATE, {"input": referral}, role="CLINICIAN", member="LHZY")
        assert error_codes(body) == ["BAD_USER_INPUT"], (field, body)
        assert body["errors"][0]["extensions"]["field"] == field
        assert "411121198001011234" not in str(body)
    body = await api.run(CREATE, {"input": new_referral()}, role="SECRETARIAT")
    assert error_codes(body) == ["FORBIDDEN"], "the alliance office writes no clinical records"


async def test_reads_of_patients_are_audited(api: Api, registry_db: asyncpg.Connection) -> None:
    before = await registry_db.fetchval("SELECT max(id) FROM audit_event") or 0
    body = await api.run(LIST, {"first": 3}, role="PARTNER_SYSTEM", member="LHGK")
    seen = {e["node"]["patient"]["pseudonym"] for e in body["data"]["referrals"]["edges"]}
    rows = await registry_db.fetch(
        "SELECT * FROM audit_event WHERE id > $1 AND operation = 'referrals'", before
    )
    assert len(rows) == 1
    assert set(rows[0]["patients"]) == seen
    assert rows[0]["hospital_code"] == "LHGK" and rows[0]["outcome"] == "SUCCESS"
    assert len(rows[0]["members_asked"]) >= 8
    # The alliance office sees no patient: nothing patient-level to audit.
    await api.run(LIST, {"first": 3}, role="SECRETARIAT")
    assert await registry_db.fetchval("SELECT count(*) FROM audit_event WHERE id > $1", before) == 1
