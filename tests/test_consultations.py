"""Tele-consultations over the real HTTP app: the federated list, its paging and filters, who sees
the patient, and the whole lifecycle through the mutations."""

from __future__ import annotations

import itertools
import uuid
from typing import Any

from gateway.demo import data as demo_data
from resolvers import global_ids, patients
from tests.conftest import Api, error_codes

FIELDS = """
  id kind status statusReason urgency requestingDoctor department
  requestingHospital { code } invitedHospital { code }
  patient { pseudonym sex age } purpose caseSummary attachedStudies
  desiredSpecialty desiredTitle proposedAt informedConsent
  expert { name title } scheduledAt feeFen requestedAt
  report { issuedAt expertName opinion signed } updatedAt version
"""

LIST = """
query($filter: ConsultationFilter, $first: Int, $after: String) {
  consultations(filter: $filter, first: $first, after: $after) {
    totalCount pageInfo { hasNextPage endCursor }
    edges { cursor node { @FIELDS@ } }
  }
}""".replace("@FIELDS@", FIELDS)

NODE = "query($id: ID!) { node(id: $id) { ... on Consultation { " + FIELDS + " } } }"

REQUEST = """
mutation($input: RequestConsultationInput!) {
  requestConsultation(input: $input) { consultation { @FIELDS@ } }
}""".replace("@FIELDS@", FIELDS)

STEP = {
    "accept": "acceptConsultation(id: $id, expertName: $expertName, expertTitle: $expertTitle)",
    "decline": "declineConsultation(id: $id, reason: $reason)",
    "schedule": "scheduleConsultation(id: $id, scheduledAt: $scheduledAt)",
    "start": "startConsultation(id: $id)",
    "report": "issueConsultationReport(id: $id, opinion: $opinion, expertName: $expertName)",
    "close": "closeConsultation(id: $id)",
    "cancel": "cancelConsultation(id: $id, reason: $reason)",
}
_VARIABLES = {
    "accept": "$id: ID!, $expertName: String, $expertTitle: String",
    "decline": "$id: ID!, $reason: String!",
    "schedule": "$id: ID!, $scheduledAt: DateTime!",
    "start": "$id: ID!",
    "report": "$id: ID!, $opinion: String!, $expertName: String",
    "close": "$id: ID!",
    "cancel": "$id: ID!, $reason: String!",
}

_serial = itertools.count(1)


def resident_id() -> str:
    """A fresh, valid GB 11643 resident ID (born 1960)."""
    first17 = f"41110219600101{next(_serial) % 1000:03d}"
    return first17 + patients.check_character(first17)


def request_input(**overrides: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "kind": "REMOTE_IMAGING",
        "invitedHospital": "LYZG",
        "patient": {"residentId": resident_id(), "sex": "FEMALE", "age": 66},
        "department": "骨伤科",
        "urgency": "URGENT",
        "purpose": "腰椎MRI阅片，明确椎管狭窄程度及手术指征",
        "caseSummary": "腰腿痛3年，加重伴间歇性跛行2月",
        "attachedStudies": ["PACS:LHZY:MR-20260101-0001"],
        "desiredSpecialty": "脊柱外科",
        "desiredTitle": "主任医师",
        "proposedAt": "2026-03-02T10:00:00+08:00",
        "informedConsent": True,
        "idempotencyKey": str(uuid.uuid4()),
    }
    values.update(overrides)
    return values


async def step(
    api: Api, name: str, member: str, variables: dict[str, Any], role: str = "CLINICIAN"
) -> dict[str, Any]:
    query = f"mutation({_VARIABLES[name]}) {{ {STEP[name]} {{ consultation {{ {FIELDS} }} }} }}"
    return await api.run(query, variables, role=role, member=member)


def payload(body: dict[str, Any]) -> dict[str, Any]:
    assert "errors" not in body, body
    (value,) = body["data"].values()
    return value["consultation"]


