"""What an assessment is, as the schema and the exports read it: plain data."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum

from adapters.registry.assessments import EvidenceRef
from resolvers.assessment.indicators import Indicator


class Status(StrEnum):
    IN_PROGRESS = "IN_PROGRESS"
    CONCLUDED = "CONCLUDED"


# A document an assessor relied on: where it is kept, and its content hash (not the file). The
# registry's record of it, as given and as stored (entries.evidence_refs checks what is given).
Evidence = EvidenceRef


@dataclass(frozen=True, slots=True)
class MemberFigure:
    hospital: str
    value: float | None
    previous_value: float | None


@dataclass(frozen=True, slots=True)
class Measure:
    """One of an indicator's parts (#28: per visit and per stay; #30: outpatients, inpatients)."""

    name: str
    value: float | None
    previous_value: float | None
    target: str
    met: bool


@dataclass(frozen=True, slots=True)
class IndicatorResult:
    indicator: Indicator
    value: float | None
    previous_value: float | None
    score: float | None  # None: an A or E indicator nobody has scored yet
    provisional: bool
    members: tuple[MemberFigure, ...] = ()
    measures: tuple[Measure, ...] = ()
    unavailable: tuple[str, ...] = ()  # members that could not be read: the value may be low
    not_serving: tuple[str, ...] = ()  # members whose source holds no such records
    evidence: tuple[Evidence, ...] = ()
    comment: str | None = None
    assessor: str | None = None
    scored_by: str | None = None
    scored_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class AnnualAssessment:
    year: int
    status: Status
    pass_mark: float
    indicators: tuple[IndicatorResult, ...]
    # The trends compare [1 January, compared_until) of the year with the same days of the year
    # before; the whole year once it is over.
    compared_until: date
    concluded_at: datetime | None = None
    concluded_by: str | None = None
    standing_before: str | None = None
    standing_after: str | None = None

    @property
    def total_score(self) -> float:
        return round(sum(i.score or 0.0 for i in self.indicators), 2)

    @property
    def passed(self) -> bool:
        return self.total_score >= self.pass_mark

    @property
    def provisional(self) -> bool:
        return any(i.provisional for i in self.indicators)

    @property
    def unavailable(self) -> tuple[str, ...]:
        return tuple(sorted({m for i in self.indicators for m in i.unavailable}))


@dataclass(frozen=True, slots=True)
class MemberAssessment:
    """One hospital's figures in the F and N indicators, scored by the same trend rules: what
    the lead assesses its members with (seed 000 §11)."""

    year: int
    hospital: str
    indicators: tuple[IndicatorResult, ...]
    compared_until: date
    # The lead's conclusion, once recorded: the figures above are then those it concluded on.
    status: Status = Status.IN_PROGRESS
    passed: bool | None = None
    note: str | None = None
    concluded_at: datetime | None = None
    concluded_by: str | None = None

    @property
    def score(self) -> float:
        return round(sum(i.score or 0.0 for i in self.indicators), 2)

    @property
    def max_score(self) -> float:
        return sum(i.indicator.points for i in self.indicators if i.score is not None)

    @property
    def provisional(self) -> bool:
        return any(i.provisional for i in self.indicators)
