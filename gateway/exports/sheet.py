"""What the workbooks share: the look of a printed form (bordered cells, bold headings in 宋体),
and the workbook written to bytes. openpyxl is synchronous: a workbook is built and saved in a
worker thread (see the route), never on the event loop."""

from __future__ import annotations

from datetime import date
from io import BytesIO

from openpyxl import Workbook
from openpyxl.styles import Alignment, Border, Font, PatternFill, Side
from openpyxl.worksheet.worksheet import Worksheet

FONT = "宋体"
_THIN = Side(style="thin")
BORDER = Border(left=_THIN, right=_THIN, top=_THIN, bottom=_THIN)
HEADING_FILL = PatternFill("solid", fgColor="DDDDDD")
WRAP = Alignment(wrap_text=True, vertical="center")
CENTRE = Alignment(horizontal="center", vertical="center", wrap_text=True)

Value = str | int | float | date | None

# Seed 003 Annex 1's counts, under its own headings and in its order (the review form and the
# semi-annual report both carry them).
ANNEX1_COUNTS: tuple[tuple[str, str], ...] = (
    ("academic_events", "举办学术活动次数"),
    ("on_site_tours", "赴联盟单位巡诊次数"),
    ("remote_consultations", "开展远程会诊次数"),
    ("people_trained", "为联盟单位培训人员数"),
    ("referrals_up", "通过专科联盟上转病例数"),
    ("referrals_down", "通过专科联盟下转病例数"),
)


def title(ws: Worksheet, row: int, text: str, last_column: int) -> None:
    ws.merge_cells(start_row=row, start_column=1, end_row=row, end_column=last_column)
    cell = ws.cell(row, 1, text)
    cell.font = Font(name=FONT, size=16, bold=True)
    cell.alignment = CENTRE
    ws.row_dimensions[row].height = 30


def cell(
    ws: Worksheet,
    row: int,
    column: int,
    value: Value,
    *,
    heading: bool = False,
    span: int = 1,
    height: int | None = None,
) -> None:
    """A bordered cell (merged over `span` columns); headings bold and shaded."""
    if span > 1:
        ws.merge_cells(
            start_row=row, start_column=column, end_row=row, end_column=column + span - 1
        )
        for c in range(column, column + span):
            ws.cell(row, c).border = BORDER
    target = ws.cell(row, column, value)
    target.border = BORDER
    target.font = Font(name=FONT, size=11, bold=heading)
    target.alignment = CENTRE if heading or isinstance(value, int | float) else WRAP
    if heading:
        target.fill = HEADING_FILL
    if height is not None:
        ws.row_dimensions[row].height = height


def widths(ws: Worksheet, *values: float) -> None:
    for index, width in enumerate(values, start=1):
        ws.column_dimensions[chr(ord("A") + index - 1)].width = width


def to_bytes(book: Workbook) -> bytes:
    out = BytesIO()
    book.save(out)
    return out.getvalue()


def yes_no(value: bool) -> str:
    # The form's tick boxes: 是 □ 否 □, one ticked.
    return "是 ☑  否 □" if value else "是 □  否 ☑"
