"""The lead assesses its members (seed 000 §11), which feeds an expulsion for a failed assessment
(seed 000 §16(三)); and the assessment's and the work report's writes are in the audit trail, as
the filing's steps are. Over the real HTTP app, with hospitals and an alliance of the tests' own:
the demo alliance is left as it was."""

from __future__ import annotations

import asyncio
import itertools
import uuid
from typing import Any

import asyncpg
import httpx

from gateway.app import create_app
from gateway.demo.data import credit_code
from resolvers import clock
from tests.conftest import Api, Demo, error_codes, serving
from tests.test_assessment import _alliance_of_its_own, _settings
from tests.test_membership_workflow import WITHDRAW, admit
from tests.test_membership_workflow import new_hospital as _workflow_hospital

YEAR = clock.today().year
LAST = YEAR - 1
LEAD = "LYZG"
MEMBER_ASSESSMENT = """query($year: Int!, $h: String!) {
  memberAssessment(year: $year, hospital: $h) {
    year hospital { code } status score maxScore provisional comparedUntil passed note
    concludedAt concludedBy indicators { number value previousValue score provisional } } }"""
CONCLUDE_MEMBER = """mutation($year: Int!, $h: String!, $passed: Boolean!, $note: String) {
  concludeMemberAssessment(year: $year, hospital: $h, passed: $passed, note: $note) {
    memberAssessment { year hospital { code } status score maxScore passed note concludedAt
      concludedBy indicators { number value previousValue score provisional } } } }"""
ASSESSMENT_18 = """query($year: Int!) { assessment(year: $year) {
  indicators { number members { hospital { code } value } } } }"""
RECORD_ACTIVITY = """mutation($input: RecordCapacityActivityInput!) {
  recordCapacityActivity(input: $input) { capacityActivity { id } } }"""

# Hospitals of their own: the other tests' serials (credit codes) stay theirs.
_serial = itertools.count(54000001)


def new_hospital() -> dict[str, Any]:
    serial = next(_serial)
    return _workflow_hospital(
        code=f"M{serial}",
        name=f"考核县医院{serial}",
        creditCode=credit_code("12", "411121", serial),
    )


async def _member(api: Api, registry_db: asyncpg.Connection, joined_year: int = YEAR) -> str:
    code: str = (await admit(api, new_hospital()))["member"]["code"]
    if joined_year != YEAR:
        # A member since an earlier year: years whose assessment the test concludes.
        await registry_db.execute(
            "UPDATE membership SET joined_on = make_date($2, 1, 1) WHERE hospital_code = $1",
            code,
            joined_year,
        )
    return code


async def _conclude(
    api: Api, year: int, hospital: str, passed: bool, note: str | None = None, **who: Any
) -> dict[str, Any]:
    role = who.get("role", "MEMBER_ADMIN")
    member = who.get("member", LEAD if role == "MEMBER_ADMIN" else None)
    return await api.run(
        CONCLUDE_MEMBER,
        {"year": year, "h": hospital, "passed": passed, "note": note},
        role=role,
        member=member,
    )


async def _withdraw(api: Api, hospital: str) -> dict[str, Any]:
    return await api.run(
        WITHDRAW,
        {"hospital": hospital, "reason": "ASSESSMENT_FAILED", "note": "依章程第十六条（三）"},
        role="ALLIANCE_ADMIN",
    )


def _indicators(assessment: dict[str, Any]) -> dict[int, dict[str, Any]]:
    return {i["number"]: i for i in assessment["indicators"]}


