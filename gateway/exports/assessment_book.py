"""Seed 001 Annex 4 (专科联盟建设考核指标体系) as a workbook: every indicator with its group, number,
text, method, points, kind, value, previous value and score, the total and the pass mark; and a
sheet of small line charts, one per F and N indicator, of its value over the last years, where a
person would rather look than read."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from openpyxl import Workbook
from openpyxl.chart import LineChart, Reference
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.worksheet import Worksheet

from gateway.exports.sheet import cell, title, to_bytes, widths
from resolvers.assessment.indicators import GROUP_TEXT, Group, Kind
from resolvers.assessment.model import AnnualAssessment, IndicatorResult

SHEET = "考核指标"
TREND_SHEET = "趋势"
TITLE = "建设考核指标体系"  # after the alliance's name: 「…专科联盟建设考核指标体系」
HEADINGS = ("一级指标", "序号", "三级指标", "考核方法", "分值", "类型", "本年值", "上年值", "得分")
KIND_TEXT = {
    Kind.F: "F 联盟数据",
    Kind.N: "N 交换数据",
    Kind.E: "E 外部评分",
    Kind.A: "A 专家评分",
}
STATUS_TEXT = {"IN_PROGRESS": "进行中", "CONCLUDED": "已结论"}
_GROUP_NUMBER = {group: n for n, group in enumerate(Group, start=1)}
# Charts per row on the trend sheet, and the cells each takes.
_PER_ROW, _CHART_COLUMNS, _CHART_ROWS = 2, 9, 16


@dataclass(frozen=True, slots=True)
class AssessmentSheets:
    alliance_name: str
    assessment: AnnualAssessment
    # The year before's assessment: its values and previous values extend the trend one year
    # further back (None when there is none to read, as before the year 2000).
    year_before: AnnualAssessment | None


def _value(v: float | None) -> float | str:
    return "—" if v is None else round(v, 2)


def _assessment_sheet(ws: Worksheet, data: AssessmentSheets) -> None:
    a = data.assessment
    ws.title = SHEET
    widths(ws, 16, 6, 60, 22, 7, 12, 11, 11, 8)
    title(ws, 1, f"{data.alliance_name}{TITLE}（{a.year}年度）", len(HEADINGS))
    status = STATUS_TEXT.get(a.status.value, a.status.value)
    provisional = "（部分成员单位未能读取，数据暂定）" if a.provisional else ""
    cell(ws, 2, 1, f"状态：{status}{provisional}", span=len(HEADINGS))
    for column, heading in enumerate(HEADINGS, start=1):
        cell(ws, 3, column, heading, heading=True)
    row = 4
    for r in sorted(a.indicators, key=lambda r: r.indicator.number):
        i = r.indicator
        group = f"{_GROUP_NUMBER[i.group]}.{GROUP_TEXT[i.group]}"
        values = (
            group,
            i.number,
            i.text + ("（暂定）" if r.provisional else ""),
            i.method,
            i.points,
            KIND_TEXT[i.kind],
            _value(r.value),
            _value(r.previous_value),
            _value(r.score),
        )
        for column, value in enumerate(values, start=1):
            cell(ws, row, column, value)
        row += 1
    cell(ws, row, 1, "合计", heading=True, span=4)
    cell(ws, row, 5, round(sum(r.indicator.points for r in a.indicators), 2), heading=True)
    cell(ws, row, 6, "", heading=True, span=3)
    cell(ws, row, 9, a.total_score, heading=True)
    cell(
        ws,
        row + 1,
        1,
        f"合格分数线：{a.pass_mark:g}　结论：{'合格' if a.passed else '不合格'}",
        span=9,
    )


def _year_label(a: AnnualAssessment) -> str:
    """A year in progress is counted over its complete months."""
    end = a.compared_until
    if end >= date(a.year + 1, 1, 1):
        return str(a.year)
    return f"{a.year}（1–{end.month - 1}月）" if end.month > 1 else f"{a.year}（尚无整月）"


def _series(
    data: AssessmentSheets,
) -> tuple[list[str], list[tuple[IndicatorResult, list[float | None]]]]:
    """The years and, per F or N indicator, its value in each."""
    a, before = data.assessment, data.year_before
    earlier = {r.indicator.number: r for r in before.indicators} if before else {}
    this_year = _year_label(a)
    years = [str(a.year - 2), str(a.year - 1), this_year]
    found = []
    for r in sorted(a.indicators, key=lambda r: r.indicator.number):
        if r.indicator.kind not in (Kind.F, Kind.N):
            continue
        old = earlier.get(r.indicator.number)
        values = [
            old.previous_value if old else None,
            old.value if old else r.previous_value,
            r.value,
        ]
        found.append((r, values))
    return years, found


def _trend_sheet(ws: Worksheet, data: AssessmentSheets) -> None:
    ws.title = TREND_SHEET
    years, series = _series(data)
    widths(ws, 6, 40, 12, 12, 12)
    cell(ws, 1, 1, "序号", heading=True)
    cell(ws, 1, 2, "指标", heading=True)
    for column, year in enumerate(years, start=3):
        cell(ws, 1, column, year, heading=True)
    for row, (r, values) in enumerate(series, start=2):
        cell(ws, row, 1, r.indicator.number)
        cell(ws, row, 2, r.indicator.text)
        for column, value in enumerate(values, start=3):
            cell(ws, row, column, None if value is None else round(value, 2))
    first_chart_row = len(series) + 3
    for index, (r, _) in enumerate(series):
        row = index + 2
        chart = LineChart()
        chart.title = f"{r.indicator.number}. {r.indicator.text[:24]}"
        chart.height, chart.width = 7, 12
        chart.legend = None
        chart.add_data(Reference(ws, min_col=3, max_col=5, min_row=row), from_rows=True)
        chart.set_categories(Reference(ws, min_col=3, max_col=5, min_row=1))
        anchor_row = first_chart_row + (index // _PER_ROW) * _CHART_ROWS
        anchor_column = 1 + (index % _PER_ROW) * _CHART_COLUMNS
        ws.add_chart(chart, f"{get_column_letter(anchor_column)}{anchor_row}")


def build(data: AssessmentSheets) -> bytes:
    book = Workbook()
    ws = book.active
    assert ws is not None
    _assessment_sheet(ws, data)
    _trend_sheet(book.create_sheet(), data)
    return to_bytes(book)