async def requested(api: Api, **overrides: Any) -> dict[str, Any]:
    body = await api.run(
        REQUEST, {"input": request_input(**overrides)}, role="CLINICIAN", member="LHZY"
    )
    return payload(body)


# -- lifecycle ----------------------------------------------------------------------------------


async def test_full_lifecycle_through_the_mutations(api: Api) -> None:
    c = await requested(api)
    cid = c["id"]
    assert c["status"] == "REQUESTED"
    assert c["requestingHospital"]["code"] == "LHZY"
    assert c["invitedHospital"]["code"] == "LYZG"
    assert c["feeFen"] == demo_data.CONSULTATION_FEES_FEN["REMOTE_IMAGING"]
    assert c["informedConsent"] is True
    assert c["patient"]["sex"] == "FEMALE" and len(c["patient"]["pseudonym"]) == 64
    assert c["purpose"].startswith("腰椎MRI")
    assert c["attachedStudies"] == ["PACS:LHZY:MR-20260101-0001"]
    assert c["report"] is None and c["expert"] is None
    assert global_ids.decode(cid)[1][0] == "LHZY"  # lives at the requesting hospital

    # The requesting side may not take the invited side's steps, nor the reverse.
    body = await step(api, "accept", "LHZY", {"id": cid})
    assert error_codes(body) == ["FORBIDDEN"]
    body = await step(api, "close", "LYZG", {"id": cid})
    assert error_codes(body) == ["FORBIDDEN"]
    # Out of order.
    body = await step(api, "start", "LYZG", {"id": cid})
    assert error_codes(body) == ["INVALID_TRANSITION"]
    assert body["errors"][0]["extensions"]["status"] == "REQUESTED"

    c = payload(
        await step(
            api, "accept", "LYZG", {"id": cid, "expertName": "张正骨", "expertTitle": "主任医师"}
        )
    )
    assert c["status"] == "ACCEPTED"
    assert c["expert"] == {"name": "张正骨", "title": "主任医师"}
    body = await step(api, "report", "LYZG", {"id": cid, "opinion": "太早了"})
    assert error_codes(body) == ["INVALID_TRANSITION"]
    assert body["errors"][0]["extensions"]["status"] == "ACCEPTED"

    c = payload(
        await step(api, "schedule", "LYZG", {"id": cid, "scheduledAt": "2026-03-03T09:30:00+08:00"})
    )
    assert c["status"] == "SCHEDULED" and c["scheduledAt"].startswith("2026-03-03T01:30:00")
    c = payload(await step(api, "start", "LYZG", {"id": cid}))
    assert c["status"] == "IN_PROGRESS"
    opinion = "L4/5椎管重度狭窄，建议上转行减压融合术"
    c = payload(await step(api, "report", "LYZG", {"id": cid, "opinion": opinion}))
    assert c["status"] == "REPORTED"
    assert c["report"]["expertName"] == "张正骨"  # the expert assigned on acceptance
    assert c["report"]["opinion"] == opinion and c["report"]["signed"] is True

    body = await step(api, "cancel", "LHZY", {"id": cid, "reason": "不再需要"})
    assert error_codes(body) == ["INVALID_TRANSITION"]
    assert body["errors"][0]["extensions"]["status"] == "REPORTED"
    c = payload(await step(api, "close", "LHZY", {"id": cid}))
    assert c["status"] == "CLOSED" and c["version"] == 6
    assert c["report"]["opinion"] == opinion

    # The alliance office sees the record without the patient and the clinical text.
    office = (await api.run(NODE, {"id": cid}, role="SECRETARIAT"))["data"]["node"]
    assert office["status"] == "CLOSED" and office["invitedHospital"]["code"] == "LYZG"
    assert office["patient"] is None and office["purpose"] is None
    assert office["caseSummary"] is None and office["attachedStudies"] is None
    assert office["report"]["expertName"] == "张正骨" and office["report"]["opinion"] is None
    # The invited party sees them; a hospital that is no party sees nothing and cannot act.
    invited = (await api.run(NODE, {"id": cid}, role="CLINICIAN", member="LYZG"))["data"]
    assert invited["node"]["patient"] == c["patient"]
    assert invited["node"]["report"]["opinion"] == opinion
    other = await api.run(NODE, {"id": cid}, role="CLINICIAN", member="LHGK")
    assert other["data"]["node"] is None
    body = await step(api, "cancel", "LHGK", {"id": cid, "reason": "x"})
    assert error_codes(body) == ["NOT_FOUND"]