async def test_the_lead_concludes_a_members_assessment_and_it_is_kept_as_concluded(
    api: Api, demo_env: Demo, registry_db: asyncpg.Connection
) -> None:
    code = await _member(api, registry_db)
    body = await api.run(MEMBER_ASSESSMENT, {"year": YEAR, "h": code}, role="SECRETARIAT")
    live = body["data"]["memberAssessment"]
    assert live["status"] == "IN_PROGRESS" and live["passed"] is None and live["note"] is None
    assert {18, 17, 20} <= set(_indicators(live))

    # Seed 000 §11: the lead hospital assesses, by its MEMBER_ADMIN; nobody else concludes.
    for role, member in (
        ("ALLIANCE_ADMIN", None),
        ("SECRETARIAT", None),
        ("REGULATOR", None),
        ("MEMBER_ADMIN", "LHZY"),
        ("CLINICIAN", LEAD),
    ):
        refused = await _conclude(api, YEAR, code, False, "不合格", role=role, member=member)
        assert error_codes(refused) == ["FORBIDDEN"], (role, member)
    # A failure says why; the lead is not its own member; a year must be one of the alliance's.
    for year, hospital, passed, note in (
        (YEAR, code, False, None),
        (YEAR, code, False, "   "),
        (YEAR, LEAD, True, None),
        (YEAR, "NOSUCH", True, None),
        (YEAR + 1, code, True, None),
        (1999, code, True, None),
        (LAST, code, False, "去年尚未加入"),
    ):
        refused = await _conclude(api, year, hospital, passed, note)
        assert error_codes(refused) == ["BAD_USER_INPUT"], (year, hospital, passed, note)
    assert (
        await registry_db.fetchval(
            "SELECT count(*) FROM member_assessment WHERE hospital_code = $1", code
        )
        == 0
    )

    body = await _conclude(api, YEAR, code, False, "  专科病区建设未达标，质控整改未完成。 ")
    assert "errors" not in body, body
    concluded = body["data"]["concludeMemberAssessment"]["memberAssessment"]
    assert concluded["status"] == "CONCLUDED" and concluded["passed"] is False
    assert concluded["note"] == "专科病区建设未达标，质控整改未完成。"
    assert concluded["concludedBy"] and concluded["concludedAt"]
    assert concluded["hospital"] == {"code": code}
    assert _indicators(concluded) == _indicators(live)
    assert (concluded["score"], concluded["maxScore"]) == (live["score"], live["maxScore"])
    again = await _conclude(api, YEAR, code, True)
    assert error_codes(again) == ["INVALID_TRANSITION"]

    # What the lead concluded on stays as it was, while the live figures move on: the lead
    # records a new technique it helped the member start this year (#18, held at the lead).
    lead_dsn = next(m["dsn"] for m in demo_env.info["members"] if m["code"] == LEAD)
    key = f"member-assessment-{uuid.uuid4()}"
    started = clock.today().replace(month=1, day=15) if clock.today().month > 1 else None
    if started is not None:
        body = await api.run(
            RECORD_ACTIVITY,
            {
                "input": {
                    "kind": "NEW_TECHNIQUE",
                    "helpingHospital": LEAD,
                    "helpedHospital": code,
                    "title": "经皮椎体成形术",
                    "startedOn": str(started),
                    "idempotencyKey": key,
                }
            },
            role="MEMBER_ADMIN",
            member=LEAD,
        )
        assert "errors" not in body, body
    try:
        for reader, member in (("MEMBER_ADMIN", LEAD), ("SECRETARIAT", None), ("REGULATOR", None)):
            body = await api.run(
                MEMBER_ASSESSMENT, {"year": YEAR, "h": code}, role=reader, member=member
            )
            assert body["data"]["memberAssessment"] == {
                **concluded,
                "year": YEAR,
                "provisional": False,
                "comparedUntil": live["comparedUntil"],
            }, reader
        if started is not None:
            body = await api.run(ASSESSMENT_18, {"year": YEAR}, role="REGULATOR")
            alliance = _indicators(body["data"]["assessment"])[18]
            mine = {m["hospital"]["code"]: m["value"] for m in alliance["members"]}
            assert mine[code] == 1 != _indicators(concluded)[18]["value"]
    finally:
        conn = await asyncpg.connect(lead_dsn)
        try:
            await conn.execute("DELETE FROM capacity_activity WHERE idempotency_key = $1", key)
        finally:
            await conn.close()


async def test_expelling_for_a_failed_assessment_needs_the_leads_failed_assessment(
    api: Api, registry_db: asyncpg.Connection
) -> None:
    # None concluded: refused, naming what is missing.
    code = await _member(api, registry_db, joined_year=LAST)
    refused = await _withdraw(api, code)
    assert error_codes(refused) == ["INVALID_TRANSITION"], refused
    extensions = refused["errors"][0]["extensions"]
    assert extensions["missing"] == "FAILED_MEMBER_ASSESSMENT"
    assert extensions["years"] == [LAST, YEAR] and extensions["status"] == "ACTIVE"
    assert "concludeMemberAssessment" in refused["errors"][0]["message"]

    # Failed last year, passed this year: the latest one counts.
    assert "errors" not in await _conclude(api, LAST, code, False, "设备不足")
    assert "errors" not in await _conclude(api, YEAR, code, True, "整改到位")
    refused = await _withdraw(api, code)
    assert error_codes(refused) == ["INVALID_TRANSITION"]
    assert f"({YEAR}) passed" in refused["errors"][0]["message"]

    # A failure older than last year says nothing of the member now.
    old = await _member(api, registry_db, joined_year=YEAR - 3)
    assert "errors" not in await _conclude(api, YEAR - 2, old, False, "三年前不合格")
    assert error_codes(await _withdraw(api, old)) == ["INVALID_TRANSITION"]

    # The lead's failed assessment of a recent year: expelled, its agreement terminated for it.
    assert "errors" not in await _conclude(api, LAST, old, False, "去年不合格")
    body = await api.run(
        WITHDRAW.replace("agreement { status }", "agreement { status terminationReason }"),
        {"hospital": old, "reason": "ASSESSMENT_FAILED", "note": "依章程第十六条（三）"},
        role="ALLIANCE_ADMIN",
    )
    assert body["data"]["withdrawMember"]["member"] == {
        "code": old,
        "status": "EXPELLED",
        "exitReason": "ASSESSMENT_FAILED",
        "agreement": {"status": "TERMINATED", "terminationReason": "ASSESSMENT_FAILED"},
    }
    # Other exit reasons need no assessment.
    assert "errors" not in await api.run(
        WITHDRAW,
        {"hospital": code, "reason": "LAW_OR_POLICY_VIOLATION", "note": "违规执业"},
        role="ALLIANCE_ADMIN",
    )


