"""The assessment's configurable numbers ([assessment] in the gateway's configuration), with the
defaults the seeds give or, where they are silent, documented choices (README, "Annual
assessment")."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class AssessmentRules:
    # Seed 003 names no pass mark; 60 of 100 is the usual 合格线.
    pass_mark: float = 60.0
    # A relative change smaller than this is no change: neither rising nor falling.
    trend_tolerance: float = 0.0
    # Seed 001 #12 and #13.
    min_remote_teaching: int = 10
    min_remote_consultations: int = 15
    # Below a threshold, the indicator earns its share of the points (value / threshold), or none.
    threshold_partial_credit: bool = True
    # #16: the urgencies that make an up-referral "complex or critical" (a green-channel referral
    # always is); empty: every up-referral that went ahead counts.
    complex_critical_urgencies: tuple[str, ...] = ("URGENT", "EMERGENCY")
    # #28: cost per visit and per stay are reasonable when they grew by at most this share.
    max_cost_growth: float = 0.05
    # Seed 001 #30 and #31.
    min_outpatient_satisfaction: float = 0.80
    min_inpatient_satisfaction: float = 0.90
    min_staff_satisfaction: float = 0.70

    def __post_init__(self) -> None:
        if not 0 <= self.pass_mark <= 100:
            raise ValueError("assessment.pass_mark must be between 0 and 100")
        if not 0 <= self.trend_tolerance < 1 or not 0 <= self.max_cost_growth < 10:
            raise ValueError("assessment.trend_tolerance must be in [0, 1), max_cost_growth ≥ 0")
        if self.min_remote_teaching < 1 or self.min_remote_consultations < 1:
            raise ValueError("assessment thresholds must be at least 1")
        rates = (
            self.min_outpatient_satisfaction,
            self.min_inpatient_satisfaction,
            self.min_staff_satisfaction,
        )
        if not all(0 <= r < 1 for r in rates):
            raise ValueError("assessment satisfaction thresholds are shares in [0, 1)")