async def test_decline_needs_a_reason_and_ends_the_consultation(api: Api) -> None:
    cid = (await requested(api, kind="REMOTE_ECG"))["id"]
    body = await step(api, "decline", "LYZG", {"id": cid, "reason": "  "})
    assert error_codes(body) == ["BAD_USER_INPUT"]
    c = payload(
        await step(api, "decline", "LYZG", {"id": cid, "reason": "本院心电诊断中心设备检修"})
    )
    assert c["status"] == "DECLINED" and c["statusReason"] == "本院心电诊断中心设备检修"
    body = await step(api, "cancel", "LHZY", {"id": cid, "reason": "已转诊"})
    assert error_codes(body) == ["INVALID_TRANSITION"]
    assert body["errors"][0]["extensions"]["status"] == "DECLINED"


async def test_the_requesting_side_cancels(api: Api) -> None:
    cid = (await requested(api, kind="MDT"))["id"]
    body = await step(api, "cancel", "LYZG", {"id": cid, "reason": "x"})
    assert error_codes(body) == ["FORBIDDEN"]
    c = payload(
        await step(api, "cancel", "LHZY", {"id": cid, "reason": "患者病情变化，已急诊转院"})
    )
    assert c["status"] == "CANCELLED" and c["feeFen"] == demo_data.CONSULTATION_FEES_FEN["MDT"]


async def test_unknown_id_is_not_found(api: Api) -> None:
    missing = global_ids.encode("Consultation", "LHZY", 987654321)
    body = await step(api, "start", "LYZG", {"id": missing})
    assert error_codes(body) == ["NOT_FOUND"]
    body = await api.run(NODE, {"id": missing}, role="SECRETARIAT")
    assert body["data"]["node"] is None


# -- requests ---------------------------------------------------------------------------------


async def test_consent_is_required(api: Api) -> None:
    body = await api.run(
        REQUEST, {"input": request_input(informedConsent=False)}, role="CLINICIAN", member="LHZY"
    )
    assert error_codes(body) == ["BAD_USER_INPUT"]
    assert body["errors"][0]["extensions"]["field"] == "informedConsent"


async def test_invited_hospital_must_be_another_active_member(api: Api) -> None:
    for invited in ("LHZY", "NOSUCH"):
        body = await api.run(
            REQUEST,
            {"input": request_input(invitedHospital=invited)},
            role="CLINICIAN",
            member="LHZY",
        )
        assert error_codes(body) == ["BAD_USER_INPUT"]
        assert body["errors"][0]["extensions"]["field"] == "invitedHospital"


async def test_the_alliance_office_does_not_request(api: Api) -> None:
    body = await api.run(REQUEST, {"input": request_input()}, role="SECRETARIAT")
    assert error_codes(body) == ["FORBIDDEN"]


async def test_idempotency_key_twice_gives_one_consultation(api: Api) -> None:
    count = 'query { consultations(filter: {hospital: "LHZY"}) { totalCount } }'

    async def total() -> int:
        body = await api.run(count, role="CLINICIAN", member="LHZY")
        return body["data"]["consultations"]["totalCount"]

    before = await total()
    values = request_input(kind="REMOTE_PATHOLOGY")
    first = await api.run(REQUEST, {"input": values}, role="CLINICIAN", member="LHZY")
    again = await api.run(REQUEST, {"input": values}, role="CLINICIAN", member="LHZY")
    assert payload(first)["id"] == payload(again)["id"]
    assert await total() == before + 1
    # The same key for another patient is refused.
    other = {**values, "patient": {"residentId": resident_id(), "sex": "MALE", "age": 40}}
    body = await api.run(REQUEST, {"input": other}, role="CLINICIAN", member="LHZY")
    assert error_codes(body) == ["BAD_USER_INPUT"]


