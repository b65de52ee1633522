"""The provincial alliance office (REGULATOR) through the public API with the demo's token: it reads
the registry, the filing and aggregate statistics, and no patient-level record by any way in: the
clinical lists, node lookups of every clinical type, the audit trail, and event subscriptions over
WebSocket and server-sent events."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from resolvers import clock
from tests.conftest import Api, Demo, error_codes
from tests.events_client import EVENTS, next_event, subscribed

CLINICAL_LISTS = {
    "referrals": "{ referrals(first: 5) { totalCount edges { node { id patient { pseudonym } } } } }",
    "consultations": "{ consultations(first: 5) { totalCount edges { node { id } } } }",
    "trainingEvents": "{ trainingEvents(first: 5) { totalCount edges { node { id } } } }",
    "placements": "{ placements(first: 5) { totalCount edges { node { id } } } }",
    "auditTrail": "{ auditTrail(first: 5) { edges { node { patients } } } }",
}
TEST_RESULTS = """query($patient: PatientLookupInput!) { testResults(patient: $patient, first: 5) {
  edges { node { id patientPseudonym performer { code } decisions { id } } } } }"""
DECLINE = """mutation($input: RecordRecognitionDecisionInput!) {
  recordRecognitionDecision(input: $input) { decision { id } } }"""
# Members whose agreements are in force in the demo: they may record a decision.
DECIDERS = ("LHZY", "LYZG", "LHZX", "LHGK")


def refused(body: dict[str, Any], field: str) -> None:
    """FORBIDDEN, and no data under the field."""
    assert error_codes(body) == ["FORBIDDEN"], body
    assert (body.get("data") or {}).get(field) is None, body


async def clinical_ids(api: Api, demo: Demo) -> dict[str, tuple[str, str, str | None]]:
    """One real id of each clinical type, with a role and hospital that may see it."""
    ids: dict[str, tuple[str, str, str | None]] = {}
    for field, type_name in (
        ("referrals", "Referral"),
        ("consultations", "Consultation"),
        ("trainingEvents", "TrainingEvent"),
        ("placements", "Placement"),
    ):
        body = await api.run(
            f"{{ {field}(first: 1) {{ edges {{ node {{ id }} }} }} }}", role="SECRETARIAT"
        )
        ids[type_name] = (body["data"][field]["edges"][0]["node"]["id"], "SECRETARIAT", None)
    found = None
    for patient in demo.info["sample_patients"]:
        lookup = {"patient": {"residentId": patient["resident_id"]}}
        for reader in (m for m in DECIDERS if m in patient["members"]):
            body = await api.run(TEST_RESULTS, lookup, role="CLINICIAN", member=reader)
            results = [e["node"] for e in body["data"]["testResults"]["edges"]]
            others = [r for r in results if r["performer"]["code"] != reader]
            if others:
                found = reader, results[0], others[0]
                break
        if found:
            break
    assert found, "no sample patient has results at two hospitals"
    reader, own, other = found
    ids["TestResult"] = (own["id"], "CLINICIAN", reader)
    # A decision of the reader's own, on another hospital's result.
    body = await api.run(
        DECLINE,
        {"input": {"resultId": other["id"], "decision": "DECLINED", "reason": "EMERGENCY"}},
        role="CLINICIAN",
        member=reader,
    )
    assert "errors" not in body, body
    decision = body["data"]["recordRecognitionDecision"]["decision"]["id"]
    ids["RecognitionDecision"] = (decision, "CLINICIAN", reader)
    return ids


async def test_the_regulator_reads_no_clinical_list(api: Api, demo_env: Demo) -> None:
    for field, query in CLINICAL_LISTS.items():
        refused(await api.run(query, role="REGULATOR"), field)
        # The same query answers the alliance office: the refusal is the role's, not the query's.
        office = "ALLIANCE_ADMIN" if field == "auditTrail" else "SECRETARIAT"
        assert "errors" not in await api.run(query, role=office)

    patient = demo_env.info["sample_patients"][0]
    body = await api.run(
        TEST_RESULTS, {"patient": {"residentId": patient["resident_id"]}}, role="REGULATOR"
    )
    refused(body, "testResults")


async def test_the_regulator_looks_up_no_clinical_node(api: Api, demo_env: Demo) -> None:
    ids = await clinical_ids(api, demo_env)
    assert set(ids) == {
        "Referral",
        "Consultation",
        "TrainingEvent",
        "Placement",
        "TestResult",
        "RecognitionDecision",
    }
    query = "query($id: ID!) { node(id: $id) { __typename id } }"
    for type_name, (node_id, seer, member) in ids.items():
        body = await api.run(query, {"id": node_id}, role="REGULATOR")
        assert body["data"]["node"] is None, (type_name, body)
        assert error_codes(body) in ([], ["FORBIDDEN"]), body
        # The id is real: a reader who may see it gets the record.
        body = await api.run(query, {"id": node_id}, role=seer, member=member)
        assert body["data"]["node"]["__typename"] == type_name, body


async def test_the_regulator_writes_no_clinical_record(api: Api) -> None:
    body = await api.run(
        """mutation($input: CreateReferralInput!) { createReferral(input: $input) {
             referral { id } } }""",
        {
            "input": {
                "direction": "UP",
                "toHospital": "LYZG",
                "patient": {"residentId": "11010519491231002X", "sex": "FEMALE", "age": 76},
                "diagnosis": {"code": "S72.001", "name": "股骨颈骨折"},
                "reason": "手术",
                "idempotencyKey": "regulator-may-not-refer",
            }
        },
        role="REGULATOR",
    )
    refused(body, "createReferral")


async def test_the_regulator_subscribes_to_no_event_over_websocket(
    demo_env: Demo, base_url: str
) -> None:
    async with subscribed(base_url, demo_env.token("REGULATOR")) as received:
        with pytest.raises(Exception) as refusal:
            await next_event(received)
    assert "FORBIDDEN" in str(refusal.value) or "may not" in str(refusal.value)


async def _sse_first(base_url: str, token: str) -> dict[str, Any]:
    async with (
        httpx.AsyncClient(base_url=base_url, timeout=10) as http,
        http.stream(
            "POST",
            "/graphql",
            json={"query": EVENTS, "variables": {}},
            headers={"accept": "text/event-stream", "authorization": f"Bearer {token}"},
        ) as response,
    ):
        assert response.status_code == 200
        event = None
        async for line in response.aiter_lines():
            if line.startswith("event: "):
                event = line.removeprefix("event: ")
            elif line.startswith("data: ") and event == "next":
                return json.loads(line.removeprefix("data: "))
    raise AssertionError("the stream ended without an answer")


async def test_the_regulator_subscribes_to_no_event_over_sse(demo_env: Demo, base_url: str) -> None:
    payload = await _sse_first(base_url, demo_env.token("REGULATOR"))
    assert payload["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert payload.get("data") is None


REGISTRY = """{ alliance { id name level standing filing { status number
    history { step role at by opinion }
    application { status members { hospital { code name } role agreement { status termYears } } } }
  leadHospital { id code name grade }
  council { role holder { name } hospital { code } }
  resolutions { number subject }
  members(first: 50) { totalCount edges { node { id code name grade ownership role status
    hospital { creditCode divisionCode specialtyBeds contactName }
    agreement { id status signedOn effectiveOn expiresOn } agreements { id status } } } } }
  hospital(code: "LHZX") { name grade licenceNumber }
  membershipApplications(statuses: [SUBMITTED], first: 100) { totalCount edges { node { id status hospital { code } } } } }"""


async def test_the_regulator_reads_the_registry_and_the_filing(api: Api) -> None:
    body = await api.run(REGISTRY, role="REGULATOR")
    assert "errors" not in body, body
    data = body["data"]
    alliance = data["alliance"]
    assert alliance["filing"]["status"] == "FILED" and alliance["filing"]["number"]
    assert {h["step"] for h in alliance["filing"]["history"]} >= {"DRAFTED", "DECISION"}
    assert alliance["filing"]["application"]["members"]
    members = [e["node"] for e in alliance["members"]["edges"]]
    assert len(members) == alliance["members"]["totalCount"] >= 7
    assert any(m["agreement"] and m["agreement"]["status"] for m in members)
    assert data["hospital"]["name"] == "漯河市中心医院"
    assert data["membershipApplications"]["totalCount"] >= 1
    assert any(
        e["node"]["hospital"]["code"] == "WYRM" for e in data["membershipApplications"]["edges"]
    )

    # Every registry node by id, as the office reads it.
    ids = [alliance["id"], alliance["leadHospital"]["id"]]
    ids += [m["id"] for m in members[:3]]
    ids += [m["agreement"]["id"] for m in members if m["agreement"]][:2]
    ids += [e["node"]["id"] for e in data["membershipApplications"]["edges"]][:1]
    for node_id in ids:
        body = await api.run(
            "query($id: ID!) { node(id: $id) { id __typename } }", {"id": node_id}, role="REGULATOR"
        )
        assert "errors" not in body and body["data"]["node"]["id"] == node_id, body


async def test_the_regulator_reads_aggregate_statistics(api: Api) -> None:
    query = """query($year: Int!) { recognitionStatistics(year: $year) {
      year decisions recognised declined retestsAvoided retestCostAvoidedFen } }"""
    year = clock.today().year
    body = await api.run(query, {"year": year}, role="REGULATOR")
    assert "errors" not in body, body
    office = await api.run(query, {"year": year}, role="ALLIANCE_ADMIN")
    assert body["data"] == office["data"]
    assert body["data"]["recognitionStatistics"]["year"] == year
