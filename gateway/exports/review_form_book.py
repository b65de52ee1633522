"""Seed 003 Annex 1, 专科联盟审核评估表, as a workbook laid out like the form: its sections and
headings in its order, filled with the registry's facts and the year's counts; what only people
can write (学科建设, 政策支持, 重点任务, the opinions and seals) is left blank under the form's own
guidance."""

from __future__ import annotations

from openpyxl import Workbook

from gateway.exports.sheet import ANNEX1_COUNTS, cell, title, to_bytes, widths, yes_no
from resolvers.work_report.review_form import ReviewForm

SHEET = "审核评估表"
TITLE = "专科联盟审核评估表"
BASICS = "基本情况"
MEMBERS = "联盟成员单位"
MEMBERS_HINT = "(填写所有签订协议的联盟成员单位)"
DISCIPLINE = "联盟学科建设情况"
DISCIPLINE_HINT = "(填写近 3 年来联盟取得的学术成果, 包括被评为临床重点专科、质控中心等情况)"
WORK = "近一年内联盟工作开展情况"
OTHER = "其他:"
OTHER_HINT = "(如帮助联盟单位开展新技术、新业务，提升诊疗水平等情况)"
SUPPORT = "所在医院对专科联盟政策支持情况"
SUPPORT_HINT = "(填写专科联盟牵头专业学科或科室所在医院对专科联盟相关政策支持情况)"
EVALUATION = "专科联盟开展工作情况评价"
NOTES = (
    "注：",
    "1. 所填内容均可另附页填写，请在表格中注明；",
    "2. 所填内容需真实有效，发现弄虚作假的一律取消资格；",
)


def build(form: ReviewForm) -> bytes:
    book = Workbook()
    ws = book.active
    assert ws is not None
    ws.title = SHEET
    widths(ws, 18, 18, 18, 18, 18, 18)
    title(ws, 1, f"{TITLE}（{form.year}年度）", 6)
    cell(ws, 2, 1, "填报人:")
    cell(ws, 2, 2, "", span=2)
    cell(ws, 2, 4, "联系方式:")
    cell(ws, 2, 5, "", span=2)

    cell(ws, 3, 1, BASICS, heading=True, span=6)
    cell(ws, 4, 1, "联盟名称", heading=True)
    cell(ws, 4, 2, form.alliance_name, span=2)
    cell(ws, 4, 4, "牵头专业学科(科室)", heading=True)
    cell(ws, 4, 5, form.lead_department, span=2)
    cell(ws, 5, 1, "所属医院", heading=True)
    cell(ws, 5, 2, form.lead_hospital, span=2)
    cell(ws, 5, 4, "成立时间", heading=True)
    cell(ws, 5, 5, form.founded_on.isoformat(), span=2)
    cell(ws, 6, 1, "是否制定联盟章程", heading=True)
    cell(ws, 6, 2, yes_no(form.has_charter))
    cell(ws, 6, 3, "是否与联盟单位签订协议", heading=True)
    cell(ws, 6, 4, yes_no(form.has_agreements))
    cell(ws, 6, 5, "是否成立联盟理事会", heading=True)
    cell(ws, 6, 6, yes_no(form.has_council))

    cell(ws, 7, 1, MEMBERS, heading=True, span=6)
    cell(ws, 8, 1, MEMBERS_HINT, span=6)
    cell(ws, 9, 1, "、".join(name for _, name in form.members) or "（无）", span=6, height=60)

    cell(ws, 10, 1, DISCIPLINE, heading=True, span=6)
    cell(ws, 11, 1, DISCIPLINE_HINT, span=6, height=80)

    cell(ws, 12, 1, f"{WORK}", heading=True, span=6)
    counts = form.tally.total.as_dict()
    for column, (field, heading) in enumerate(ANNEX1_COUNTS, start=1):
        cell(ws, 13, column, heading, heading=True, height=45)
        cell(ws, 14, column, counts[field])
    row = 15
    if form.tally.provisional:
        unread = "、".join(form.hospital_names.get(c, c) for c in form.tally.unread)
        cell(ws, row, 1, f"注：以下成员单位未能读取，以上为暂定数：{unread}", span=6)
        row += 1
    cell(ws, row, 1, OTHER, heading=True, span=6)
    cell(ws, row + 1, 1, OTHER_HINT, span=6)
    cell(
        ws,
        row + 2,
        1,
        f"{form.year}年帮助联盟单位开展新技术、新业务 {counts['new_techniques']} 项。",
        span=6,
        height=60,
    )
    row += 3
    cell(ws, row, 1, SUPPORT, heading=True, span=6)
    cell(ws, row + 1, 1, SUPPORT_HINT, span=6, height=60)
    row += 2
    cell(ws, row, 1, f"{form.year + 1} 年度联盟单位重点任务目标", heading=True, span=6)
    cell(
        ws,
        row + 1,
        1,
        f"(填写 {form.year + 1} 年度拟开展的重点工作任务和具体量化评价指标)",
        span=6,
        height=60,
    )
    row += 2
    cell(ws, row, 1, EVALUATION, heading=True, span=6)
    cell(ws, row + 1, 1, "(所属医院评价)\n\n签章：\n年 月 日", span=3, height=100)
    cell(
        ws,
        row + 1,
        4,
        "(市级卫生健康行政部门评价，联盟所属医院为省直省管医的可不填写)\n\n签章：\n年 月 日",
        span=3,
    )
    row += 3
    for offset, note in enumerate(NOTES):
        ws.cell(row + offset, 1, note)
    return to_bytes(book)
