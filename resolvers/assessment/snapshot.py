"""A concluded assessment as JSON values, and back: what was concluded is shown as it was."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from resolvers.assessment.indicators import BY_NUMBER
from resolvers.assessment.model import (
    AnnualAssessment,
    Evidence,
    IndicatorResult,
    Measure,
    MemberAssessment,
    MemberFigure,
    Status,
)


def dump(a: AnnualAssessment) -> dict[str, Any]:
    return {
        "year": a.year,
        "pass_mark": a.pass_mark,
        "compared_until": a.compared_until.isoformat(),
        "indicators": [_dump_indicator(i) for i in a.indicators],
    }


def _dump_indicator(i: IndicatorResult) -> dict[str, Any]:
    return {
        "number": i.indicator.number,
        # What the catalogue said then, for a reader of the stored row.
        "points": i.indicator.points,
        "kind": i.indicator.kind.value,
        "value": i.value,
        "previous_value": i.previous_value,
        "score": i.score,
        "provisional": i.provisional,
        "members": [[m.hospital, m.value, m.previous_value] for m in i.members],
        "measures": [[m.name, m.value, m.previous_value, m.target, m.met] for m in i.measures],
        "unavailable": list(i.unavailable),
        "not_serving": list(i.not_serving),
        "evidence": [[e.title, e.location, e.content_hash] for e in i.evidence],
        "comment": i.comment,
        "assessor": i.assessor,
        "scored_by": i.scored_by,
        "scored_at": i.scored_at.isoformat() if i.scored_at else None,
    }


def load(
    values: dict[str, Any],
    *,
    concluded_at: datetime | None,
    concluded_by: str | None,
    standing_before: str | None,
    standing_after: str | None,
) -> AnnualAssessment:
    return AnnualAssessment(
        year=values["year"],
        status=Status.CONCLUDED,
        pass_mark=values["pass_mark"],
        compared_until=date.fromisoformat(values["compared_until"]),
        indicators=tuple(_load_indicator(i) for i in values["indicators"]),
        concluded_at=concluded_at,
        concluded_by=concluded_by,
        standing_before=standing_before,
        standing_after=standing_after,
    )


def _load_indicator(v: dict[str, Any]) -> IndicatorResult:
    scored_at = v["scored_at"]
    return IndicatorResult(
        indicator=BY_NUMBER[v["number"]],
        value=v["value"],
        previous_value=v["previous_value"],
        score=v["score"],
        provisional=v["provisional"],
        members=tuple(MemberFigure(*m) for m in v["members"]),
        measures=tuple(Measure(*m) for m in v["measures"]),
        unavailable=tuple(v["unavailable"]),
        not_serving=tuple(v["not_serving"]),
        evidence=tuple(Evidence(*e) for e in v["evidence"]),
        comment=v["comment"],
        assessor=v["assessor"],
        scored_by=v["scored_by"],
        scored_at=datetime.fromisoformat(scored_at) if scored_at else None,
    )


def dump_member(m: MemberAssessment) -> dict[str, Any]:
    return {
        "year": m.year,
        "hospital": m.hospital,
        "compared_until": m.compared_until.isoformat(),
        "indicators": [_dump_indicator(i) for i in m.indicators],
    }


def load_member(
    values: dict[str, Any],
    *,
    passed: bool,
    note: str | None,
    concluded_at: datetime,
    concluded_by: str,
) -> MemberAssessment:
    return MemberAssessment(
        year=values["year"],
        hospital=values["hospital"],
        indicators=tuple(_load_indicator(i) for i in values["indicators"]),
        compared_until=date.fromisoformat(values["compared_until"]),
        status=Status.CONCLUDED,
        passed=passed,
        note=note,
        concluded_at=concluded_at,
        concluded_by=concluded_by,
    )
