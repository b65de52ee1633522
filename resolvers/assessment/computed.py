"""The F and N indicators from two windows' figures: the value of the year, of the previous year's
same days, each member's part, and the score the rules give."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from resolvers.assessment import scoring
from resolvers.assessment.figures import Figures, PerHospital, Roles
from resolvers.assessment.indicators import BY_NUMBER, Indicator, Rule
from resolvers.assessment.model import IndicatorResult, Measure, MemberFigure
from resolvers.assessment.rules import AssessmentRules

Who = Callable[[Roles], tuple[str, ...]]


def _all(r: Roles) -> tuple[str, ...]:
    return r.everyone


def _members(r: Roles) -> tuple[str, ...]:
    return r.members


def _lead(r: Roles) -> tuple[str, ...]:
    return (r.lead,)


@dataclass(frozen=True, slots=True)
class Formula:
    """value = scale × Σ numerator / Σ denominator (no denominator: Σ numerator), over `who`."""

    source: str  # the figures' kind read (figures.read)
    numerator: tuple[str, ...]
    who: Who
    denominator: tuple[str, ...] = ()
    scale: float = 1.0
    # Counted from the lead's records about the members (its referrals down, the placements it
    # hosts, the help it gives): only the lead's source matters.
    held_at_lead: bool = False

    def of(self, f: Figures, hospitals: tuple[str, ...]) -> float | None:
        if not hospitals:
            return None
        top = sum(_sum(f.get(m), hospitals) for m in self.numerator)
        if not self.denominator:
            return top
        bottom = sum(_sum(f.get(m), hospitals) for m in self.denominator)
        return round(self.scale * top / bottom, 2) if bottom else None


def _sum(per: PerHospital, hospitals: tuple[str, ...]) -> float:
    return sum(per.get(h, 0) for h in hospitals)


FORMULAS: dict[int, Formula] = {
    12: Formula("training", ("remote_teaching",), _all),
    13: Formula("consultation", ("remote_consultations",), _all),
    14: Formula("capacity", ("dispatched",), _members, held_at_lead=True),
    15: Formula("volume", ("outpatient_visits", "admissions"), _members),
    16: Formula("referral", ("up_referrals",), _members),
    17: Formula("referral", ("down_referrals",), _members, held_at_lead=True),
    18: Formula("capacity", ("new_techniques",), _members, held_at_lead=True),
    20: Formula("placement", ("placements_at_lead",), _members, held_at_lead=True),
    22: Formula("volume", ("complex_critical_cases",), _lead, ("discharges",), 100),
    23: Formula("volume", ("grade34_operations",), _lead, ("operations",), 100),
    24: Formula("volume", ("operations",), _members),
    26: Formula("volume", ("discharged_bed_days",), _lead, ("discharges",)),
    27: Formula("volume", ("occupied_bed_days",), _members, ("open_bed_days",), 100),
    28: Formula("volume", ("outpatient_cost_fen",), _all, ("outpatient_visits",), 0.01),
    30: Formula("survey", ("outpatient_satisfied",), _all, ("outpatient_respondents",), 100),
    31: Formula("survey", ("staff_satisfied",), _all, ("staff_respondents",), 100),
}
# #28's second part, and #30's.
PER_STAY = Formula("volume", ("inpatient_cost_fen",), _all, ("discharges",), 0.01)
INPATIENTS = Formula("survey", ("inpatient_satisfied",), _all, ("inpatient_respondents",), 100)


def computed(
    now: Figures, before: Figures, roles: Roles, rules: AssessmentRules
) -> list[IndicatorResult]:
    return [_indicator(BY_NUMBER[n], f, now, before, roles, rules) for n, f in FORMULAS.items()]


def _indicator(
    indicator: Indicator,
    formula: Formula,
    now: Figures,
    before: Figures,
    roles: Roles,
    rules: AssessmentRules,
) -> IndicatorResult:
    hospitals = formula.who(roles)
    read_now, read_before = now.reads[formula.source], before.reads[formula.source]
    holders = {roles.lead} if formula.held_at_lead else set(hospitals)
    failed = (read_now.failed | read_before.failed) & holders
    not_serving = read_now.not_serving & holders
    # A hospital whose figures' holder failed or holds no such records has no part to show.
    counted = tuple(
        h
        for h in hospitals
        if not ({roles.lead} if formula.held_at_lead else {h}) & (failed | not_serving)
    )
    value, previous = formula.of(now, counted), formula.of(before, counted)
    members = tuple(
        MemberFigure(
            h,
            formula.of(now, (h,)) if h in counted else None,
            formula.of(before, (h,)) if h in counted else None,
        )
        for h in hospitals
    )
    score, measures = _score(indicator, value, previous, now, before, counted, rules)
    return IndicatorResult(
        indicator=indicator,
        value=value,
        previous_value=previous,
        score=score,
        provisional=bool(failed),
        members=members,
        measures=measures,
        unavailable=tuple(sorted(failed)),
        not_serving=tuple(sorted(not_serving)),
    )


def _score(
    indicator: Indicator,
    value: float | None,
    previous: float | None,
    now: Figures,
    before: Figures,
    counted: tuple[str, ...],
    rules: AssessmentRules,
) -> tuple[float, tuple[Measure, ...]]:
    points = indicator.points
    match indicator.rule:
        case Rule.AT_LEAST:
            minimum = (
                rules.min_remote_teaching
                if indicator.number == 12
                else rules.min_remote_consultations
            )
            return scoring.threshold(points, value, minimum, rules), ()
        case Rule.RISING:
            return (points if scoring.rising(value, previous, rules) else 0.0), ()
        case Rule.FALLING:
            return (points if scoring.falling(value, previous, rules) else 0.0), ()
        case Rule.COST_REASONABLE:
            limit = f"growth ≤ {rules.max_cost_growth:.0%}"
            stay, stay_before = PER_STAY.of(now, counted), PER_STAY.of(before, counted)
            parts = (
                Measure(
                    "cost per outpatient visit (yuan)",
                    value,
                    previous,
                    limit,
                    scoring.cost_reasonable(value, previous, rules),
                ),
                Measure(
                    "cost per inpatient stay (yuan)",
                    stay,
                    stay_before,
                    limit,
                    scoring.cost_reasonable(stay, stay_before, rules),
                ),
            )
            return _halves(points, parts), parts
        case Rule.SATISFACTION if indicator.number == 30:
            inpatients = INPATIENTS.of(now, counted), INPATIENTS.of(before, counted)
            out_min, in_min = rules.min_outpatient_satisfaction, rules.min_inpatient_satisfaction
            parts = (
                Measure(
                    "outpatients satisfied (%)",
                    value,
                    previous,
                    f"> {out_min:.0%}",
                    value is not None and value > out_min * 100,
                ),
                Measure(
                    "inpatients satisfied (%)",
                    *inpatients,
                    f"> {in_min:.0%}",
                    inpatients[0] is not None and inpatients[0] > in_min * 100,
                ),
            )
            return _halves(points, parts), parts
        case Rule.SATISFACTION:
            met = value is not None and value > rules.min_staff_satisfaction * 100
            return (points if met else 0.0), ()
    raise AssertionError(f"indicator {indicator.number} is not computed")


def _halves(points: float, parts: tuple[Measure, ...]) -> float:
    return round(points * sum(p.met for p in parts) / len(parts), 2)


def member_score(
    result: IndicatorResult, value: float | None, previous: float | None, rules: AssessmentRules
) -> float | None:
    """A trend indicator scored on one member's own figures; None where the rule is the
    alliance's as a whole (a yearly threshold, a survey or cost rule)."""
    match result.indicator.rule:
        case Rule.RISING:
            return result.indicator.points if scoring.rising(value, previous, rules) else 0.0
        case Rule.FALLING:
            return result.indicator.points if scoring.falling(value, previous, rules) else 0.0
    return None
