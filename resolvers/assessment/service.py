"""An assessment as it stands: a concluded year from its stored snapshot; any other year with its
F and N indicators counted live from the members' sources, beside the stored A scores and QC
results. `assessment_of` is what the GraphQL field and the XLSX export both call."""

from __future__ import annotations

import asyncio
from datetime import date

from adapters.registry.assessments import AssessmentStore, QualityControlRecord, ScoreRecord
from resolvers import clock, registry
from resolvers.assessment import snapshot
from resolvers.assessment.computed import computed, member_score
from resolvers.assessment.figures import Roles, Window, read
from resolvers.assessment.indicators import CATALOGUE, Indicator, Kind
from resolvers.assessment.model import (
    AnnualAssessment,
    IndicatorResult,
    MemberAssessment,
    MemberFigure,
    Status,
)
from resolvers.authorization import require_role
from resolvers.context import RequestContext
from resolvers.errors import bad_input, forbidden
from resolvers.principal import Role

READERS = (Role.REGULATOR, Role.SECRETARIAT, Role.ALLIANCE_ADMIN)
QC = 25


def store(ctx: RequestContext) -> AssessmentStore:
    return AssessmentStore(ctx.registry, ctx.alliance_id)


def check_year(year: int) -> None:
    if not 2000 <= year <= clock.today().year:
        raise bad_input("year must be between 2000 and this year.", argument="year")


def windows(year: int, today: date) -> tuple[Window, Window]:
    """The year and the previous year's same part. A year in progress counts its complete
    months, so that a month's figures are compared only with a whole month."""
    if year < today.year:
        return Window(date(year, 1, 1), date(year + 1, 1, 1)), Window(
            date(year - 1, 1, 1), date(year, 1, 1)
        )
    cut = date(year, today.month, 1)
    return Window(date(year, 1, 1), cut), Window(date(year - 1, 1, 1), cut.replace(year=year - 1))


async def roles_of(ctx: RequestContext, year: int) -> Roles:
    alliance = await registry.alliance(ctx)
    lead = alliance.lead_hospital_code
    found = await store(ctx).members_during(date(year, 1, 1), date(year + 1, 1, 1))
    return Roles(lead=lead, members=tuple(m.code for m in found if m.code != lead))


async def assessment_of(ctx: RequestContext, year: int) -> AnnualAssessment:
    """The year's assessment. REGULATOR, SECRETARIAT and ALLIANCE_ADMIN."""
    require_role(ctx.who, *READERS, action="read the annual assessment")
    check_year(year)
    stored = await store(ctx).get(year)
    if stored is not None and stored.status == Status.CONCLUDED:
        return snapshot.load(
            stored.snapshot,
            concluded_at=stored.concluded_at,
            concluded_by=stored.concluded_by,
            standing_before=stored.standing_before,
            standing_after=stored.standing_after,
        )
    live = await live_indicators(ctx, year)
    s = store(ctx)
    scores, results = await asyncio.gather(s.scores(year), s.quality_control(year))
    return assemble(ctx, year, live, scores, results)


async def live_indicators(ctx: RequestContext, year: int) -> LiveIndicators:
    roles = await roles_of(ctx, year)
    rules = ctx.assessment
    now, before = windows(year, clock.today())
    this, last = await asyncio.gather(read(ctx, roles, now, rules), read(ctx, roles, before, rules))
    return LiveIndicators(roles, now.until, computed(this, last, roles, rules))


class LiveIndicators:
    def __init__(self, roles: Roles, until: date, results: list[IndicatorResult]) -> None:
        self.roles = roles
        self.until = until
        self.results = {r.indicator.number: r for r in results}


def assemble(
    ctx: RequestContext,
    year: int,
    live: LiveIndicators,
    scores: list[ScoreRecord],
    results: list[QualityControlRecord],
) -> AnnualAssessment:
    by_number = {s.indicator: s for s in scores}
    indicators = []
    for indicator in CATALOGUE:
        if indicator.kind is Kind.A:
            indicators.append(_assessed(indicator, by_number.get(indicator.number)))
        elif indicator.kind is Kind.E:
            indicators.append(_quality_control(indicator, live.roles, results))
        else:
            indicators.append(live.results[indicator.number])
    return AnnualAssessment(
        year=year,
        status=Status.IN_PROGRESS,
        pass_mark=ctx.assessment.pass_mark,
        indicators=tuple(indicators),
        compared_until=live.until,
    )


