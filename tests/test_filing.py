"""Filing (备案), seed 003 Annex 2, as a workflow through the public API with the demo's tokens: the
demo's own filing, the whole path to FILED, rejections and re-drafts, every step out of order or
by the wrong role, the naming rule and the snapshot the application keeps."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest

from gateway.demo.data import ALLIANCE_ID
from resolvers import clock
from tests.conftest import Api, Demo, error_codes

FILING = """{ alliance { filing { status number
  history { attempt step role at by authority favourable opinion }
  applications { attempt status number } } } }"""
APPLICATION = """id attempt status nextStep name specialty level foundedOn leadDepartment
  departmentHead disciplineLeader leadHospitalAffiliation municipalOpinionRequired
  leadHospital { code name grade type ownership divisionCode }
  members { hospital { code name grade type ownership } role joinedOn
            agreement { signedOn effectiveOn expiresOn termYears status } }
  charterVersion charterResolutions { number summary } disciplineBuilding developmentPlan
  draftedAt decidedAt number rejectionReason
  history { attempt step role at by authority favourable opinion }"""
PAYLOAD = f"{{ application {{ {APPLICATION} }} filing {{ status number }} }}"
DRAFT = f"mutation($input: DraftFilingInput!) {{ draftFiling(input: $input) {PAYLOAD} }}"
OPINION = f"""mutation($input: RecordFilingOpinionInput!) {{
  recordFilingOpinion(input: $input) {PAYLOAD} }}"""
DECIDE = f"mutation($input: DecideFilingInput!) {{ decideFiling(input: $input) {PAYLOAD} }}"
NUMBER = re.compile(r"^豫卫联备〔(\d{4})〕(\d{3})号$")


def draft_input(**overrides: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "departmentHead": "郭晓峰",
        "leadHospitalAffiliation": "PROVINCIAL",
        "disciplineBuilding": "国家临床重点专科；正骨手法、创伤、脊柱、关节亚专业齐全。",
    }
    values.update(overrides)
    return values


async def step(
    api: Api, query: str, values: dict[str, Any], role: str, member: str | None = None
) -> dict[str, Any]:
    body = await api.run(query, {"input": values}, role=role, member=member)
    assert "errors" not in body, body
    (payload,) = body["data"].values()
    return payload


async def lead_opinion(api: Api, favourable: bool = True) -> dict[str, Any]:
    values = {
        "step": "LEAD_HOSPITAL_OPINION",
        "opinion": "同意并给予支持。",
        "favourable": favourable,
    }
    return await step(api, OPINION, values, "MEMBER_ADMIN", "LYZG")


async def assessment(api: Api) -> dict[str, Any]:
    values = {"step": "ASSESSMENT_OPINION", "opinion": "组建必要、可行。"}
    return await step(api, OPINION, values, "REGULATOR")


async def alliance_filing(db: asyncpg.Connection) -> tuple[str, str | None]:
    # Other tests register alliances of their own beside the demo's.
    row = await db.fetchrow(
        "SELECT filing_status, filing_number FROM alliance WHERE id = $1", ALLIANCE_ID
    )
    return row["filing_status"], row["filing_number"]


@pytest.fixture(autouse=True)
async def no_application_left_open(demo_env: Demo) -> AsyncIterator[None]:
    """Every test starts and ends with no application under way, whatever happened in it."""
    yield
    db = await asyncpg.connect(demo_env.registry_dsn)
    try:
        await db.execute(
            """UPDATE filing_application SET status = 'REJECTED', decided_at = now(),
                   rejection_reason = 'closed by the test suite'
               WHERE status NOT IN ('FILED', 'REJECTED')"""
        )
    finally:
        await db.close()


async def test_the_demo_alliance_is_filed_with_its_whole_history(api: Api) -> None:
    body = await api.run(FILING, role="REGULATOR")
    assert "errors" not in body, body
    filing = body["data"]["alliance"]["filing"]
    assert filing["status"] == "FILED" and NUMBER.match(filing["number"])
    first = [h for h in filing["history"] if h["attempt"] == 1]
    assert [(h["step"], h["role"]) for h in first] == [
        ("DRAFTED", "SECRETARIAT"),
        ("LEAD_HOSPITAL_OPINION", "MEMBER_ADMIN"),
        ("ASSESSMENT_OPINION", "REGULATOR"),
        ("DECISION", "REGULATOR"),
    ]
    assert [h["at"] for h in first] == sorted(h["at"] for h in first)
    assert first[1]["authority"].startswith("河南省洛阳正骨医院") and first[1]["opinion"]
    assert first[3]["favourable"] is True and first[3]["authority"] == "河南省卫生健康委员会"
    assert all(h["by"] for h in first)
    (filed,) = [a for a in filing["applications"] if a["attempt"] == 1]
    assert filed == {"attempt": 1, "status": "FILED", "number": "豫卫联备〔2024〕017号"}

    # Any authenticated reader sees the filing: it is the alliance's public record.
    body = await api.run(
        "{ alliance { filing { status application { attempt leadHospital { code } } } } }",
        role="CLINICIAN",
        member="LHRM2",
    )
    assert "errors" not in body, body
    assert body["data"]["alliance"]["filing"]["application"]["leadHospital"]["code"] == "LYZG"


async def test_a_re_filing_goes_from_draft_to_filed_through_the_municipal_opinion(
    api: Api, registry_db: asyncpg.Connection
) -> None:
    before = await alliance_filing(registry_db)
    assert before[0] == "FILED"
    drafted = await step(
        api, DRAFT, draft_input(leadHospitalAffiliation="MUNICIPAL"), "SECRETARIAT"
    )
    application = drafted["application"]
    assert application["status"] == "AWAITING_LEAD_HOSPITAL_OPINION"
    assert application["nextStep"] == "LEAD_HOSPITAL_OPINION"
    assert application["municipalOpinionRequired"] is True
    assert application["name"] == "河南省洛阳正骨医院骨伤专科联盟"
    # The filing in force stays while the new application is under way.
    assert drafted["filing"] == {"status": before[0], "number": before[1]}

    after_lead = await lead_opinion(api)
    assert after_lead["application"]["nextStep"] == "MUNICIPAL_OPINION"
    municipal = await step(
        api,
        OPINION,
        {
            "step": "MUNICIPAL_OPINION",
            "opinion": "支持、同意。",
            "authority": "洛阳市卫生健康委员会",
        },
        "REGULATOR",
    )
    assert municipal["application"]["status"] == "AWAITING_ASSESSMENT"
    assert (await assessment(api))["application"]["status"] == "AWAITING_DECISION"
    decided = await step(api, DECIDE, {"decision": "FILED", "opinion": "同意备案。"}, "REGULATOR")

    application = decided["application"]
    assert application["status"] == "FILED" and application["nextStep"] is None
    match = NUMBER.match(application["number"])
    assert match and int(match[1]) == clock.today().year
    assert application["number"] != before[1]
    assert decided["filing"] == {"status": "FILED", "number": application["number"]}
    assert await alliance_filing(registry_db) == ("FILED", application["number"])
    history = application["history"]
    assert [(h["step"], h["role"], h["authority"]) for h in history] == [
        ("DRAFTED", "SECRETARIAT", None),
        ("LEAD_HOSPITAL_OPINION", "MEMBER_ADMIN", "河南省洛阳正骨医院（河南省骨科医院）"),
        ("MUNICIPAL_OPINION", "REGULATOR", "洛阳市卫生健康委员会"),
        ("ASSESSMENT_OPINION", "REGULATOR", "省专科联盟管理办公室"),
        ("DECISION", "REGULATOR", "河南省卫生健康委员会"),
    ]
    assert history[0]["by"] == "demo-secretariat-lyzg"
    assert (
        history[1]["by"] == "demo-member_admin-lyzg" and history[1]["opinion"] == "同意并给予支持。"
    )
    assert all(h["at"] for h in history)

    # Each number is unique: filing again takes the next one.
    await step(api, DRAFT, draft_input(), "ALLIANCE_ADMIN")
    await lead_opinion(api)
    await assessment(api)
    again = await step(api, DECIDE, {"decision": "FILED"}, "REGULATOR")
    second = NUMBER.match(again["application"]["number"])
    assert second and int(second[2]) == int(match[2]) + 1

    # Each step is in the audit trail, as its subject and role.
    for _ in range(50):
        body = await api.run(
            """{ auditTrail(subject: "demo-regulator-alliance", first: 50) {
                 edges { node { operation action roles outcome } } } }""",
            role="ALLIANCE_ADMIN",
        )
        operations = {e["node"]["operation"] for e in body["data"]["auditTrail"]["edges"]}
        if {"recordFilingOpinion", "decideFiling"} <= operations:
            break
        await asyncio.sleep(0.1)
    assert {"recordFilingOpinion", "decideFiling"} <= operations


async def test_the_application_keeps_the_registry_as_it_stood(
    api: Api, registry_db: asyncpg.Connection
) -> None:
    drafted = await step(api, DRAFT, draft_input(), "SECRETARIAT")
    application = drafted["application"]
    assert application["leadHospital"] == {
        "code": "LYZG",
        "name": "河南省洛阳正骨医院（河南省骨科医院）",
        "grade": "GRADE_3A",
        "type": "TCM",
        "ownership": "PUBLIC",
        "divisionCode": "410300",
    }
    assert application["leadDepartment"] == "骨伤科" and application["disciplineLeader"] == "李建国"
    assert application["departmentHead"] == "郭晓峰"
    assert application["developmentPlan"].startswith("以骨伤专科为纽带")
    assert application["charterVersion"] == "试行 1.0"
    assert any("章程" in r["summary"] for r in application["charterResolutions"])

    body = await api.run(
        """{ alliance { members(first: 100) { edges { node { code role
             agreement { signedOn expiresOn termYears status } } } } } }""",
        role="REGULATOR",
    )
    live = {
        e["node"]["code"]: e["node"]
        for e in body["data"]["alliance"]["members"]["edges"]
        if e["node"]["role"] != "LEAD"
    }
    filed = {m["hospital"]["code"]: m for m in application["members"]}
    assert set(filed) == set(live) and "LYZG" not in filed
    for code, member in filed.items():
        assert member["role"] == live[code]["role"]
        agreement = member["agreement"]
        assert {k: agreement[k] for k in ("signedOn", "expiresOn", "termYears", "status")} == (
            live[code]["agreement"]
        )

    # What is stored is the form and the registry's hospitals: no patient, nothing clinical.
    form = json.loads(
        await registry_db.fetchval("SELECT form FROM filing_application ORDER BY id DESC LIMIT 1")
    )
    assert set(form) == {
        "name", "specialty", "level", "founded_on", "lead_department", "department_head",
        "discipline_leader", "lead_hospital", "lead_hospital_affiliation", "members",
        "charter_version", "charter_resolutions", "discipline_building", "development_plan",
    }  # fmt: skip
    assert set(form["members"][0]) == {"hospital", "role", "joined_on", "agreement"}
    assert "patient" not in json.dumps(form) and "pseudonym" not in json.dumps(form)

    # The snapshot does not follow the registry: a later change leaves it as drafted.
    await registry_db.execute(
        "UPDATE alliance SET charter_version = '试行 2.0' WHERE id = 'lyzg-orthopaedics'"
    )
    try:
        body = await api.run(
            "{ alliance { charterVersion filing { application { charterVersion } } } }",
            role="REGULATOR",
        )
        alliance = body["data"]["alliance"]
        assert alliance["charterVersion"] == "试行 2.0"
        assert alliance["filing"]["application"]["charterVersion"] == "试行 1.0"
    finally:
        await registry_db.execute(
            "UPDATE alliance SET charter_version = '试行 1.0' WHERE id = 'lyzg-orthopaedics'"
        )


async def test_a_rejected_application_is_drafted_again(
    api: Api, registry_db: asyncpg.Connection
) -> None:
    in_force = await alliance_filing(registry_db)
    await step(api, DRAFT, draft_input(), "SECRETARIAT")
    await lead_opinion(api)
    await assessment(api)

    body = await api.run(DECIDE, {"input": {"decision": "REJECTED"}}, role="REGULATOR")
    assert error_codes(body) == ["BAD_USER_INPUT"]
    assert body["errors"][0]["extensions"]["field"] == "input.opinion"

    rejected = await step(
        api,
        DECIDE,
        {"decision": "REJECTED", "opinion": "成员单位协议多已到期，请续签后再报。"},
        "REGULATOR",
    )
    application = rejected["application"]
    assert application["status"] == "REJECTED" and application["number"] is None
    assert application["rejectionReason"] == "成员单位协议多已到期，请续签后再报。"
    assert application["history"][-1]["favourable"] is False
    # A rejected re-filing leaves the filing in force alone.
    assert await alliance_filing(registry_db) == in_force

    redrafted = (await step(api, DRAFT, draft_input(), "SECRETARIAT"))["application"]
    assert redrafted["attempt"] == application["attempt"] + 1
    assert redrafted["status"] == "AWAITING_LEAD_HOSPITAL_OPINION"
    assert [h["step"] for h in redrafted["history"]] == ["DRAFTED"]

    # Without the lead hospital's consent the application ends, rejected.
    refused = (await lead_opinion(api, favourable=False))["application"]
    assert refused["status"] == "REJECTED" and refused["nextStep"] is None
    assert refused["rejectionReason"].startswith("河南省洛阳正骨医院（河南省骨科医院）不同意")
    assert await alliance_filing(registry_db) == in_force


async def test_an_alliance_not_yet_filed_follows_its_application(
    api: Api, registry_db: asyncpg.Connection
) -> None:
    in_force = await alliance_filing(registry_db)
    await registry_db.execute(
        "UPDATE alliance SET filing_status = 'REJECTED', filing_number = NULL WHERE id = $1",
        ALLIANCE_ID,
    )
    try:
        seen = [(await step(api, DRAFT, draft_input(), "SECRETARIAT"))["filing"]["status"]]
        seen.append((await lead_opinion(api))["filing"]["status"])
        seen.append((await assessment(api))["filing"]["status"])
        decided = await step(
            api, DECIDE, {"decision": "REJECTED", "opinion": "材料不全。"}, "REGULATOR"
        )
        seen.append(decided["filing"]["status"])
        assert seen == ["APPLIED", "UNDER_REVIEW", "UNDER_REVIEW", "REJECTED"]
        assert decided["filing"]["number"] is None

        await step(api, DRAFT, draft_input(), "SECRETARIAT")
        await lead_opinion(api)
        await assessment(api)
        filed = await step(api, DECIDE, {"decision": "FILED"}, "REGULATOR")
        assert filed["filing"]["status"] == "FILED"
        assert filed["filing"]["number"] == filed["application"]["number"]
    finally:
        if (await alliance_filing(registry_db))[0] != "FILED":
            await registry_db.execute(
                "UPDATE alliance SET filing_status = $2, filing_number = $3 WHERE id = $1",
                ALLIANCE_ID,
                *in_force,
            )


def refusal(body: dict[str, Any]) -> tuple[str, str, dict[str, Any]]:
    assert "data" not in body or all(v is None for v in (body.get("data") or {}).values()), body
    (error,) = body["errors"]
    return error["extensions"]["code"], error["message"], error["extensions"]


async def test_every_step_out_of_order_is_an_invalid_transition_naming_the_next(
    api: Api, registry_db: asyncpg.Connection
) -> None:
    async def attempt(
        query: str, values: dict[str, Any], role: str, member: str | None = None
    ) -> tuple[str, str, dict[str, Any]]:
        return refusal(await api.run(query, {"input": values}, role=role, member=member))

    lead = {"step": "LEAD_HOSPITAL_OPINION", "opinion": "同意。"}
    municipal = {
        "step": "MUNICIPAL_OPINION",
        "opinion": "同意。",
        "authority": "洛阳市卫生健康委员会",
    }
    assess = {"step": "ASSESSMENT_OPINION", "opinion": "可行。"}
    filed = {"decision": "FILED"}

    # None under way: only a draft.
    for query, values, role, member in (
        (OPINION, lead, "MEMBER_ADMIN", "LYZG"),
        (OPINION, assess, "REGULATOR", None),
        (DECIDE, filed, "REGULATOR", None),
    ):
        code, message, extensions = await attempt(query, values, role, member)
        assert code == "INVALID_TRANSITION" and extensions["expected"] == "DRAFTED", message
        assert "draftFiling" in message
    steps_before = await registry_db.fetchval("SELECT count(*) FROM filing_step")

    await step(api, DRAFT, draft_input(), "SECRETARIAT")
    code, message, extensions = await attempt(DRAFT, draft_input(), "SECRETARIAT")
    assert (code, extensions["expected"]) == ("INVALID_TRANSITION", "LEAD_HOSPITAL_OPINION")
    assert extensions["status"] == "AWAITING_LEAD_HOSPITAL_OPINION"
    assert "MEMBER_ADMIN of the lead hospital LYZG" in message
    for query, values in ((OPINION, assess), (DECIDE, filed), (OPINION, municipal)):
        code, message, extensions = await attempt(query, values, "REGULATOR")
        assert (code, extensions["expected"]) == ("INVALID_TRANSITION", "LEAD_HOSPITAL_OPINION")

    await lead_opinion(api)
    # No municipal opinion for a hospital under the provincial commission: it is skipped.
    code, message, extensions = await attempt(OPINION, municipal, "REGULATOR")
    assert (code, extensions["expected"]) == ("INVALID_TRANSITION", "ASSESSMENT_OPINION")
    for query, values, role, member in (
        (OPINION, lead, "MEMBER_ADMIN", "LYZG"),
        (DECIDE, filed, "REGULATOR", None),
        (DRAFT, draft_input(), "ALLIANCE_ADMIN", None),
    ):
        code, message, extensions = await attempt(query, values, role, member)
        assert (code, extensions["expected"]) == ("INVALID_TRANSITION", "ASSESSMENT_OPINION")

    await assessment(api)
    code, message, extensions = await attempt(OPINION, assess, "REGULATOR")
    assert (code, extensions["expected"]) == ("INVALID_TRANSITION", "DECISION")
    assert "decideFiling" in message
    await step(api, DECIDE, {"decision": "REJECTED", "opinion": "测试。"}, "REGULATOR")
    code, message, extensions = await attempt(DECIDE, filed, "REGULATOR")
    assert (code, extensions["expected"]) == ("INVALID_TRANSITION", "DRAFTED")
    assert extensions["status"] == "REJECTED"
    # Refusals store nothing: the steps are the four taken.
    assert await registry_db.fetchval("SELECT count(*) FROM filing_step") == steps_before + 4


async def test_each_step_refuses_the_wrong_role(api: Api, registry_db: asyncpg.Connection) -> None:
    async def forbidden(
        query: str, values: dict[str, Any], role: str, member: str | None = None
    ) -> str:
        code, message, _ = refusal(
            await api.run(query, {"input": values}, role=role, member=member)
        )
        assert code == "FORBIDDEN", message
        return message

    for role, member in (
        ("REGULATOR", None),
        ("MEMBER_ADMIN", "LYZG"),
        ("OPS", None),
        ("CLINICIAN", "LYZG"),
    ):
        message = await forbidden(DRAFT, draft_input(), role, member)
        assert "SECRETARIAT or ALLIANCE_ADMIN" in message and "DRAFTED" in message

    await step(api, DRAFT, draft_input(leadHospitalAffiliation="MUNICIPAL"), "SECRETARIAT")
    lead = {"step": "LEAD_HOSPITAL_OPINION", "opinion": "同意。"}
    for role, member in (
        ("MEMBER_ADMIN", "LHZX"),
        ("ALLIANCE_ADMIN", None),
        ("SECRETARIAT", None),
        ("REGULATOR", None),
    ):
        message = await forbidden(OPINION, lead, role, member)
        assert "MEMBER_ADMIN of the lead hospital LYZG" in message
    await lead_opinion(api)
    municipal = {
        "step": "MUNICIPAL_OPINION",
        "opinion": "同意。",
        "authority": "洛阳市卫生健康委员会",
    }
    for role in ("SECRETARIAT", "ALLIANCE_ADMIN"):
        assert "REGULATOR" in await forbidden(OPINION, municipal, role)
    body = await api.run(OPINION, {"input": {**municipal, "authority": None}}, role="REGULATOR")
    assert refusal(body)[0] == "BAD_USER_INPUT" and refusal(body)[2]["field"] == "input.authority"
    await step(api, OPINION, municipal, "REGULATOR")
    assess = {"step": "ASSESSMENT_OPINION", "opinion": "可行。"}
    for role, member in (("SECRETARIAT", None), ("MEMBER_ADMIN", "LYZG")):
        await forbidden(OPINION, assess, role, member)
    await assessment(api)
    for role in ("ALLIANCE_ADMIN", "SECRETARIAT", "OPS"):
        assert "DECISION" in await forbidden(DECIDE, {"decision": "FILED"}, role)
    status = await registry_db.fetchval(
        "SELECT status FROM filing_application ORDER BY id DESC LIMIT 1"
    )
    assert status == "AWAITING_DECISION"


@pytest.mark.parametrize(
    ("name", "rule"),
    [
        ("洛阳正骨医院骨伤专科联盟", "PROVINCE_PREFIX"),
        ("陕西省洛阳正骨医院骨伤专科联盟", "PROVINCE_PREFIX"),
        ("河南省洛阳正骨医院骨伤专科协作组", "SUFFIX"),
        ("河南省洛阳正骨医院心血管专科联盟", "SPECIALTY"),
        ("河南省骨伤专科联盟", "LEAD_UNIT"),
        ("联盟", "LENGTH"),
    ],
)
async def test_the_naming_rule_says_what_is_wrong(
    api: Api, registry_db: asyncpg.Connection, name: str, rule: str
) -> None:
    before = await registry_db.fetchval("SELECT count(*) FROM filing_application")
    body = await api.run(DRAFT, {"input": draft_input(name=name)}, role="SECRETARIAT")
    code, message, extensions = refusal(body)
    assert code == "BAD_USER_INPUT" and extensions["field"] == "input.name"
    assert extensions["rule"] == rule and "naming rule" in message
    assert await registry_db.fetchval("SELECT count(*) FROM filing_application") == before


@pytest.mark.parametrize(
    "name",
    [
        "河南洛阳正骨医院骨伤科专科联盟",
        "河南省洛阳正骨医院骨伤专科医联体",
        "河南省洛阳正骨骨伤联盟",
    ],
)
async def test_names_under_the_rule_are_accepted(api: Api, name: str) -> None:
    drafted = await step(api, DRAFT, draft_input(name=f"  {name} "), "ALLIANCE_ADMIN")
    assert drafted["application"]["name"] == name


@pytest.mark.parametrize(
    ("values", "field"),
    [
        (draft_input(departmentHead="  "), "input.departmentHead"),
        (draft_input(disciplineBuilding=""), "input.disciplineBuilding"),
        (draft_input(disciplineBuilding="很" * 4001), "input.disciplineBuilding"),
        (draft_input(foundedOn="2999-01-01"), "input.foundedOn"),
    ],
)
async def test_a_bad_draft_is_refused_naming_the_field(
    api: Api, values: dict[str, Any], field: str
) -> None:
    code, _, extensions = refusal(await api.run(DRAFT, {"input": values}, role="SECRETARIAT"))
    assert (code, extensions["field"]) == ("BAD_USER_INPUT", field)