async def _audited(
    registry_db: asyncpg.Connection, after: int, operations: set[str]
) -> dict[str, tuple[str, str, list[str]]]:
    """The audit events after id `after` of these operations (written at each request's end)."""
    found: dict[str, tuple[str, str, list[str]]] = {}
    for _ in range(50):
        rows = await registry_db.fetch(
            """SELECT operation, action, outcome, roles FROM audit_event
               WHERE id > $1 AND operation = ANY($2::text[])""",
            after,
            sorted(operations),
        )
        found = {r["operation"]: (r["action"], r["outcome"], list(r["roles"])) for r in rows}
        if set(found) == operations:
            break
        await asyncio.sleep(0.1)
    return found


async def test_the_assessments_and_the_work_reports_writes_are_audited(
    api: Api, demo_env: Demo, registry_db: asyncpg.Connection
) -> None:
    last = await registry_db.fetchval("SELECT coalesce(max(id), 0) FROM audit_event")
    # The lead's conclusion, in the demo alliance, of a hospital of the test's own.
    code = await _member(api, registry_db)
    assert "errors" not in await _conclude(api, YEAR, code, True, "合格")

    # The rest in an alliance of the test's own: its years, reports and standing are nobody
    # else's.
    own = await _alliance_of_its_own(registry_db, demo_env)
    evidence = [{"title": "联盟章程", "location": "秘书处档案", "contentHash": "ab" * 32}]
    steps: list[tuple[str, str, dict[str, Any]]] = [
        (
            "REGULATOR",
            """mutation($input: ScoreAssessmentIndicatorInput!) {
                 scoreAssessmentIndicator(input: $input) { assessment { year } } }""",
            {
                "input": {
                    "year": 2001,
                    "number": 6,
                    "score": 2,
                    "comment": "章程明确权利义务",
                    "assessor": "余晴",
                    "evidence": evidence,
                }
            },
        ),
        (
            "SECRETARIAT",
            """mutation($input: RecordQualityControlResultInput!) {
                 recordQualityControlResult(input: $input) { assessment { year } } }""",
            {"input": {"year": 2001, "hospital": "LHZY", "passed": True, "qcScore": 91.5}},
        ),
        (
            "REGULATOR",
            "mutation { concludeAssessment(year: 2001) { standing } }",
            {},
        ),
        (
            "SECRETARIAT",
            """mutation { saveWorkReportNarrative(year: 2025, half: 1, narrative: "上半年工作总结")
                 { workReport { status } } }""",
            {},
        ),
        (
            "ALLIANCE_ADMIN",
            "mutation { submitWorkReport(year: 2025, half: 1) { workReport { status } } }",
            {},
        ),
    ]
    async with (
        serving(create_app(_settings(demo_env, own, 60))) as url,
        httpx.AsyncClient(base_url=url, timeout=60) as http,
    ):
        for role, query, variables in steps:
            response = await http.post(
                "/graphql",
                json={"query": query, "variables": variables},
                headers={"authorization": f"Bearer {demo_env.token(role)}"},
            )
            assert "errors" not in response.json(), (query, response.json())
        expected = {
            "concludeMemberAssessment": ["MEMBER_ADMIN"],
            "scoreAssessmentIndicator": ["REGULATOR"],
            "recordQualityControlResult": ["SECRETARIAT"],
            "concludeAssessment": ["REGULATOR"],
            "saveWorkReportNarrative": ["SECRETARIAT"],
            "submitWorkReport": ["ALLIANCE_ADMIN"],
        }
        found = await _audited(registry_db, last, set(expected))
    assert {op: (action, outcome) for op, (action, outcome, _) in found.items()} == {
        op: ("WRITE", "SUCCESS") for op in expected
    }
    assert {op: roles for op, (_, _, roles) in found.items()} == expected
