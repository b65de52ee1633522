"""The alliance's configurable rules (the charter's numbers), as the domain logic sees them."""

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
class AllianceRules:
    max_term_years: int = 3
    renewal_window_months: int = 3
    inclusion: InclusionCriteria = field(default_factory=InclusionCriteria)
