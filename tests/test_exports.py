"""The XLSX documents the office hands in, downloaded from the real app over HTTP and opened with
openpyxl: the seed forms' headings, the right numbers, and refusals that are never a 500."""

from __future__ import annotations

import zipfile
from datetime import date, datetime
from io import BytesIO
from typing import Any

import httpx
import pytest
from openpyxl import load_workbook
from openpyxl.worksheet.worksheet import Worksheet

from gateway.demo.work_report_seed import ended_halves
from resolvers import clock
from tests.conftest import Api
from tests.work_report_counts import FIELDS, direction_rule, member_counts

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
TODAY = clock.today()
WORK_HEADINGS = (
    "成员单位",
    "举办学术活动次数",
    "赴联盟单位巡诊次数",
    "开展远程会诊次数",
    "为联盟单位培训人员数",
    "通过专科联盟上转病例数",
    "通过专科联盟下转病例数",
    "帮助联盟单位开展新技术、新业务数",
)
# Seed 003 Annex 1 (陕西省专科联盟审核评估表), its sections and headings.
FORM_HEADINGS = (
    "填报人:",
    "联系方式:",
    "基本情况",
    "联盟名称",
    "牵头专业学科(科室)",
    "所属医院",
    "成立时间",
    "是否制定联盟章程",
    "是否与联盟单位签订协议",
    "是否成立联盟理事会",
    "联盟成员单位",
    "(填写所有签订协议的联盟成员单位)",
    "联盟学科建设情况",
    "近一年内联盟工作开展情况",
    "举办学术活动次数",
    "赴联盟单位巡诊次数",
    "开展远程会诊次数",
    "为联盟单位培训人员数",
    "通过专科联盟上转病例数",
    "通过专科联盟下转病例数",
    "其他:",
    "(如帮助联盟单位开展新技术、新业务，提升诊疗水平等情况)",
    "所在医院对专科联盟政策支持情况",
    "专科联盟开展工作情况评价",
)
COUNTS = " ".join(FIELDS)
REPORT = f"""query($year: Int!, $half: Int!) {{ workReport(year: $year, half: $half) {{
  submittedAt {COUNTS} members {{ hospital {{ code name }} {COUNTS} }} }} }}"""


async def _get(api: Api, path: str, token: str | None) -> httpx.Response:
    headers = {"authorization": f"Bearer {token}"} if token else {}
    return await api.http.get(path, headers=headers, timeout=60)


def _sheet(response: httpx.Response) -> Worksheet:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == XLSX
    ws = load_workbook(BytesIO(response.content)).active
    assert ws is not None
    return ws


def _find(ws: Worksheet, text: str) -> tuple[int, int]:
    for row in ws.iter_rows():
        for c in row:
            if c.value == text:
                return c.row, c.column
    raise AssertionError(f"{text!r} is not in the sheet")


def _below(ws: Worksheet, text: str) -> Any:
    row, column = _find(ws, text)
    return ws.cell(row + 1, column).value


async def test_the_submitted_work_report_downloads_as_sent(api: Api) -> None:
    period = ended_halves(1)[0]
    token = api.demo.token("REGULATOR")
    ws = _sheet(await _get(api, f"/exports/work-report-{period.year}-H{period.half}.xlsx", token))
    body = await api.run(REPORT, {"year": period.year, "half": period.half}, role="REGULATOR")
    report = body["data"]["workReport"]
    assert "工作情况总结" in ws.title
    header_row, _ = _find(ws, "成员单位")
    assert [ws.cell(header_row, c).value for c in range(1, 9)] == list(WORK_HEADINGS)
    rows = {
        str(ws.cell(r, 1).value): [ws.cell(r, c).value for c in range(2, 9)]
        for r in range(header_row + 1, ws.max_row + 1)
        if ws.cell(r, 1).value
    }
    for member in report["members"]:
        label = f"{member['hospital']['name']}（{member['hospital']['code']}）"
        assert rows[label] == [member[f] for f in FIELDS], label
    assert rows["合计"] == [report[f] for f in FIELDS]
    assert report["referralsUp"] > 0
    assert "已报送" in [c.value for row in ws.iter_rows() for c in row]
    # When it was sent, on the alliance's calendar (China Standard Time).
    row, column = _find(ws, "报送时间")
    sent = datetime.fromisoformat(report["submittedAt"]).astimezone(clock.CHINA_STANDARD_TIME)
    assert ws.cell(row, column + 1).value == sent.strftime("%Y-%m-%d %H:%M")


async def test_the_review_form_has_the_seed_headings_and_the_years_counts(api: Api) -> None:
    year = TODAY.year - 1
    ws = _sheet(await _get(api, f"/exports/review-form-{year}.xlsx", api.demo.token("SECRETARIAT")))
    for heading in FORM_HEADINGS:
        _find(ws, heading)
    _find(ws, f"{year + 1} 年度联盟单位重点任务目标")
    members = api.demo.info["members"]
    direction = await direction_rule(api.demo.registry_dsn)
    expected = dict.fromkeys(FIELDS, 0)
    for member in members:
        counts = await member_counts(member, date(year, 1, 1), date(year + 1, 1, 1), direction)
        for field in FIELDS:
            expected[field] += counts[field]
    annex = {
        "academicEvents": "举办学术活动次数",
        "onSiteTours": "赴联盟单位巡诊次数",
        "remoteConsultations": "开展远程会诊次数",
        "peopleTrained": "为联盟单位培训人员数",
        "referralsUp": "通过专科联盟上转病例数",
        "referralsDown": "通过专科联盟下转病例数",
    }
    for field, heading in annex.items():
        assert _below(ws, heading) == expected[field], heading
    assert all(expected[f] > 0 for f in FIELDS), expected
    assert f"开展新技术、新业务 {expected['newTechniques']} 项" in str(
        _below(ws, "(如帮助联盟单位开展新技术、新业务，提升诊疗水平等情况)")
    )
    # The registry's facts.
    row, column = _find(ws, "联盟名称")
    assert ws.cell(row, column + 1).value == "河南省洛阳正骨医院骨伤专科联盟"
    row, column = _find(ws, "是否成立联盟理事会")
    assert ws.cell(row, column + 1).value == "是 ☑  否 □"
    listed = str(_below(ws, "(填写所有签订协议的联盟成员单位)"))
    assert all(m["name"] in listed for m in members if m["role"] != "LEAD")


