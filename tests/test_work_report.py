"""The semi-annual work report (seed 003) over the real HTTP app on the demo: its counts against the
members' own stores, the narrative, submission and its snapshot, the deadline, and who may read it."""

from __future__ import annotations

import json
from datetime import date
from io import BytesIO
from typing import Any

import asyncpg
import httpx
from openpyxl import load_workbook

from gateway.app import create_app
from gateway.demo import data as demo_data
from gateway.demo.work_report_seed import SUBMITTED_BY, ended_halves
from gateway.settings import load_settings
from resolvers import clock
from tests.conftest import Api, error_codes, serving
from tests.work_report_counts import FIELDS, direction_rule, member_counts

COUNTS = " ".join(FIELDS)
REPORT = f"""
query($year: Int!, $half: Int!) {{
  workReport(year: $year, half: $half) {{
    year half status narrative dueOn late submittedAt submittedBy computedAt provisional
    unreadMembers {COUNTS}
    members {{ hospital {{ code }} complete {COUNTS} }}
  }}
}}"""
REPORTS = "{ workReports { year half status dueOn late submittedAt submittedBy } }"
SAVE = """
mutation($year: Int!, $half: Int!, $narrative: String!) {
  saveWorkReportNarrative(year: $year, half: $half, narrative: $narrative) {
    workReport { status narrative }
  }
}"""
SUBMIT = f"""
mutation($year: Int!, $half: Int!) {{
  submitWorkReport(year: $year, half: $half) {{
    workReport {{ status submittedAt submittedBy late dueOn {COUNTS}
                 members {{ hospital {{ code }} {COUNTS} }} }}
  }}
}}"""
TODAY = clock.today()
# The demo submits the last two half years that have ended; the one before it leaves unsubmitted
# (its data covers it whole), and the one before that the tests submit.
_DRAFT, _LATE = ended_halves(4)[1], ended_halves(4)[0]
DRAFT_YEAR, DRAFT_HALF = _DRAFT.year, _DRAFT.half
LATE_YEAR, LATE_HALF = _LATE.year, _LATE.half
CURRENT_HALF = 1 if TODAY.month <= 6 else 2


def _data(body: dict[str, Any], field: str) -> Any:
    assert "errors" not in body, body
    return body["data"][field]


def _lead(api: Api) -> str:
    return next(m["code"] for m in api.demo.info["members"] if m["role"] == "LEAD")


def _half_window(year: int, half: int) -> tuple[date, date]:
    if half == 1:
        return date(year, 1, 1), date(year, 7, 1)
    return date(year, 7, 1), date(year + 1, 1, 1)


async def test_the_counts_are_the_members_own(api: Api) -> None:
    variables = {"year": DRAFT_YEAR, "half": DRAFT_HALF}
    report = _data(await api.run(REPORT, variables, role="SECRETARIAT"), "workReport")
    assert report["status"] == "DRAFT" and report["provisional"] is False
    assert report["unreadMembers"] == []
    first, end = _half_window(DRAFT_YEAR, DRAFT_HALF)
    lead = _lead(api)
    direction = await direction_rule(api.demo.registry_dsn)
    by_member = {m["hospital"]["code"]: m for m in report["members"]}
    assert set(by_member) == {m["code"] for m in api.demo.info["members"]}
    for member in api.demo.info["members"]:
        expected = await member_counts(member, first, end, direction)
        got = {f: by_member[member["code"]][f] for f in FIELDS}
        assert got == expected, member["code"]
        assert by_member[member["code"]]["complete"] is True
    for field in FIELDS:
        assert report[field] == sum(m[field] for m in report["members"]), field
    # The demo's data has every kind of activity in a half year.
    assert all(report[f] > 0 for f in FIELDS), report
    # The lead sends down, its members send up to it.
    assert by_member[lead]["referralsUp"] == 0 < by_member[lead]["referralsDown"]