def _assessed(indicator: Indicator, score: ScoreRecord | None) -> IndicatorResult:
    if score is None:
        return IndicatorResult(indicator, None, None, None, provisional=False)
    return IndicatorResult(
        indicator,
        value=None,
        previous_value=None,
        score=score.score,
        provisional=False,
        evidence=score.evidence,
        comment=score.comment,
        assessor=score.assessor,
        scored_by=score.recorded_by,
        scored_at=score.recorded_at,
    )


def _quality_control(
    indicator: Indicator, roles: Roles, results: list[QualityControlRecord]
) -> IndicatorResult:
    """The share of members that passed; a member with no result entered has not passed, and
    the comment names it."""
    by_member = {r.hospital_code: r for r in results if r.hospital_code in roles.members}
    if not by_member:
        return IndicatorResult(indicator, None, None, None, provisional=False)
    passed = sum(r.passed for r in by_member.values())
    share = passed / len(roles.members) if roles.members else 0.0
    missing = [m for m in roles.members if m not in by_member]
    latest = max(by_member.values(), key=lambda r: r.recorded_at)
    return IndicatorResult(
        indicator,
        value=round(100 * share, 2),
        previous_value=None,
        score=round(indicator.points * share, 2),
        provisional=False,
        members=tuple(
            MemberFigure(m, None if m not in by_member else float(by_member[m].passed), None)
            for m in roles.members
        ),
        evidence=tuple(e for r in by_member.values() for e in r.evidence),
        comment=f"{passed} of {len(roles.members)} members passed"
        + (f"; no result entered for {', '.join(missing)}" if missing else ""),
        scored_by=latest.recorded_by,
        scored_at=latest.recorded_at,
    )


async def member_assessment_of(ctx: RequestContext, year: int, hospital: str) -> MemberAssessment:
    """One hospital's part of the F and N indicators. The offices and the regulator for any; a
    MEMBER_ADMIN of that hospital, or of the lead (which assesses its members). Once the lead has
    concluded it, as concluded."""
    who = ctx.who
    check_year(year)
    roles = await roles_of(ctx, year)
    if not who.has_any(*READERS):
        require_role(who, Role.MEMBER_ADMIN, action="read a member's assessment")
        if who.hospital_code not in (hospital, roles.lead):
            raise forbidden("A MEMBER_ADMIN reads its own hospital's assessment (the lead's: any).")
    check_member(roles, year, hospital)
    stored = await store(ctx).member_assessment(year, hospital)
    if stored is not None:
        return snapshot.load_member(
            stored.snapshot,
            passed=stored.passed,
            note=stored.note,
            concluded_at=stored.concluded_at,
            concluded_by=stored.concluded_by,
        )
    return await live_member_assessment(ctx, year, hospital)


def check_member(roles: Roles, year: int, hospital: str) -> None:
    if hospital not in roles.everyone:
        raise bad_input(
            f"{hospital[:40]} was no member of the alliance in {year}.", argument="hospital"
        )


async def live_member_assessment(ctx: RequestContext, year: int, hospital: str) -> MemberAssessment:
    """The hospital's figures counted now, its trends scored on its own figures."""
    live = await live_indicators(ctx, year)
    mine = []
    for result in live.results.values():
        figure = next((m for m in result.members if m.hospital == hospital), None)
        if figure is None:
            continue
        # Its figure is missing when its own source failed, or the lead's, for what the lead
        # holds about it (its referrals down, the placements it hosts, the help it gives).
        unread = tuple(
            h
            for h in result.unavailable
            if h == hospital or (figure.value is None and h == live.roles.lead)
        )
        mine.append(
            IndicatorResult(
                result.indicator,
                value=figure.value,
                previous_value=figure.previous_value,
                score=member_score(result, figure.value, figure.previous_value, ctx.assessment),
                provisional=bool(unread),
                members=(figure,),
                unavailable=unread,
                not_serving=tuple(h for h in result.not_serving if h == hospital),
            )
        )
    return MemberAssessment(year, hospital, tuple(mine), live.until)
