"""Gaps issue 10 left, over the real HTTP app: a result is marked recognisable only where a
recognition decision on it would be accepted (both hospitals under an agreement in force, seed 000
§15, §19); training events need the host's and each participant's agreement in force, as
placements do; `node(id:)` finds a capacity activity for whoever may list it."""

from __future__ import annotations

from typing import Any

from resolvers import clock, global_ids
from tests.conftest import Api, Demo, error_codes

RESULTS = """query($patient: PatientLookupInput!) {
  testResults(patient: $patient, withinDays: 3650, first: 100) {
    edges { node { id performer { code } item { loinc } hr { scope }
      recognition { recognizable reason validUntil } } } } }"""
DECIDE = """mutation($input: RecordRecognitionDecisionInput!) {
  recordRecognitionDecision(input: $input) { decision { id } } }"""
RECORD_EVENT = """mutation($input: RecordTrainingEventInput!) {
  recordTrainingEvent(input: $input) { trainingEvent { id } } }"""
TRAINING_EVENTS = """{
  trainingEvents(filter: {year: %d}, first: 100) { edges { node { topic } } } }"""
CAPACITY = """{ capacityActivities(first: 100) { edges { node {
  id kind helpingHospital { code } helpedHospital { code } title startedOn people } } } }"""
NODE = """query($id: ID!) { node(id: $id) { __typename id ... on CapacityActivity {
  kind helpingHospital { code } helpedHospital { code } title startedOn people } } }"""
EXPIRED = "LHRH"  # its agreement expired 20 days ago (gateway/demo/data.py)


def _results(body: dict[str, Any]) -> list[dict[str, Any]]:
    assert "errors" not in body, body
    return [e["node"] for e in body["data"]["testResults"]["edges"]]


async def test_a_result_of_a_hospital_without_an_agreement_in_force_is_not_recognisable(
    api: Api, demo_env: Demo
) -> None:
    # A 二级 member under an agreement in force: it accepts results of its level and above.
    reader = "LHZY"
    found = None
    for patient in demo_env.info["sample_patients"]:
        if EXPIRED not in patient["members"]:
            continue
        lookup = {"patient": {"residentId": patient["resident_id"]}}
        nodes = _results(await api.run(RESULTS, lookup, role="CLINICIAN", member=reader))
        at_expired = [n for n in nodes if n["performer"]["code"] == EXPIRED]
        elsewhere = [n for n in nodes if n["performer"]["code"] not in (EXPIRED, reader)]
        if at_expired and any(n["recognition"]["recognizable"] for n in elsewhere):
            found = lookup, at_expired
            break
    assert found, "a sample patient has results at LHRH and recognisable ones elsewhere"
    lookup, at_expired = found

    catalogued = [n for n in at_expired if n["recognition"]["reason"] != "NOT_IN_CATALOGUE"]
    assert catalogued, "some of the results at LHRH are catalogue items"
    for n in at_expired:
        assert n["recognition"]["recognizable"] is False, n
    for n in catalogued:
        assert n["recognition"]["reason"] == "NO_AGREEMENT_IN_FORCE", n
        # The HR label and the window are the lab's and the item's: still shown.
        assert n["recognition"]["validUntil"] is not None
    assert any(n["hr"] == {"scope": "ALLIANCE"} for n in catalogued)
    # Marked so because a decision on it is refused: RECOGNIZED or not.
    body = await api.run(
        DECIDE,
        {"input": {"resultId": catalogued[0]["id"], "decision": "RECOGNIZED"}},
        role="CLINICIAN",
        member=reader,
    )
    assert error_codes(body) == ["BAD_USER_INPUT"]
    assert body["errors"][0]["extensions"]["agreementStatus"] == "EXPIRED"

    # LHRH's clinicians read their own results as before, and nobody else's as recognisable:
    # LHRH itself has no agreement in force.
    theirs = _results(await api.run(RESULTS, lookup, role="CLINICIAN", member=EXPIRED))
    others = [n for n in theirs if n["performer"]["code"] != EXPIRED]
    assert others
    for n in others:
        assert n["recognition"]["reason"] in ("NOT_IN_CATALOGUE", "NO_AGREEMENT_IN_FORCE"), n
    own = [n for n in theirs if n["performer"]["code"] == EXPIRED]
    assert own and all(n["recognition"]["reason"] != "NO_AGREEMENT_IN_FORCE" for n in own)