async def test_the_demo_has_two_submitted_reports_on_time(api: Api) -> None:
    for period in ended_halves(2):
        variables = {"year": period.year, "half": period.half}
        report = _data(await api.run(REPORT, variables, role="REGULATOR"), "workReport")
        assert report["status"] == "SUBMITTED"
        assert report["submittedBy"] == SUBMITTED_BY
        assert report["late"] is False
        assert report["submittedAt"][:10] < report["dueOn"]
        assert report["narrative"]
        assert report["referralsUp"] > 0


async def test_narrative_submission_snapshot_and_lateness(
    api: Api, registry_db: asyncpg.Connection
) -> None:
    period = {"year": LATE_YEAR, "half": LATE_HALF}
    saved = _data(
        await api.run(SAVE, {**period, "narrative": "  本半年度工作总结。 "}, role="SECRETARIAT"),
        "saveWorkReportNarrative",
    )
    assert saved["workReport"] == {"status": "DRAFT", "narrative": "本半年度工作总结。"}
    draft = _data(await api.run(REPORT, period, role="ALLIANCE_ADMIN"), "workReport")
    # Its deadline has passed and it is not submitted: missing, hence late.
    assert draft["late"] is True and draft["dueOn"] == str(_LATE.due_on(15))

    submitted = _data(await api.run(SUBMIT, period, role="ALLIANCE_ADMIN"), "submitWorkReport")
    report = submitted["workReport"]
    assert report["status"] == "SUBMITTED" and report["late"] is True
    assert report["submittedBy"]
    assert {f: report[f] for f in FIELDS} == {f: draft[f] for f in FIELDS}

    again = await api.run(SUBMIT, period, role="SECRETARIAT")
    assert error_codes(again) == ["INVALID_TRANSITION"]
    rewrite = await api.run(SAVE, {**period, "narrative": "改写"}, role="SECRETARIAT")
    assert error_codes(rewrite) == ["INVALID_TRANSITION"]

    # A submitted report is read from what was sent, not counted again.
    stored = json.loads(
        await registry_db.fetchval(
            "SELECT counts FROM work_report WHERE alliance_id = $1 AND year = $2 AND half = $3",
            demo_data.ALLIANCE_ID,
            LATE_YEAR,
            LATE_HALF,
        )
    )
    lead = _lead(api)
    entry = next(m for m in stored["members"] if m["hospital"] == lead)
    entry["counts"]["referrals_down"] += 1000
    await registry_db.execute(
        "UPDATE work_report SET counts = $4::jsonb WHERE alliance_id = $1 AND year = $2 "
        "AND half = $3",
        demo_data.ALLIANCE_ID,
        LATE_YEAR,
        LATE_HALF,
        json.dumps(stored),
    )
    regulator = _data(await api.run(REPORT, period, role="REGULATOR"), "workReport")
    assert regulator["referralsDown"] == report["referralsDown"] + 1000
    assert regulator["narrative"] == "本半年度工作总结。"


async def test_a_half_year_not_ended_cannot_be_submitted(api: Api) -> None:
    current = {"year": TODAY.year, "half": CURRENT_HALF}
    refused = await api.run(SUBMIT, current, role="SECRETARIAT")
    assert error_codes(refused) == ["INVALID_TRANSITION"]
    draft = _data(await api.run(REPORT, current, role="SECRETARIAT"), "workReport")
    assert draft["status"] == "DRAFT" and draft["late"] is False


async def test_the_regulator_sees_submitted_reports_and_which_are_missing(api: Api) -> None:
    draft = await api.run(REPORT, {"year": DRAFT_YEAR, "half": DRAFT_HALF}, role="REGULATOR")
    assert _data(draft, "workReport") is None
    listed = _data(await api.run(REPORTS, role="REGULATOR"), "workReports")
    halves = [(r["year"], r["half"]) for r in listed]
    assert halves == sorted(halves, reverse=True)
    assert halves[0] == (TODAY.year, CURRENT_HALF)
    by_half = {(r["year"], r["half"]): r for r in listed}
    for period in ended_halves(2):
        assert by_half[(period.year, period.half)]["status"] == "SUBMITTED"
        assert by_half[(period.year, period.half)]["late"] is False
    missing = by_half[(DRAFT_YEAR, DRAFT_HALF)]
    assert missing["status"] == "DRAFT" and missing["late"] is True
    assert missing["submittedAt"] is None
    assert by_half[(TODAY.year, CURRENT_HALF)]["late"] is False


