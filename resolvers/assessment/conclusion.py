"""The regulator concludes a year: its scores are fixed as they stand, the result is recorded,
and the alliance's standing follows seed 003 (不合格: 黄牌警告; 连续两年不合格: 责令解散)."""

from __future__ import annotations

from adapters.registry.assessments import (
    AssessmentRecord,
    AssessmentStore,
    MemberAssessmentRecord,
)
from resolvers import clock, registry
from resolvers.assessment import snapshot
from resolvers.assessment.model import AnnualAssessment, MemberAssessment, Status
from resolvers.assessment.service import (
    assemble,
    check_year,
    live_indicators,
    live_member_assessment,
    roles_of,
)
from resolvers.authorization import require_role
from resolvers.context import RequestContext
from resolvers.errors import (
    ErrorCode,
    GatewayError,
    bad_input,
    forbidden,
    invalid_transition,
    optional_text,
)
from resolvers.principal import Role

MAX_NOTE = 2000

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
    ctx.audit.wrote("concludeAssessment", None)
    return snapshot.load(
        snapshot.dump(current),
        concluded_at=at,
        concluded_by=who.subject,
        standing_before=standing,
        standing_after=after,
    )


async def conclude_member(
    ctx: RequestContext, year: int, hospital: str, passed: bool, note: str | None
) -> MemberAssessment:
    """The lead hospital concludes its assessment of one member for a year: the member's F/N
    figures and scores as they stand now, and its decision, which the figures inform but do not
    make (seed 000 §11 assesses organisation, service, staff, quality and IT, more than the
    figures count). A failed one is what withdrawMember(ASSESSMENT_FAILED) rests on."""
    who = ctx.who
    # Seed 000 §11 is among the lead hospital's duties (第三章 联盟牵头医院职责), so it is the lead
    # hospital's MEMBER_ADMIN that concludes, not the alliance office; expelling on the result
    # stays the ALLIANCE_ADMIN's (withdrawMember), so the assessor is not the one who expels.
    require_role(who, Role.MEMBER_ADMIN, action="conclude a member's assessment")
    lead = (await registry.alliance(ctx)).lead_hospital_code
    if who.hospital_code != lead:
        raise forbidden(
            "The lead hospital assesses its members (seed 000 §11): only its MEMBER_ADMIN "
            "concludes a member's assessment."
        )
    check_year(year)
    today = clock.today()
    if year == today.year and today.month == 1:
        raise invalid_transition(
            f"{year} has no complete month yet: there is nothing to assess.", status="IN_PROGRESS"
        )
    text = optional_text(note, "note", MAX_NOTE, where="argument") or ""
    if not passed and not text:
        raise bad_input(
            "A failed assessment says why in a note: it is a ground for expulsion (seed 000 §16).",
            argument="note",
        )
    roles = await roles_of(ctx, year)
    if hospital not in roles.members:
        raise bad_input(
            f"{hospital[:40]} was no member (other than the lead) of the alliance in {year}.",
            argument="hospital",
        )
    s = AssessmentStore(ctx.registry, ctx.alliance_id)
    if await s.member_assessment(year, hospital) is not None:
        raise invalid_transition(
            f"The lead's {year} assessment of {hospital} is concluded already.",
            status=Status.CONCLUDED,
        )
    current = await live_member_assessment(ctx, year, hospital)
    if current.provisional:
        unread = sorted({h for i in current.indicators for h in i.unavailable})
        raise GatewayError(
            ErrorCode.INVALID_TRANSITION,
            f"{', '.join(unread)} could not be read: the assessment of {hospital} is provisional "
            "and cannot be concluded until they answer.",
            status=Status.IN_PROGRESS,
            members=unread,
        )
    at = clock.now()
    record = MemberAssessmentRecord(
        year=year,
        hospital_code=hospital,
        passed=passed,
        note=text or None,
        score=current.score,
        max_score=current.max_score,
        snapshot=snapshot.dump_member(current),
        concluded_at=at,
        concluded_by=who.subject,
    )
    if not await s.conclude_member(record):
        raise invalid_transition(
            f"The lead's {year} assessment of {hospital} is concluded already.",
            status=Status.CONCLUDED,
        )
    ctx.audit.wrote("concludeMemberAssessment", None)
    # As it is read from now on (memberAssessment), not as it was built.
    stored = await s.member_assessment(year, hospital)
    assert stored is not None
    return snapshot.load_member(
        stored.snapshot,
        passed=stored.passed,
        note=stored.note,
        concluded_at=stored.concluded_at,
        concluded_by=stored.concluded_by,
    )
