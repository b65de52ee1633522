"""The alliance office's semi-annual work report to the provincial office (seed 003: 各省级专科联盟
每半年向专科联盟管理办公室报送一次工作情况总结): DRAFT while the office writes its narrative, with
the counts computed live; SUBMITTED once, after the half year has ended, keeping the counts as sent.
The provincial office (REGULATOR) reads submitted reports only, and sees which are late or missing."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum

from adapters.registry.records import WorkReportRecord
from adapters.registry.work_reports import WorkReportStore
from resolvers import clock, registry
from resolvers.access import OFFICE_ROLES
from resolvers.authorization import require_role
from resolvers.context import RequestContext
from resolvers.errors import invalid_transition, optional_text
from resolvers.principal import Role
from resolvers.work_report.counts import Tally, tally
from resolvers.work_report.periods import HalfYear, half_year

MAX_NARRATIVE = 20_000


class Status(StrEnum):
    DRAFT = "DRAFT"
    SUBMITTED = "SUBMITTED"


@dataclass(frozen=True, slots=True)
class Filed:
    """What the registry holds of a half year's report, whoever reads it."""

    period: HalfYear
    status: Status
    due_on: date
    submitted_at: datetime | None
    submitted_by: str | None

    def late(self, today: date) -> bool:
        """Submitted after its deadline, or still not submitted after it."""
        if self.submitted_at is not None:
            return self.submitted_at.astimezone(clock.CHINA_STANDARD_TIME).date() > self.due_on
        return today > self.due_on


@dataclass(frozen=True, slots=True)
class WorkReport:
    filed: Filed
    narrative: str
    tally: Tally
    computed_at: datetime  # when the counts were read from the members' sources


def _store(ctx: RequestContext) -> WorkReportStore:
    return WorkReportStore(ctx.registry, ctx.alliance_id)


def _filed(ctx: RequestContext, period: HalfYear, record: WorkReportRecord | None) -> Filed:
    if record is not None and record.status == Status.SUBMITTED:
        assert record.due_on is not None
        return Filed(
            period, Status.SUBMITTED, record.due_on, record.submitted_at, record.submitted_by
        )
    return Filed(
        period,
        Status.DRAFT,
        period.due_on(ctx.rules.reporting.due_days_after_half),
        None,
        None,
    )


def _require_reader(ctx: RequestContext) -> None:
    require_role(ctx.who, *OFFICE_ROLES, Role.REGULATOR, action="read the work reports")


def _require_office(ctx: RequestContext, action: str) -> str:
    require_role(ctx.who, *OFFICE_ROLES, action=action)
    return ctx.who.subject


async def get(ctx: RequestContext, year: int, half: int) -> WorkReport | None:
    """The half year's report: a submitted one as it was sent; a draft (the office only: None
    for the regulator) with counts read now."""
    _require_reader(ctx)
    period = half_year(year, half)
    record = await _store(ctx).get(period.year, period.half)
    filed = _filed(ctx, period, record)
    narrative = record.narrative if record else ""
    if filed.status is Status.SUBMITTED:
        assert record is not None and filed.submitted_at is not None
        return WorkReport(filed, narrative, Tally.from_json(record.counts), filed.submitted_at)
    if not ctx.who.has_any(*OFFICE_ROLES):
        return None
    p = period.period
    return WorkReport(filed, narrative, await tally(ctx, p), clock.now())


async def reports(ctx: RequestContext) -> list[Filed]:
    """Every half year from the alliance's founding to this one, newest first: submitted, due or
    missing. No narrative and no counts: those are read one report at a time."""
    _require_reader(ctx)
    founded = (await registry.alliance(ctx)).founded_on
    stored = {(r.year, r.half): r for r in await _store(ctx).all()}
    today = clock.today()
    found: list[Filed] = []
    period = HalfYear.containing(founded)
    while period.period.first <= today:
        found.append(_filed(ctx, period, stored.get((period.year, period.half))))
        period = period.next()
    return found[::-1]


async def save_narrative(ctx: RequestContext, year: int, half: int, narrative: str) -> WorkReport:
    by = _require_office(ctx, "write a work report")
    period = half_year(year, half)
    text = optional_text(narrative, "narrative", MAX_NARRATIVE, where="argument") or ""
    saved = await _store(ctx).save_narrative(period.year, period.half, text, by, clock.now())
    if saved is None:
        raise invalid_transition(
            f"The work report for {period.label()} has been submitted; it no longer changes.",
            status=Status.SUBMITTED,
        )
    ctx.audit.wrote("saveWorkReportNarrative", None)
    report = await get(ctx, year, half)
    assert report is not None
    return report


async def submit(ctx: RequestContext, year: int, half: int) -> WorkReport:
    """Sends the report with its counts read now; they are kept as sent."""
    by = _require_office(ctx, "submit a work report")
    period = half_year(year, half)
    if not period.period.ended(clock.today()):
        raise invalid_transition(
            f"{period.label()} has not ended yet: its report is submitted after "
            f"{period.period.last.isoformat()}.",
            status=Status.DRAFT,
        )
    store = _store(ctx)
    existing = await store.get(period.year, period.half)
    if existing is not None and existing.status == Status.SUBMITTED:
        raise _submitted_twice(period)
    counts = await tally(ctx, period.period)
    submitted = await record_submission(ctx, period, counts, by=by, at=clock.now())
    ctx.audit.wrote("submitWorkReport", None)
    return submitted


async def record_submission(
    ctx: RequestContext, period: HalfYear, counts: Tally, *, by: str, at: datetime
) -> WorkReport:
    """Stores the report as submitted at `at` with `counts` (the demo seeds past ones with it)."""
    due_on = period.due_on(ctx.rules.reporting.due_days_after_half)
    saved = await _store(ctx).submit(
        period.year, period.half, counts.as_json(), by=by, at=at, due_on=due_on
    )
    if saved is None:
        raise _submitted_twice(period)
    return WorkReport(_filed(ctx, period, saved), saved.narrative, counts, at)


def _submitted_twice(period: HalfYear) -> Exception:
    return invalid_transition(
        f"The work report for {period.label()} has already been submitted.",
        status=Status.SUBMITTED,
    )
