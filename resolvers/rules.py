"""The alliance's configurable rules (the charter's numbers, the recognition catalogue, the price
list), as the domain logic sees them."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class InclusionCriteria:
    """Seed 000's 纳入标准 by default: a public hospital of level 二级 or above with an independent
    specialty ward of at least 30 beds."""

    min_level: int = 2
    public_only: bool = True
    min_specialty_beds: int = 30


@dataclass(frozen=True, slots=True)
class RecognisedItem:
    """An item of the alliance's mutual-recognition catalogue (互认项目) and its window (互认时限)."""

    loinc: str
    name: str
    validity_days: int
    scope: str = "ALLIANCE"  # the HR label's scope: NATIONAL | PROVINCIAL | CITY | ALLIANCE
    retest_cost_fen: int = 0


@dataclass(frozen=True, slots=True)
class RecognitionRules:
    items: tuple[RecognisedItem, ...] = ()
    # Inside one alliance, full mutual recognition may be agreed (Jiangsu practice): then a
    # higher-level hospital accepts a lower one's results too.
    alliance_wide: bool = False

    def item(self, loinc: str | None) -> RecognisedItem | None:
        if loinc is None:
            return None
        return next((i for i in self.items if i.loinc == loinc), None)


@dataclass(frozen=True, slots=True)
class ReportingRules:
    """When the semi-annual work report (每半年报送工作情况总结) is due. Seed 003 sets no day for it;
    the default, 15 days after the half year (15 July, 15 January), follows its one deadline of
    that kind: the review form (审核评估表) by 15 April."""

    due_days_after_half: int = 15


@dataclass(frozen=True, slots=True)
class AllianceRules:
    max_term_years: int = 3
    renewal_window_months: int = 3
    inclusion: InclusionCriteria = field(default_factory=InclusionCriteria)
    recognition: RecognitionRules = field(default_factory=RecognitionRules)
    # The provincial price per consultation case, in fen, by kind.
    consultation_fees_fen: dict[str, int] = field(default_factory=dict)
    reporting: ReportingRules = field(default_factory=ReportingRules)