async def test_a_training_event_needs_the_host_and_participants_under_an_agreement_in_force(
    api: Api,
) -> None:
    topic = "联盟内骨质疏松性骨折规范化诊疗培训（协议到期检查）"
    event = {
        "kind": "TRAINING_COURSE",
        "mode": "ON_SITE",
        "heldOn": str(clock.today()),
        "topic": topic,
        "participants": [{"hospital": "LHZY", "count": 6}],
    }
    body = await api.run(RECORD_EVENT, {"input": event}, role="MEMBER_ADMIN", member=EXPIRED)
    assert error_codes(body) == ["BAD_USER_INPUT"], body
    extensions = body["errors"][0]["extensions"]
    assert (extensions["field"], extensions["agreementStatus"]) == ("host", "EXPIRED")
    body = await api.run(RECORD_EVENT, {"input": {**event, "host": EXPIRED}}, role="SECRETARIAT")
    assert body["errors"][0]["extensions"]["field"] == "host", body

    # The lead hosting, with LHRH among the participants.
    participants = [{"hospital": "LHZY", "count": 6}, {"hospital": EXPIRED, "count": 3}]
    body = await api.run(
        RECORD_EVENT,
        {"input": {**event, "participants": participants}},
        role="MEMBER_ADMIN",
        member="LYZG",
    )
    assert error_codes(body) == ["BAD_USER_INPUT"], body
    extensions = body["errors"][0]["extensions"]
    assert (extensions["field"], extensions["agreementStatus"]) == ("participants", "EXPIRED")
    assert EXPIRED in body["errors"][0]["message"]

    # Nothing was stored.
    body = await api.run(TRAINING_EVENTS % clock.today().year, role="SECRETARIAT")
    assert topic not in [e["node"]["topic"] for e in body["data"]["trainingEvents"]["edges"]]


async def test_a_capacity_activity_is_a_node_for_those_who_may_list_it(api: Api) -> None:
    body = await api.run(CAPACITY, role="SECRETARIAT")
    nodes = [e["node"] for e in body["data"]["capacityActivities"]["edges"]]
    # One the lead gives a member; a third hospital is neither of its parties.
    activity = next(
        n
        for n in nodes
        if n["helpingHospital"]["code"] == "LYZG" and n["helpedHospital"]["code"] != "LHGK"
    )
    helped = activity["helpedHospital"]["code"]
    expected = {"__typename": "CapacityActivity", **activity}
    for role, member in (
        ("SECRETARIAT", None),
        ("ALLIANCE_ADMIN", None),
        ("REGULATOR", None),
        ("MEMBER_ADMIN", "LYZG"),
        ("CLINICIAN", helped),
        ("PARTNER_SYSTEM", helped),
    ):
        body = await api.run(NODE, {"id": activity["id"]}, role=role, member=member)
        assert body == {"data": {"node": expected}}, (role, member, body)
    # Not a party: no such node for it, as the list shows it none.
    body = await api.run(NODE, {"id": activity["id"]}, role="MEMBER_ADMIN", member="LHGK")
    assert body["data"]["node"] is None and "errors" not in body, body
    body = await api.run(NODE, {"id": activity["id"]}, role="OPS")
    assert body["data"]["node"] is None and error_codes(body) == ["FORBIDDEN"], body
    # An id no member holds.
    for missing in (
        global_ids.encode("CapacityActivity", "LYZG", 10**12),
        global_ids.encode("CapacityActivity", "NOSUCH", 1),
    ):
        body = await api.run(NODE, {"id": missing}, role="SECRETARIAT")
        assert body == {"data": {"node": None}}, body
