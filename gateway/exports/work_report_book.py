"""The semi-annual work report (工作情况总结) as a workbook: the report's state and deadline, the
counts of seed 003 Annex 1 per member hospital and in total under the form's own headings, and the
office's narrative."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from openpyxl import Workbook

from gateway.exports.sheet import ANNEX1_COUNTS, cell, title, to_bytes, widths
from resolvers import clock
from resolvers.work_report.counts import ActivityCounts
from resolvers.work_report.report import Status, WorkReport

SHEET = "工作情况总结"
HOSPITAL = "成员单位"
TOTAL = "合计"
# Seed 003 Annex 1's counts, then what its "其他" asks for.
HEADINGS: tuple[tuple[str, str], ...] = (
    *ANNEX1_COUNTS,
    ("new_techniques", "帮助联盟单位开展新技术、新业务数"),
)
STATUS = {Status.DRAFT: "草稿（未报送）", Status.SUBMITTED: "已报送"}


@dataclass(frozen=True, slots=True)
class WorkReportSheet:
    alliance_name: str
    hospital_names: dict[str, str]
    report: WorkReport
    today_late: bool


def _local(at: datetime) -> str:
    return at.astimezone(clock.CHINA_STANDARD_TIME).strftime("%Y-%m-%d %H:%M")


def _row(counts: ActivityCounts) -> list[int]:
    values = counts.as_dict()
    return [values[field] for field, _ in HEADINGS]


def build(data: WorkReportSheet) -> bytes:
    r = data.report
    f = r.filed
    period = f.period
    half = "上半年" if period.half == 1 else "下半年"
    book = Workbook()
    ws = book.active
    assert ws is not None
    ws.title = SHEET
    last = 1 + len(HEADINGS)
    widths(ws, 30, *([14] * len(HEADINGS)))
    title(ws, 1, f"{data.alliance_name}{period.year}年{half}工作情况总结", last)
    cell(ws, 2, 1, "报送对象", heading=True)
    cell(ws, 2, 2, "省专科联盟管理办公室", span=3)
    cell(ws, 2, 5, "报送截止日期", heading=True)
    cell(ws, 2, 6, f.due_on.isoformat(), span=3)
    cell(ws, 3, 1, "状态", heading=True)
    cell(ws, 3, 2, STATUS[f.status], span=3)
    cell(ws, 3, 5, "报送时间", heading=True)
    submitted = _local(f.submitted_at) if f.submitted_at else "—"
    cell(ws, 3, 6, submitted, span=2)
    cell(ws, 3, 8, "逾期" if data.today_late else "按期")

    cell(ws, 5, 1, "半年内联盟工作开展情况", heading=True, span=last)
    cell(ws, 6, 1, HOSPITAL, heading=True, height=45)
    for column, (_, heading) in enumerate(HEADINGS, start=2):
        cell(ws, 6, column, heading, heading=True)
    row = 7
    for member in r.tally.members:
        name = data.hospital_names.get(member.hospital, member.hospital)
        mark = "" if member.complete else "（未能读取，数据暂缺）"
        cell(ws, row, 1, f"{name}（{member.hospital}）{mark}")
        for column, value in enumerate(_row(member.counts), start=2):
            cell(ws, row, column, value)
        row += 1
    cell(ws, row, 1, TOTAL, heading=True)
    for column, value in enumerate(_row(r.tally.total), start=2):
        cell(ws, row, column, value, heading=True)
    row += 1
    if r.tally.provisional:
        unread = "、".join(data.hospital_names.get(c, c) for c in r.tally.unread)
        cell(ws, row, 1, f"注：以下成员单位未能读取，合计为暂定数：{unread}", span=last)
        row += 1
    cell(
        ws,
        row,
        1,
        f"数据读取时间：{_local(r.computed_at)}（各成员单位数据，不含患者信息）",
        span=last,
    )
    row += 2
    cell(ws, row, 1, "工作情况总结", heading=True, span=last)
    cell(ws, row + 1, 1, r.narrative or "（未填写）", span=last, height=160)
    return to_bytes(book)
