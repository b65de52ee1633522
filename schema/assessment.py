"""The annual assessment (绩效考核, seed 001 Annex 4) in the contract: the year's indicators with
their values, member figures, scores and evidence; the assessors' entries; the conclusion."""

from __future__ import annotations

from datetime import date, datetime
from enum import Enum

import strawberry

from resolvers.assessment import conclusion, entries, indicators, service
from resolvers.assessment.model import AnnualAssessment, Evidence, IndicatorResult, Status
from resolvers.assessment.model import MemberAssessment as MemberAssessmentRecord
from resolvers.assessment.scoring import describe
from schema.enums import Standing
from schema.fan_out import FanOut
from schema.types import Ctx, Hospital, hospital_of


@strawberry.enum(
    description="DOMAIN.md §7: computed from federated data (F), from the exchange "
    "contract's volumes, surveys and capacity records (N), an external score (E), "
    "scored by assessors (A)."
)
class IndicatorKind(Enum):
    F = "F"
    N = "N"
    E = "E"
    A = "A"


IndicatorGroup = strawberry.enum(indicators.Group, description="一级指标.")
AssessmentStatus = strawberry.enum(Status, description="A concluded year is fixed.")


@strawberry.type(description="A document an assessment rests on: where it is kept, its hash.")
class AssessmentEvidence:
    title: str
    location: str
    content_hash: str = strawberry.field(description="'sha256:…' or 'sm3:…', 64 hex digits.")


@strawberry.type(description="One hospital's part of an indicator (counts, never patients).")
class IndicatorMemberFigure:
    code: strawberry.Private[str]
    value: float | None = strawberry.field(
        description="Null: the member could not be read, or holds no such records."
    )
    previous_value: float | None

    @strawberry.field
    def hospital(self, info: Ctx) -> Hospital:
        return hospital_of(info, self.code)


@strawberry.type(description="A part of an indicator scored on its own (#28, #30).")
class IndicatorMeasure:
    name: str
    value: float | None
    previous_value: float | None
    target: str
    met: bool


@strawberry.type(description="An indicator of the year: what it is, its value and score.")
class AssessmentIndicator:
    number: int
    group: IndicatorGroup  # type: ignore[valid-type]
    group_text: str = strawberry.field(description="The group in the seed's words.")
    text: str = strawberry.field(description="The indicator in the seed's words (三级指标).")
    gloss: str
    points: float
    kind: IndicatorKind
    method: str = strawberry.field(description="考核方法, as the seed names it.")
    scoring: str = strawberry.field(description="How the value earns the points, as configured.")
    unit: str
    value: float | None = strawberry.field(
        description="F/N: the year's (a year in progress: "
        "its complete months); E: % of members passed."
    )
    previous_value: float | None = strawberry.field(
        description="F/N: the previous year's same months."
    )
    score: float | None = strawberry.field(description="Null: not scored yet (A, E).")
    provisional: bool = strawberry.field(
        description="A member could not be read: the value may be low, and may still change."
    )
    members: list[IndicatorMemberFigure]
    measures: list[IndicatorMeasure]
    unavailable: list[str] = strawberry.field(description="Members that could not be read.")
    not_serving: list[str] = strawberry.field(
        description="Members whose source holds no such records (left out, not an error)."
    )
    evidence: list[AssessmentEvidence]
    comment: str | None
    assessor: str | None
    scored_by: str | None
    scored_at: datetime | None

    @classmethod
    def of(cls, r: IndicatorResult, info: Ctx) -> AssessmentIndicator:
        i = r.indicator
        return cls(
            number=i.number,
            group=i.group,
            group_text=indicators.GROUP_TEXT[i.group],
            text=i.text,
            gloss=i.gloss,
            points=i.points,
            kind=IndicatorKind(i.kind.value),
            method=i.method,
            scoring=describe(i.number, i.rule.value, info.context.assessment),
            unit=i.unit,
            value=r.value,
            previous_value=r.previous_value,
            score=r.score,
            provisional=r.provisional,
            members=[
                IndicatorMemberFigure(
                    code=m.hospital, value=m.value, previous_value=m.previous_value
                )
                for m in r.members
            ],
            measures=[
                IndicatorMeasure(
                    name=m.name,
                    value=m.value,
                    previous_value=m.previous_value,
                    target=m.target,
                    met=m.met,
                )
                for m in r.measures
            ],
            unavailable=list(r.unavailable),
            not_serving=list(r.not_serving),
            evidence=[
                AssessmentEvidence(title=e.title, location=e.location, content_hash=e.content_hash)
                for e in r.evidence
            ],
            comment=r.comment,
            assessor=r.assessor,
            scored_by=r.scored_by,
            scored_at=r.scored_at,
        )