async def test_a_draft_is_the_offices_until_submitted(api: Api) -> None:
    draft = ended_halves(3)[0]
    path = f"/exports/work-report-{draft.year}-H{draft.half}.xlsx"
    refused = await _get(api, path, api.demo.token("REGULATOR"))
    assert refused.status_code == 404
    assert refused.json()["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    ws = _sheet(await _get(api, path, api.demo.token("ALLIANCE_ADMIN")))
    assert "草稿（未报送）" in [c.value for row in ws.iter_rows() for c in row]


@pytest.mark.parametrize(
    "path",
    [
        f"/exports/work-report-{TODAY.year - 1}-H1.xlsx",
        f"/exports/review-form-{TODAY.year - 1}.xlsx",
        f"/exports/assessment-{TODAY.year - 1}.xlsx",
    ],
)
async def test_refusals(api: Api, path: str) -> None:
    anonymous = await _get(api, path, None)
    assert anonymous.status_code == 401
    assert anonymous.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    assert (await _get(api, path, "not-a-token")).status_code == 401
    for role, member in (("CLINICIAN", "LHZX"), ("MEMBER_ADMIN", "LHZX"), ("OPS", None)):
        refused = await _get(api, path, api.demo.token(role, member))
        assert refused.status_code == 403, (role, refused.text)
        assert refused.json()["errors"][0]["extensions"]["code"] == "FORBIDDEN"


@pytest.mark.parametrize(
    "name",
    [
        "work-report-20x5-H1.xlsx",
        f"work-report-{TODAY.year - 1}-H3.xlsx",
        f"work-report-{TODAY.year - 1}-H.xlsx",
        f"work-report-{TODAY.year + 1}-H1.xlsx",
        "work-report-1999-H2.xlsx",
        "work-report-99999-H1.xlsx",
        "review-form-abcd.xlsx",
        f"review-form-{TODAY.year + 1}.xlsx",
        "review-form-.xlsx",
        "assessment-1999.xlsx",
        f"assessment-{TODAY.year + 1}.xlsx",
        "assessment-２０２５.xlsx",
    ],
)
async def test_a_bad_year_or_half_is_400(api: Api, name: str) -> None:
    response = await _get(api, f"/exports/{name}", api.demo.token("SECRETARIAT"))
    assert response.status_code == 400, response.text
    assert response.json()["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


async def test_an_unknown_document_is_404(api: Api) -> None:
    response = await _get(api, "/exports/minutes-2025.xlsx", api.demo.token("SECRETARIAT"))
    assert response.status_code == 404
    assert response.json()["errors"][0]["extensions"]["code"] == "NOT_FOUND"


ASSESSMENT_HEADINGS = (
    "一级指标",
    "序号",
    "三级指标",
    "考核方法",
    "分值",
    "类型",
    "本年值",
    "上年值",
    "得分",
)
ASSESSMENT = """query($year: Int!) { assessment(year: $year) {
  totalScore indicators { number kind points value previousValue score } } }"""


def _number(value: Any) -> float | None:
    return None if value == "—" else float(value)


async def test_the_assessment_table_and_its_trend_charts(api: Api) -> None:
    year = TODAY.year - 1
    response = await _get(api, f"/exports/assessment-{year}.xlsx", api.demo.token("REGULATOR"))
    ws = _sheet(response)
    body = await api.run(ASSESSMENT, {"year": year}, role="REGULATOR")
    assert "errors" not in body, body
    expected = {i["number"]: i for i in body["data"]["assessment"]["indicators"]}
    header, _ = _find(ws, "一级指标")
    assert [ws.cell(header, c).value for c in range(1, 10)] == list(ASSESSMENT_HEADINGS)
    rows: dict[int, list[Any]] = {}
    for r in range(header + 1, header + 31):
        rows[int(str(ws.cell(r, 2).value))] = [ws.cell(r, c).value for c in range(1, 10)]
    assert sorted(rows) == sorted(expected) and len(rows) == 30 and 3 not in rows
    assert sum(float(row[4]) for row in rows.values()) == 100
    for number, row in rows.items():
        indicator = expected[number]
        assert row[4] == indicator["points"]
        assert str(row[5]).startswith(indicator["kind"])
        for column, field in ((6, "value"), (7, "previousValue"), (8, "score")):
            want = indicator[field]
            got = _number(row[column])
            assert got == (None if want is None else round(want, 2)), (number, field)
    assert ws.cell(header + 31, 1).value == "合计"
    assert ws.cell(header + 31, 9).value == body["data"]["assessment"]["totalScore"]
    # One line chart per F and N indicator, on the trend sheet beside its figures.
    book = load_workbook(BytesIO(response.content))
    trend = book["趋势"]
    computed = sorted(n for n, i in expected.items() if i["kind"] in ("F", "N"))
    assert [trend.cell(r, 1).value for r in range(2, 2 + len(computed))] == computed
    with zipfile.ZipFile(BytesIO(response.content)) as archive:
        charts = [n for n in archive.namelist() if n.startswith("xl/charts/chart")]
        assert len(charts) == len(computed)
        assert b"<lineChart>" in archive.read(charts[0])
