"""DESIGN.md's public contract sketch, as written: the shapes frontends and partners rely on."""

from __future__ import annotations

from tests.conftest import Api, Demo

REFERRALS = """query { referrals(filter: {direction: UP, statuses: [INITIATED, ACCEPTED]}, first: 20, after: null) {
        edges { cursor node { id direction status greenChannel fromHospital { name } toHospital { name }
                patient { pseudonym sex age } diagnosis { code name } createdAt } }
        pageInfo { hasNextPage endCursor } } }"""
CONSULTATIONS = """query { consultations(filter: {kind: REMOTE_IMAGING}, first: 20) { edges { node { id kind status
        requestingHospital { name } invitedHospital { name } requestedAt report { issuedAt } } } } }"""
TRAINING = """query { trainingEvents(filter: {kind: REMOTE_TEACHING, year: %d}, first: 20) { totalCount } }"""
RESULTS = """query { testResults(patient: {residentId: "%s"}, withinDays: 90, first: 50) { edges { node {
        id item { code name loinc } value unit performedAt performer { name grade }
        hr { scope } recognition { recognizable validUntil reason } } } } }"""
CREATE = """mutation { createReferral(input: {direction: UP, toHospital: "LYZG", patient: {residentId: "%s", sex: MALE,
           age: 63}, diagnosis: {code: "S72.001", name: "股骨颈骨折"}, reason: "需手术治疗", greenChannel: true,
           idempotencyKey: "contract-sketch-0001"}) { referral { id status } } }"""
DECIDE = """mutation { recordRecognitionDecision(input: {resultId: "%s", decision: DECLINED,
           reason: CONDITION_CHANGED, note: "病情变化"}) { decision { id } } }"""


async def test_every_sketched_query_runs_as_written(api: Api, demo_env: Demo) -> None:
    from resolvers import clock

    patient = demo_env.info["sample_patients"][0]
    results_reader = next(
        m["code"] for m in demo_env.info["members"] if m["code"] not in patient["members"]
    )
    for query, role, member in [
        (REFERRALS, "CLINICIAN", "LHZY"),
        (CONSULTATIONS, "CLINICIAN", "LYZG"),
        (TRAINING % clock.today().year, "MEMBER_ADMIN", "LHZX"),
        (RESULTS % patient["resident_id"], "CLINICIAN", results_reader),
        (CREATE % patient["resident_id"], "CLINICIAN", "LHZY"),
    ]:
        body = await api.run(query, role=role, member=member)
        assert "errors" not in body, (query, body.get("errors"))
        assert all(value is not None for value in body["data"].values())

    body = await api.run(RESULTS % patient["resident_id"], role="CLINICIAN", member=results_reader)
    edges = body["data"]["testResults"]["edges"]
    assert edges, "a sample patient has results at other hospitals"
    body = await api.run(DECIDE % edges[0]["node"]["id"], role="CLINICIAN", member=results_reader)
    assert "errors" not in body, body.get("errors")
    assert body["data"]["recordRecognitionDecision"]["decision"]["id"]
