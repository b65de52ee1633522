"""Test results across members and their mutual recognition, over real HTTP against the demo."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from gateway.app import create_app
from gateway.demo.data import HOSPITALS, RECOGNITION_CATALOGUE
from gateway.settings import load_settings
from resolvers import clock, global_ids
from tests.conftest import Api, Demo, error_codes, serving

RESULTS = """query($patient: PatientLookupInput!, $days: Int, $codes: [String!], $first: Int,
                  $after: String) {
  testResults(patient: $patient, withinDays: $days, itemCodes: $codes, first: $first,
              after: $after) {
    patientPseudonym
    edges { cursor node {
      id patientPseudonym item { code name loinc category } value unit referenceRange performedAt
      performer { code grade } hr { scope } recognition { recognizable validUntil reason }
      decisions { id decision reason note } } }
    pageInfo { hasNextPage endCursor } } }"""

DECIDE = """mutation($input: RecordRecognitionDecisionInput!) {
  recordRecognitionDecision(input: $input) {
    decision { id decision reason note decidedAt retestCostAvoidedFen hospital { code }
               result { id patientPseudonym } } } }"""

STATISTICS = """query($year: Int!, $hospital: String) {
  recognitionStatistics(year: $year, hospital: $hospital) {
    year decisions recognised declined declinedByReason { reason count }
    retestsAvoided retestCostAvoidedFen members } }"""

READER = "LHZY"  # 二级甲等: accepts the results of its own level and above
LEAD = "LYZG"  # 三级甲等: accepts a lower level's results only under alliance-wide recognition
COST = {loinc: cost for loinc, _, _, cost in RECOGNITION_CATALOGUE}


def _patient(demo: Demo) -> dict[str, Any]:
    """A sample patient seen at two or more hospitals other than the reader; preferably at the lead,
    at LHRH (its own column names) and at a lower level too."""
    return max(
        demo.info["sample_patients"],
        key=lambda p: (
            len([m for m in p["members"] if m != READER]) >= 2,
            len({LEAD, "LHRH", "LHRM2"} & set(p["members"])),
            len(p["members"]),
        ),
    )


async def _results(
    api: Api, patient: dict[str, str], member: str = READER, **variables: Any
) -> dict[str, Any]:
    body = await api.run(
        RESULTS, {"patient": patient, **variables}, role="CLINICIAN", member=member
    )
    assert "errors" not in body, body
    return body["data"]["testResults"]


def _nodes(connection: dict[str, Any]) -> list[dict[str, Any]]:
    return [e["node"] for e in connection["edges"]]


async def test_a_patients_results_come_from_several_members_with_recognition(
    api: Api, demo_env: Demo
) -> None:
    patient = _patient(demo_env)
    connection = await _results(api, {"residentId": patient["resident_id"]}, first=100)
    nodes = _nodes(connection)
    assert not connection["pageInfo"]["hasNextPage"]
    pseudonym = connection["patientPseudonym"]
    assert len(pseudonym) == 64 and patient["resident_id"] not in str(connection)
    assert {n["patientPseudonym"] for n in nodes} == {pseudonym}
    performers = {n["performer"]["code"] for n in nodes}
    assert len(performers) >= 2 and performers <= set(patient["members"])

    keys = [(n["performedAt"], n["performer"]["code"]) for n in nodes]
    assert [k[0] for k in keys] == sorted((k[0] for k in keys), reverse=True)
    now = datetime.now(UTC)
    reasons = set()
    for n in nodes:
        r = n["recognition"]
        assert n["item"]["category"] in ("LAB", "EXAM")
        assert r["recognizable"] == (r["reason"] is None), n
        reasons.add(r["reason"])
        valid_until = datetime.fromisoformat(r["validUntil"]) if r["validUntil"] else None
        if r["recognizable"]:
            assert valid_until is not None and valid_until > now
            assert n["hr"] == {"scope": "ALLIANCE"}
        if r["reason"] == "NOT_IN_CATALOGUE":
            assert valid_until is None and n["hr"] is None
            assert n["item"]["loinc"] not in COST
        else:
            assert n["item"]["loinc"] in COST
        if r["reason"] == "QUALITY_CONTROL_NOT_VALID":
            assert n["hr"] is None
        if r["reason"] == "OUTSIDE_VALIDITY_WINDOW":
            assert valid_until is not None and valid_until < now
        # A 二级 reader accepts results of its own level and above.
        assert r["reason"] != "LEVEL_NOT_ACCEPTED"
    assert None in reasons and reasons - {None}, reasons


async def test_a_higher_level_reader_does_not_accept_a_lower_levels_results(
    api: Api, demo_env: Demo
) -> None:
    grade_level = {"GRADE_3A": 3, "GRADE_3B": 3, "GRADE_2A": 2, "GRADE_2B": 2}
    level_of = {h.code: grade_level[h.grade] for h in HOSPITALS}
    # Not LHRH: without an agreement in force its results are recognisable to nobody, whatever
    # the levels (NO_AGREEMENT_IN_FORCE, seed 000 §19).
    patient = next(
        p
        for p in demo_env.info["sample_patients"]
        if LEAD in p["members"]
        and any(level_of[m] == 2 and m not in (READER, "LHRH") for m in p["members"])
    )
    ids = {"residentId": patient["resident_id"]}
    by_reader = {
        reader: {n["id"]: n for n in _nodes(await _results(api, ids, reader, first=100))}
        for reader in (LEAD, READER)
    }
    assert by_reader[LEAD].keys() == by_reader[READER].keys()
    compared: set[str | None] = set()
    for rid, lead_view in by_reader[LEAD].items():
        county_view = by_reader[READER][rid]["recognition"]
        level = grade_level[lead_view["performer"]["grade"]]
        if county_view["recognizable"] and lead_view["performer"]["code"] != READER:
            expected = None if level == 3 else "LEVEL_NOT_ACCEPTED"
            assert lead_view["recognition"]["reason"] == expected, lead_view
            assert lead_view["hr"] == {"scope": "ALLIANCE"}
            compared.add(expected)
        elif not county_view["recognizable"]:
            # Catalogue, quality control and window do not depend on the reader.
            assert lead_view["recognition"] == county_view
    assert compared == {None, "LEVEL_NOT_ACCEPTED"}


async def test_a_lab_without_valid_quality_control_gives_no_hr_label(
    api: Api, demo_env: Demo
) -> None:
    # The demo's LHRM2 never took part in quality control for LDL cholesterol (13457-7).
    patient = next(p for p in demo_env.info["sample_patients"] if "LHRM2" in p["members"])
    nodes = _nodes(
        await _results(
            api, {"residentId": patient["resident_id"]}, days=3650, codes=["13457-7"], first=100
        )
    )
    at_lhrm2 = [n for n in nodes if n["performer"]["code"] == "LHRM2"]
    assert at_lhrm2
    for n in at_lhrm2:
        assert n["hr"] is None and n["recognition"]["recognizable"] is False
        assert n["recognition"]["reason"] == "QUALITY_CONTROL_NOT_VALID"
        assert n["recognition"]["validUntil"] is not None


async def test_pages_never_repeat_or_skip(api: Api, demo_env: Demo) -> None:
    ids = {"residentId": _patient(demo_env)["resident_id"]}
    whole = [n["id"] for n in _nodes(await _results(api, ids, first=100))]
    assert len(whole) > 7
    seen: list[str] = []
    after = None
    while True:
        page = await _results(api, ids, first=7, after=after)
        assert len(page["edges"]) <= 7
        seen += [n["id"] for n in _nodes(page)]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert seen == whole


async def test_item_codes_filter_by_loinc_or_local_code(api: Api, demo_env: Demo) -> None:
    ids = {"residentId": _patient(demo_env)["resident_id"]}
    by_loinc = _nodes(await _results(api, ids, codes=["2823-3"], first=100))
    assert by_loinc and {n["item"]["loinc"] for n in by_loinc} == {"2823-3"}
    local = by_loinc[0]["item"]["code"]
    by_code = _nodes(await _results(api, ids, codes=[local], first=100))
    assert by_code and {n["item"]["code"] for n in by_code} == {local}
    assert len(by_code) < len(by_loinc) or len({n["performer"]["code"] for n in by_loinc}) == 1


async def test_a_pseudonym_finds_the_same_results(api: Api, demo_env: Demo) -> None:
    ids = {"residentId": _patient(demo_env)["resident_id"]}
    by_id = await _results(api, ids, days=30)
    by_pseudonym = await _results(api, {"pseudonym": by_id["patientPseudonym"]}, days=30)
    assert by_pseudonym == by_id


@pytest.mark.parametrize(
    ("patient", "variables"),
    [
        ({"residentId": "110101199003071234"}, {}),  # wrong check character
        ({"residentId": "11010119900307"}, {}),
        ({"pseudonym": "ABC"}, {}),
        ({}, {}),
        ({"residentId": "sample", "pseudonym": "0" * 64}, {}),
        ({"residentId": "sample"}, {"days": 0}),
        ({"residentId": "sample"}, {"days": 3651}),
        ({"residentId": "sample"}, {"codes": []}),
        ({"residentId": "sample"}, {"after": "bm90IGEgY3Vyc29y"}),
    ],
)
async def test_bad_input(
    api: Api, demo_env: Demo, patient: dict[str, str], variables: dict[str, Any]
) -> None:
    real = _patient(demo_env)["resident_id"]
    patient = {k: real if v == "sample" else v for k, v in patient.items()}
    body = await api.run(
        RESULTS, {"patient": patient, **variables}, role="CLINICIAN", member=READER
    )
    assert error_codes(body) == ["BAD_USER_INPUT"], body
    assert body["data"] == {"testResults": None}
    for given in (real, patient.get("residentId")):
        assert not given or given not in str(body)


async def _audit_after(conn: asyncpg.Connection, last_id: int) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT * FROM audit_event WHERE id > $1 AND operation IN "
        "('testResults', 'recordRecognitionDecision') ORDER BY id",
        last_id,
    )


async def _last_audit_id(conn: asyncpg.Connection) -> int:
    return await conn.fetchval("SELECT coalesce(max(id), 0) FROM audit_event")


@pytest.mark.parametrize(
    ("role", "member"),
    [("MEMBER_ADMIN", READER), ("OPS", None), ("SECRETARIAT", LEAD), ("PARTNER_SYSTEM", READER)],
)
async def test_only_treating_clinicians_read_results_and_refusals_are_audited(
    api: Api, demo_env: Demo, registry_db: asyncpg.Connection, role: str, member: str | None
) -> None:
    ids = {"residentId": _patient(demo_env)["resident_id"]}
    pseudonym = (await _results(api, ids, days=1))["patientPseudonym"]
    last = await _last_audit_id(registry_db)
    body = await api.run(RESULTS, {"patient": ids}, role=role, member=member)
    assert error_codes(body) == ["FORBIDDEN"]
    assert body["data"] == {"testResults": None}
    [event] = await _audit_after(registry_db, last)
    assert event["outcome"] == "DENIED" and event["action"] == "READ"
    assert event["patients"] == [pseudonym] and role in event["roles"]


async def test_every_read_is_audited_with_the_pseudonym_never_the_resident_id(
    api: Api, demo_env: Demo, registry_db: asyncpg.Connection
) -> None:
    patient = _patient(demo_env)
    last = await _last_audit_id(registry_db)
    connection = await _results(api, {"residentId": patient["resident_id"]}, first=5)
    await _results(api, {"pseudonym": connection["patientPseudonym"]}, first=5)
    events = await _audit_after(registry_db, last)
    assert len(events) == 2
    for event in events:
        assert event["operation"] == "testResults" and event["action"] == "READ"
        assert event["outcome"] == "SUCCESS" and event["purpose"] == "TREATMENT"
        assert event["patients"] == [connection["patientPseudonym"]]
        assert event["hospital_code"] == READER
        assert set(event["members_asked"]) == {m["code"] for m in demo_env.info["members"]}
    # No raw resident ID anywhere in the audit trail, in any column.
    raw = [p["resident_id"] for p in demo_env.info["sample_patients"]]
    rows = await registry_db.fetch("SELECT t::text AS row FROM audit_event t")
    assert rows and not [r for r in rows if any(rid in r["row"] for rid in raw)]


async def _decide(api: Api, member: str = READER, role: str = "CLINICIAN", **input: Any):
    return await api.run(DECIDE, {"input": input}, role=role, member=member)


async def _statistics(api: Api, hospital: str | None, role: str = "SECRETARIAT", **kw: Any):
    member = kw.get("member", LEAD if role != "OPS" else None)
    year = clock.today().year
    return await api.run(
        STATISTICS, {"year": kw.get("year", year), "hospital": hospital}, role=role, member=member
    )


async def test_recording_decisions_stores_them_at_the_deciding_hospital(
    api: Api, demo_env: Demo, registry_db: asyncpg.Connection
) -> None:
    ids = {"residentId": _patient(demo_env)["resident_id"]}
    nodes = _nodes(await _results(api, ids, first=100))
    # Not LHRH's: its agreement has expired, so no decision on its results is recorded now
    # (seed 000 §19; tests/test_seed_rules.py).
    others = [n for n in nodes if n["performer"]["code"] not in (READER, "LHRH")]
    recognizable = next(n for n in others if n["recognition"]["recognizable"])
    stale = next(n for n in others if n["recognition"]["reason"] == "OUTSIDE_VALIDITY_WINDOW")
    before = (await _statistics(api, READER))["data"]["recognitionStatistics"]
    last = await _last_audit_id(registry_db)

    # Incomplete decisions are refused before anything is stored.
    refusals = [
        {"resultId": stale["id"], "decision": "DECLINED", "reason": "OTHER"},
        {"resultId": stale["id"], "decision": "DECLINED"},
        {"resultId": recognizable["id"], "decision": "RECOGNIZED", "reason": "EMERGENCY"},
        {"resultId": stale["id"], "decision": "RECOGNIZED"},  # not recognisable here
    ]
    for input in refusals:
        assert error_codes(await _decide(api, **input)) == ["BAD_USER_INPUT"], input
    own = next((n for n in nodes if n["performer"]["code"] == READER), None)
    if own is not None:
        body = await _decide(api, resultId=own["id"], decision="RECOGNIZED")
        assert error_codes(body) == ["BAD_USER_INPUT"]
    missing = global_ids.encode("TestResult", recognizable["performer"]["code"], 10**12)
    assert error_codes(await _decide(api, resultId=missing, decision="RECOGNIZED")) == ["NOT_FOUND"]
    for role, member in (("MEMBER_ADMIN", READER), ("SECRETARIAT", LEAD)):
        body = await _decide(api, member, role, resultId=recognizable["id"], decision="RECOGNIZED")
        assert error_codes(body) == ["FORBIDDEN"]

    recognized = await _decide(api, resultId=recognizable["id"], decision="RECOGNIZED")
    declined = await _decide(
        api, resultId=stale["id"], decision="DECLINED", reason="OTHER", note="术前复查"
    )
    assert "errors" not in recognized and "errors" not in declined, (recognized, declined)
    first = recognized["data"]["recordRecognitionDecision"]["decision"]
    second = declined["data"]["recordRecognitionDecision"]["decision"]
    loinc = recognizable["item"]["loinc"]
    assert first["decision"] == "RECOGNIZED" and first["reason"] is None
    assert first["retestCostAvoidedFen"] == COST[loinc]
    assert first["hospital"] == {"code": READER}
    assert first["result"] == {
        "id": recognizable["id"],
        "patientPseudonym": recognizable["patientPseudonym"],
    }
    assert second["decision"] == "DECLINED" and second["reason"] == "OTHER"
    assert second["note"] == "术前复查" and second["retestCostAvoidedFen"] is None

    # Stored in the deciding hospital's own exchange database.
    member, row_id = global_ids.decode_as(first["id"], "RecognitionDecision")
    assert member == READER
    dsn = next(m["dsn"] for m in demo_env.info["members"] if m["code"] == READER)
    conn = await asyncpg.connect(dsn)
    try:
        row = await conn.fetchrow(
            "SELECT result_member, result_id, patient_pseudonym, loinc, decided_by, decision, "
            "reason, note, retest_cost_fen FROM recognition_decision WHERE id = $1",
            int(row_id),
        )
    finally:
        await conn.close()
    result_member, result_id = global_ids.decode_as(recognizable["id"], "TestResult")
    assert dict(row) == {
        "result_member": result_member,
        "result_id": result_id,
        "patient_pseudonym": recognizable["patientPseudonym"],
        "loinc": loinc,
        "decided_by": "demo-clinician-lhzy",
        "decision": "RECOGNIZED",
        "reason": None,
        "note": None,
        "retest_cost_fen": COST[loinc],
    }

    # The reader's hospital sees its decisions on the results, and by id.
    again = {n["id"]: n for n in _nodes(await _results(api, ids, first=100))}
    assert first["id"] in [d["id"] for d in again[recognizable["id"]]["decisions"]]
    assert [d["reason"] for d in again[stale["id"]]["decisions"]][:1] == ["OTHER"]
    node = await api.run(
        "query($id: ID!) { node(id: $id) { id ... on RecognitionDecision { decision "
        "result { id } } } }",
        {"id": first["id"]},
        role="CLINICIAN",
        member=READER,
    )
    assert node["data"]["node"] == {
        "id": first["id"],
        "decision": "RECOGNIZED",
        "result": {"id": recognizable["id"]},
    }
    elsewhere = await api.run(
        "query($id: ID!) { node(id: $id) { id } }",
        {"id": first["id"]},
        role="CLINICIAN",
        member=LEAD,
    )
    assert elsewhere["data"]["node"] is None

    # The writes are audited, with the pseudonym.
    writes = [e for e in await _audit_after(registry_db, last) if e["action"] == "WRITE"]
    successes = [e for e in writes if e["outcome"] == "SUCCESS"]
    assert len(successes) == 2
    assert {tuple(e["patients"]) for e in successes} == {(recognizable["patientPseudonym"],)}
    assert [e["outcome"] for e in writes].count("DENIED") == 2

    # And the statistics count them.
    after = (await _statistics(api, READER))["data"]["recognitionStatistics"]
    assert after["members"] == [READER]
    assert after["recognised"] == before["recognised"] + 1
    assert after["retestsAvoided"] == after["recognised"]
    assert after["declined"] == before["declined"] + 1
    assert after["decisions"] == before["decisions"] + 2
    assert after["retestCostAvoidedFen"] == before["retestCostAvoidedFen"] + COST[loinc]
    reasons = {r["reason"]: r["count"] for r in after["declinedByReason"]}
    old = {r["reason"]: r["count"] for r in before["declinedByReason"]}
    assert reasons["OTHER"] == old.get("OTHER", 0) + 1


async def test_a_test_result_by_node_id(api: Api, demo_env: Demo) -> None:
    ids = {"residentId": _patient(demo_env)["resident_id"]}
    [node] = _nodes(await _results(api, ids, first=1))
    query = """query($id: ID!) { node(id: $id) { id ... on TestResult {
        performer { code } recognition { recognizable reason } } } }"""
    body = await api.run(query, {"id": node["id"]}, role="CLINICIAN", member=READER)
    assert body["data"]["node"] == {
        "id": node["id"],
        "performer": {"code": node["performer"]["code"]},
        "recognition": {k: node["recognition"][k] for k in ("recognizable", "reason")},
    }
    refused = await api.run(query, {"id": node["id"]}, role="SECRETARIAT", member=LEAD)
    assert error_codes(refused) == ["FORBIDDEN"]


async def test_recognition_statistics_access(api: Api, demo_env: Demo) -> None:
    every = (await _statistics(api, None))["data"]["recognitionStatistics"]
    assert every["members"] == sorted(m["code"] for m in demo_env.info["members"])
    assert every["decisions"] == every["recognised"] + every["declined"]
    assert every["declined"] == sum(r["count"] for r in every["declinedByReason"])
    admin = await _statistics(api, None, "ALLIANCE_ADMIN")
    assert admin["data"]["recognitionStatistics"] == every
    own = await _statistics(api, None, "MEMBER_ADMIN", member=READER)
    assert own["data"]["recognitionStatistics"]["members"] == [READER]
    other = await _statistics(api, LEAD, "MEMBER_ADMIN", member=READER)
    assert error_codes(other) == ["FORBIDDEN"]
    for role, member in (("CLINICIAN", READER), ("OPS", None)):
        refused = await _statistics(api, None, role, member=member)
        assert error_codes(refused) == ["FORBIDDEN"]
    assert error_codes(await _statistics(api, None, year=1999)) == ["BAD_USER_INPUT"]
    assert error_codes(await _statistics(api, "NOPE")) == ["BAD_USER_INPUT"]


async def test_a_failing_member_costs_only_its_part(
    demo_env: Demo, registry_db: asyncpg.Connection, tmp_path: Path
) -> None:
    settings = load_settings(demo_env.root / "alliance.toml")
    members = [
        m.model_copy(update={"dsn": f"postgresql://x@/x?host={tmp_path}", "timeout_seconds": 0.5})
        if m.code == LEAD
        else m
        for m in settings.members
    ]
    patient = _patient(demo_env)
    assert LEAD in patient["members"]
    variables = {"patient": {"residentId": patient["resident_id"]}, "first": 100}
    async with (
        serving(create_app(settings.model_copy(update={"members": members}))) as base,
        httpx.AsyncClient(base_url=base, timeout=10) as http,
    ):
        partial = Api(http=http, demo=demo_env)
        last = await _last_audit_id(registry_db)
        for reader in (READER, LEAD):
            body = await partial.run(RESULTS, variables, role="CLINICIAN", member=reader)
            assert error_codes(body) == ["SOURCE_UNAVAILABLE"], body
            assert body["errors"][0]["extensions"]["member"] == LEAD
            nodes = _nodes(body["data"]["testResults"])
            performers = {n["performer"]["code"] for n in nodes}
            assert performers and LEAD not in performers
            assert all(n["recognition"] is not None for n in nodes)
            # The lead's clinician reads its decisions from its own database, which is down.
            assert {n["decisions"] is None for n in nodes} == {reader == LEAD}
    events = await _audit_after(registry_db, last)
    assert [e["outcome"] for e in events] == ["PARTIAL", "PARTIAL"]
    assert all(e["members_failed"] == [LEAD] for e in events)
