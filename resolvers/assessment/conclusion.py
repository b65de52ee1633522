"""The regulator concludes a year: its scores are fixed as they stand, the result is recorded,
and the alliance's standing follows seed 003 (不合格: 黄牌警告; 连续两年不合格: 责令解散)."""

from __future__ import annotations

from adapters.registry.assessments import AssessmentRecord, AssessmentStore
from resolvers import clock
from resolvers.assessment import snapshot
from resolvers.assessment.model import AnnualAssessment, Status
from resolvers.assessment.service import assemble, check_year, live_indicators
from resolvers.authorization import require_role
from resolvers.context import RequestContext
from resolvers.errors import ErrorCode, GatewayError, invalid_transition
from resolvers.principal import Role

GOOD, YELLOW_CARD, ORDERED_TO_DISSOLVE, DISSOLVED = (
    "GOOD",
    "YELLOW_CARD",
    "ORDERED_TO_DISSOLVE",
    "DISSOLVED",
)


def next_standing(standing: str, passed: bool, failed_year_before: bool) -> str:
    if standing in (ORDERED_TO_DISSOLVE, DISSOLVED):
        return standing  # passing later does not lift an order to dissolve
    if passed:
        return GOOD
    return ORDERED_TO_DISSOLVE if failed_year_before else YELLOW_CARD


async def conclude(ctx: RequestContext, year: int) -> AnnualAssessment:
    who = ctx.who
    require_role(who, Role.REGULATOR, action="conclude an annual assessment")
    check_year(year)
    if year >= clock.today().year:
        raise invalid_transition(
            f"{year} is not over: a year is concluded once it has ended.", status="IN_PROGRESS"
        )
    # The members are read before the registry is locked: no lock waits on a hospital.
    live = await live_indicators(ctx, year)
    async with ctx.registry.transaction() as tx:
        s = AssessmentStore(tx, ctx.alliance_id)
        standing = await s.lock_alliance()
        record = await s.open_for_update(year)
        if record.status == Status.CONCLUDED:
            raise invalid_transition(
                f"The {year} assessment is concluded already.", status=record.status
            )
        concluded = await s.concluded_years()
        if concluded and year - 1 not in concluded:
            raise invalid_transition(
                f"Conclude {year - 1} first: years are concluded in order (last concluded: "
                f"{max(concluded)}).",
                status=record.status,
            )
        if standing == DISSOLVED:
            raise invalid_transition("The alliance is dissolved.", status=record.status)
        # One connection: one statement at a time.
        scores, results = await s.scores(year), await s.quality_control(year)
        current = assemble(ctx, year, live, scores, results)
        if current.provisional:
            raise GatewayError(
                ErrorCode.INVALID_TRANSITION,
                f"Members {', '.join(current.unavailable)} could not be read: the {year} "
                "assessment is provisional and cannot be concluded until they answer.",
                status=record.status,
                members=list(current.unavailable),
            )
        before = await s.get(year - 1)
        failed_before = before is not None and before.passed is False
        after = next_standing(standing, current.passed, failed_before)
        at = clock.now()
        await s.conclude(
            year,
            AssessmentRecord(
                year=year,
                status=Status.CONCLUDED,
                total_score=current.total_score,
                pass_mark=current.pass_mark,
                passed=current.passed,
                standing_before=standing,
                standing_after=after,
                concluded_at=at,
                concluded_by=who.subject,
                snapshot=snapshot.dump(current),
            ),
        )
        if after != standing:
            await s.set_standing(after)
    return snapshot.load(
        snapshot.dump(current),
        concluded_at=at,
        concluded_by=who.subject,
        standing_before=standing,
        standing_after=after,
    )