# -- the federated list -------------------------------------------------------------------------


async def _all_pages(
    api: Api, variables: dict[str, Any], role: str, member: str | None = None
) -> list[str]:
    ids: list[str] = []
    after = None
    for _ in range(100):
        body = await api.run(
            LIST, {**variables, "first": 7, "after": after}, role=role, member=member
        )
        assert "errors" not in body, body
        page = body["data"]["consultations"]
        ids += [e["node"]["id"] for e in page["edges"]]
        assert len(page["edges"]) <= 7
        if not page["pageInfo"]["hasNextPage"]:
            return ids
        after = page["pageInfo"]["endCursor"]
    raise AssertionError("paging did not end")


async def test_paging_by_seven_never_repeats_or_skips(api: Api) -> None:
    variables = {"filter": {"kind": "REMOTE_PATHOLOGY"}}
    body = await api.run(LIST, {**variables, "first": 100}, role="SECRETARIAT")
    big = body["data"]["consultations"]
    assert 7 < big["totalCount"] <= 100
    expected = [e["node"]["id"] for e in big["edges"]]
    assert len(expected) == big["totalCount"]
    requested_at = [e["node"]["requestedAt"] for e in big["edges"]]
    assert requested_at == sorted(requested_at, reverse=True)
    assert len({global_ids.decode(i)[1][0] for i in expected}) > 1  # merged across members

    paged = await _all_pages(api, variables, "SECRETARIAT")
    assert paged == expected


async def test_filters_by_kind_status_and_hospital(api: Api) -> None:
    variables = {"filter": {"kind": "REMOTE_CONSULTATION", "hospital": "LHRM2"}, "first": 100}
    body = await api.run(LIST, variables, role="SECRETARIAT")
    page = body["data"]["consultations"]
    assert page["edges"], "the demo has remote consultations of LHRM2"
    for edge in page["edges"]:
        node = edge["node"]
        assert node["kind"] == "REMOTE_CONSULTATION"
        assert "LHRM2" in (node["requestingHospital"]["code"], node["invitedHospital"]["code"])
        assert node["patient"] is None and node["purpose"] is None

    body = await api.run(
        LIST,
        {"filter": {"statuses": ["REPORTED", "CLOSED"]}, "first": 30},
        role="CLINICIAN",
        member="LYZG",
    )
    page = body["data"]["consultations"]
    assert page["edges"] and page["totalCount"] >= len(page["edges"])
    for edge in page["edges"]:
        node = edge["node"]
        assert node["status"] in ("REPORTED", "CLOSED")
        assert (
            node["invitedHospital"]["code"] == "LYZG"
            or node["requestingHospital"]["code"] == "LYZG"
        )
        assert node["patient"] is not None and node["purpose"]
        assert node["report"] is not None and node["report"]["opinion"]


async def test_a_party_sees_only_its_own(api: Api) -> None:
    body = await api.run(LIST, {"first": 50}, role="PARTNER_SYSTEM", member="LHZX")
    page = body["data"]["consultations"]
    assert page["edges"]
    for edge in page["edges"]:
        node = edge["node"]
        assert "LHZX" in (node["requestingHospital"]["code"], node["invitedHospital"]["code"])
        assert node["patient"] is not None


async def test_ops_sees_consultations_without_patient_or_clinical_text(api: Api) -> None:
    body = await api.run(LIST, {"first": 5}, role="OPS")
    assert "errors" not in body, body
    edges = body["data"]["consultations"]["edges"]
    assert edges and all(e["node"]["patient"] is None for e in edges)
