"""What people enter: an assessor's score of a qualitative (A) indicator, and the provincial
specialty QC centre's result for a member (E, #25).

Seed 003 三(六): the provincial alliance office, with the provincial QC centres, organises the
yearly assessment; so the A indicators are scored by REGULATOR, naming the assessor of its panel.
The QC centre's results reach both offices: the alliance office (SECRETARIAT, ALLIANCE_ADMIN) or
the regulator enters them. Either way, with evidence references: title, where the document is
kept, its content hash; the gateway stores no file."""

from __future__ import annotations

import re
from dataclasses import dataclass

from adapters.registry.assessments import (
    AssessmentStore,
    EvidenceRef,
    QualityControlRecord,
    ScoreRecord,
)
from resolvers import clock
from resolvers.assessment.indicators import BY_NUMBER, Kind
from resolvers.assessment.model import AnnualAssessment, Evidence, Status
from resolvers.assessment.service import QC, assessment_of, check_year, roles_of
from resolvers.authorization import require_role
from resolvers.context import RequestContext
from resolvers.errors import bad_input, invalid_transition, optional_text, required_text
from resolvers.principal import Role

MAX_TEXT = 2000
MAX_EVIDENCE = 20
_HASH = re.compile(r"^(?:(sha256|sm3):)?([0-9a-fA-F]{64})$")


@dataclass(frozen=True, slots=True)
class NewScore:
    year: int
    number: int
    score: float
    comment: str
    assessor: str
    evidence: tuple[Evidence, ...]


@dataclass(frozen=True, slots=True)
class NewQualityControlResult:
    year: int
    hospital: str
    passed: bool
    qc_score: float | None
    comment: str | None
    evidence: tuple[Evidence, ...]


def evidence_refs(evidence: tuple[Evidence, ...]) -> tuple[EvidenceRef, ...]:
    if len(evidence) > MAX_EVIDENCE:
        raise bad_input(f"At most {MAX_EVIDENCE} evidence references.", field="evidence")
    refs = []
    for e in evidence:
        found = _HASH.match(e.content_hash.strip())
        if found is None:
            raise bad_input(
                "contentHash is a SHA-256 or SM3 digest: 64 hex digits, optionally prefixed "
                "'sha256:' or 'sm3:'.",
                field="evidence.contentHash",
            )
        title = required_text(e.title, "evidence.title", 200)
        location = required_text(e.location, "evidence.location", 500)
        assert title is not None and location is not None
        refs.append(EvidenceRef(title, location, f"{found[1] or 'sha256'}:{found[2].lower()}"))
    return tuple(refs)


async def _open(s: AssessmentStore, year: int) -> None:
    record = await s.open_for_update(year)
    if record.status == Status.CONCLUDED:
        raise invalid_transition(
            f"The {year} assessment is concluded: its scores are fixed.", status=record.status
        )


async def score_indicator(ctx: RequestContext, new: NewScore) -> AnnualAssessment:
    who = ctx.who
    require_role(who, Role.REGULATOR, action="score the assessment's qualitative indicators")
    check_year(new.year)
    indicator = BY_NUMBER.get(new.number)
    if indicator is None or indicator.kind is not Kind.A:
        raise bad_input(
            f"Indicator {new.number} is not scored by assessors (kind A): "
            f"{', '.join(str(i) for i, x in BY_NUMBER.items() if x.kind is Kind.A)}.",
            field="number",
        )
    if not 0 <= new.score <= indicator.points or round(new.score, 2) != new.score:
        raise bad_input(
            f"Indicator {new.number} is worth {indicator.points} points: a score from 0 to "
            f"{indicator.points}, in hundredths at most.",
            field="score",
        )
    comment = required_text(new.comment, "comment", MAX_TEXT)
    assessor = required_text(new.assessor, "assessor", 100)
    assert comment is not None and assessor is not None
    refs = evidence_refs(new.evidence)
    if new.score > 0 and not refs:
        raise bad_input("A score above 0 names the evidence it rests on.", field="evidence")
    async with ctx.registry.transaction() as tx:
        s = AssessmentStore(tx, ctx.alliance_id)
        await _open(s, new.year)
        await s.save_score(
            new.year,
            ScoreRecord(new.number, new.score, comment, assessor, refs, who.subject, clock.now()),
        )
    ctx.audit.wrote("scoreAssessmentIndicator", None)
    return await assessment_of(ctx, new.year)


async def record_quality_control(
    ctx: RequestContext, new: NewQualityControlResult
) -> AnnualAssessment:
    who = ctx.who
    require_role(
        who,
        Role.SECRETARIAT,
        Role.ALLIANCE_ADMIN,
        Role.REGULATOR,
        action="enter the provincial QC centre's results",
    )
    check_year(new.year)
    roles = await roles_of(ctx, new.year)
    if new.hospital not in roles.members:
        raise bad_input(
            f"{new.hospital[:40]} was no member (other than the lead) of the alliance in "
            f"{new.year}: indicator {QC} is the members' result.",
            field="hospital",
        )
    if new.qc_score is not None and not 0 <= new.qc_score <= 100:
        raise bad_input("qcScore is the QC centre's score, from 0 to 100.", field="qcScore")
    comment = optional_text(new.comment, "comment", MAX_TEXT)
    refs = evidence_refs(new.evidence)
    async with ctx.registry.transaction() as tx:
        s = AssessmentStore(tx, ctx.alliance_id)
        await _open(s, new.year)
        await s.save_quality_control(
            new.year,
            QualityControlRecord(
                new.hospital, new.passed, new.qc_score, comment, refs, who.subject, clock.now()
            ),
        )
    ctx.audit.wrote("recordQualityControlResult", None)
    return await assessment_of(ctx, new.year)