async def test_who_may_read_and_write_reports(api: Api) -> None:
    period = {"year": DRAFT_YEAR, "half": DRAFT_HALF}
    for role, member in (("CLINICIAN", "LHZX"), ("MEMBER_ADMIN", "LHZX"), ("OPS", None)):
        body = await api.run(REPORT, period, role=role, member=member)
        assert error_codes(body) == ["FORBIDDEN"], (role, body)
        assert error_codes(await api.run(REPORTS, role=role, member=member)) == ["FORBIDDEN"]
    for mutation, extra in ((SAVE, {"narrative": "x"}), (SUBMIT, {})):
        body = await api.run(mutation, {**period, **extra}, role="REGULATOR")
        assert error_codes(body) == ["FORBIDDEN"]
        body = await api.run(mutation, {**period, **extra}, role="CLINICIAN", member="LHZX")
        assert error_codes(body) == ["FORBIDDEN"]


async def test_bad_periods_are_refused(api: Api) -> None:
    for year, half in ((TODAY.year, 3), (TODAY.year, 0), (1999, 1), (TODAY.year + 1, 1)):
        body = await api.run(REPORT, {"year": year, "half": half}, role="SECRETARIAT")
        assert error_codes(body) == ["BAD_USER_INPUT"], (year, half)
    if CURRENT_HALF == 1:
        body = await api.run(REPORT, {"year": TODAY.year, "half": 2}, role="SECRETARIAT")
        assert error_codes(body) == ["BAD_USER_INPUT"]
    long_text = {"year": DRAFT_YEAR, "half": DRAFT_HALF, "narrative": "字" * 20_001}
    assert error_codes(await api.run(SAVE, long_text, role="SECRETARIAT")) == ["BAD_USER_INPUT"]


async def test_a_member_that_cannot_be_read_makes_the_report_provisional(api: Api) -> None:
    # LHZX's exchange database unreachable (nothing listens on port 1): its part is missing,
    # said so, and the rest is counted as ever.
    settings = load_settings(api.demo.root / "alliance.toml", events={"watch": False})
    members = [
        m.model_copy(update={"dsn": "postgresql://x:y@127.0.0.1:1/none", "dsn_env": None})
        if m.code == "LHZX"
        else m
        for m in settings.members
    ]
    variables = {"year": DRAFT_YEAR, "half": DRAFT_HALF}
    healthy = _data(await api.run(REPORT, variables, role="SECRETARIAT"), "workReport")
    token = api.demo.token("SECRETARIAT")
    async with (
        serving(create_app(settings.model_copy(update={"members": members}))) as base,
        httpx.AsyncClient(base_url=base, timeout=30) as http,
    ):
        down = await Api(http=http, demo=api.demo).post(REPORT, variables, token=token)
        body = down.json()
        assert {e["extensions"].get("member") for e in body["errors"]} == {"LHZX"}
        report = body["data"]["workReport"]
        assert report["provisional"] is True and report["unreadMembers"] == ["LHZX"]
        by_member = {m["hospital"]["code"]: m for m in report["members"]}
        assert by_member["LHZX"]["complete"] is False
        assert by_member["LHZX"]["referralsUp"] == 0
        for code, member in by_member.items():
            if code != "LHZX":
                assert member == next(
                    m for m in healthy["members"] if m["hospital"]["code"] == code
                )
        assert report["referralsUp"] < healthy["referralsUp"]
        # The download says so too.
        response = await http.get(
            f"/exports/work-report-{DRAFT_YEAR}-H{DRAFT_HALF}.xlsx",
            headers={"authorization": f"Bearer {token}"},
        )
        assert response.status_code == 200
        sheet = load_workbook(BytesIO(response.content)).worksheets[0]
        cells = [c.value for row in sheet.iter_rows() for c in row]
        assert any("未能读取" in str(v) for v in cells)