@strawberry.type(description="The alliance's assessment for one year (China Standard Time).")
class Assessment:
    year: int
    status: AssessmentStatus  # type: ignore[valid-type]
    total_score: float
    passed: bool = strawberry.field(
        description="totalScore ≥ passMark (while in progress: so far)."
    )
    pass_mark: float
    provisional: bool = strawberry.field(description="Some indicator is provisional.")
    compared_until: date = strawberry.field(
        description="Values count [1 January, comparedUntil) of the year, and the same days of the "
        "year before."
    )
    unavailable: list[str] = strawberry.field(description="Members that could not be read.")
    concluded_at: datetime | None
    concluded_by: str | None
    standing_before: Standing | None
    standing_after: Standing | None
    indicators: list[AssessmentIndicator]

    @classmethod
    def of(cls, a: AnnualAssessment, info: Ctx) -> Assessment:
        return cls(
            year=a.year,
            status=a.status,
            total_score=a.total_score,
            passed=a.passed,
            pass_mark=a.pass_mark,
            provisional=a.provisional,
            compared_until=a.compared_until,
            unavailable=list(a.unavailable),
            concluded_at=a.concluded_at,
            concluded_by=a.concluded_by,
            standing_before=Standing(a.standing_before) if a.standing_before else None,
            standing_after=Standing(a.standing_after) if a.standing_after else None,
            indicators=[AssessmentIndicator.of(i, info) for i in a.indicators],
        )


@strawberry.type(
    description="One hospital's figures in the F and N indicators, its trends scored "
    "by the same rules: what the lead assesses its members with."
)
class MemberAssessment:
    year: int
    code: strawberry.Private[str]
    status: AssessmentStatus = strawberry.field(  # type: ignore[valid-type]
        description="CONCLUDED once the lead has recorded its decision: the figures are then "
        "those it concluded on."
    )
    score: float
    max_score: float = strawberry.field(description="The points of the indicators scored here.")
    provisional: bool
    compared_until: date
    passed: bool | None = strawberry.field(
        description="The lead's decision; null until concluded. A failed one is the ground for "
        "withdrawMember(reason: ASSESSMENT_FAILED)."
    )
    note: str | None
    concluded_at: datetime | None
    concluded_by: str | None
    indicators: list[AssessmentIndicator]

    @strawberry.field
    def hospital(self, info: Ctx) -> Hospital:
        return hospital_of(info, self.code)

    @classmethod
    def of(cls, m: MemberAssessmentRecord, info: Ctx) -> MemberAssessment:
        return cls(
            year=m.year,
            code=m.hospital,
            status=m.status,
            score=m.score,
            max_score=m.max_score,
            provisional=m.provisional,
            compared_until=m.compared_until,
            passed=m.passed,
            note=m.note,
            concluded_at=m.concluded_at,
            concluded_by=m.concluded_by,
            indicators=[AssessmentIndicator.of(i, info) for i in m.indicators],
        )


@strawberry.input
class EvidenceInput:
    title: str
    location: str = strawberry.field(description="Where the document is kept.")
    content_hash: str = strawberry.field(description="SHA-256 (or 'sm3:') of its content.")


def _evidence(items: list[EvidenceInput] | None) -> tuple[Evidence, ...]:
    return tuple(Evidence(e.title, e.location, e.content_hash) for e in items or [])


@strawberry.input
class ScoreAssessmentIndicatorInput:
    year: int
    number: int = strawberry.field(description="An indicator of kind A.")
    score: float = strawberry.field(description="From 0 to the indicator's points.")
    comment: str
    assessor: str = strawberry.field(description="The named assessor of the panel.")
    evidence: list[EvidenceInput] = strawberry.field(default_factory=list)


@strawberry.input
class RecordQualityControlResultInput:
    year: int
    hospital: str = strawberry.field(description="A member's code (not the lead's).")
    passed: bool
    qc_score: float | None = None
    comment: str | None = None
    evidence: list[EvidenceInput] = strawberry.field(default_factory=list)


@strawberry.type
class AssessmentPayload:
    assessment: Assessment


@strawberry.type
class ConcludeAssessmentPayload:
    assessment: Assessment
    standing: Standing = strawberry.field(description="The alliance's standing now.")


@strawberry.type
class MemberAssessmentPayload:
    member_assessment: MemberAssessment


@strawberry.type
class AssessmentQueries:
    @strawberry.field(
        description="The annual assessment of one year: REGULATOR, SECRETARIAT, ALLIANCE_ADMIN.",
        extensions=[FanOut()],
    )
    async def assessment(self, info: Ctx, year: int) -> Assessment:
        return Assessment.of(await service.assessment_of(info.context, year), info)

    @strawberry.field(
        description="One hospital's part of the F and N indicators: the offices and REGULATOR, "
        "a MEMBER_ADMIN of that hospital or of the lead. Once the lead has concluded it, as "
        "concluded, with its decision.",
        extensions=[FanOut()],
    )
    async def member_assessment(self, info: Ctx, year: int, hospital: str) -> MemberAssessment:
        found = await service.member_assessment_of(info.context, year, hospital)
        return MemberAssessment.of(found, info)


@strawberry.type
class AssessmentMutations:
    @strawberry.mutation(
        description="An assessor's score of a qualitative (A) indicator, with comment and "
        "evidence. REGULATOR (seed 003: the provincial office assesses). Scoring again replaces it.",
        extensions=[FanOut()],
    )
    async def score_assessment_indicator(
        self, info: Ctx, input: ScoreAssessmentIndicatorInput
    ) -> AssessmentPayload:
        new = entries.NewScore(
            year=input.year,
            number=input.number,
            score=input.score,
            comment=input.comment,
            assessor=input.assessor,
            evidence=_evidence(input.evidence),
        )
        return AssessmentPayload(
            assessment=Assessment.of(await entries.score_indicator(info.context, new), info)
        )

    @strawberry.mutation(
        description="The provincial specialty QC centre's result for a member (indicator 25). "
        "SECRETARIAT, ALLIANCE_ADMIN or REGULATOR.",
        extensions=[FanOut()],
    )
    async def record_quality_control_result(
        self, info: Ctx, input: RecordQualityControlResultInput
    ) -> AssessmentPayload:
        new = entries.NewQualityControlResult(
            year=input.year,
            hospital=input.hospital,
            passed=input.passed,
            qc_score=input.qc_score,
            comment=input.comment,
            evidence=_evidence(input.evidence),
        )
        found = await entries.record_quality_control(info.context, new)
        return AssessmentPayload(assessment=Assessment.of(found, info))

    @strawberry.mutation(
        description="REGULATOR concludes a year that has ended: its scores are fixed and the "
        "alliance's standing follows (failing: YELLOW_CARD; twice in a row: ORDERED_TO_DISSOLVE; "
        "passing after a yellow card: GOOD). Years are concluded in order.",
        extensions=[FanOut()],
    )
    async def conclude_assessment(self, info: Ctx, year: int) -> ConcludeAssessmentPayload:
        found = await conclusion.conclude(info.context, year)
        assert found.standing_after is not None
        return ConcludeAssessmentPayload(
            assessment=Assessment.of(found, info), standing=Standing(found.standing_after)
        )

    @strawberry.mutation(
        description="The lead hospital concludes its assessment of a member for a year (seed 000 "
        "§11): the member's figures and scores are fixed as they stand, with the decision "
        "(`note` required when failed). MEMBER_ADMIN of the lead hospital. Once per member and "
        "year; a failed one is what withdrawMember(reason: ASSESSMENT_FAILED) needs.",
        extensions=[FanOut()],
    )
    async def conclude_member_assessment(
        self, info: Ctx, year: int, hospital: str, passed: bool, note: str | None = None
    ) -> MemberAssessmentPayload:
        found = await conclusion.conclude_member(info.context, year, hospital, passed, note)
        return MemberAssessmentPayload(member_assessment=MemberAssessment.of(found, info))
