"""How a value earns an indicator's points, by the configured rules (rules.py)."""

from __future__ import annotations

from resolvers.assessment.rules import AssessmentRules


def threshold(points: float, value: float | None, minimum: float, rules: AssessmentRules) -> float:
    if value is None or value <= 0:
        return 0.0
    if value >= minimum:
        return points
    return round(points * value / minimum, 2) if rules.threshold_partial_credit else 0.0


def rising(value: float | None, previous: float | None, rules: AssessmentRules) -> bool:
    if value is None or previous is None:
        return False
    if previous == 0:
        return value > 0
    return (value - previous) / previous > rules.trend_tolerance


def falling(value: float | None, previous: float | None, rules: AssessmentRules) -> bool:
    if value is None or previous is None or previous == 0:
        return False
    return (previous - value) / previous > rules.trend_tolerance


def cost_reasonable(value: float | None, previous: float | None, rules: AssessmentRules) -> bool:
    """Grew by at most the limit; with no figure for either year there is nothing to judge by."""
    if value is None or previous is None or previous == 0:
        return False
    return (value - previous) / previous <= rules.max_cost_growth


def describe(number: int, rule: str, rules: AssessmentRules) -> str:
    """How the indicator is scored, in the configured numbers."""
    tolerance = f" by more than {rules.trend_tolerance:.0%}" if rules.trend_tolerance else ""
    match rule:
        case "AT_LEAST":
            minimum = rules.min_remote_teaching if number == 12 else rules.min_remote_consultations
            below = (
                "a share of the points in proportion" if rules.threshold_partial_credit else "none"
            )
            return f"all points at {minimum} or more in the year; below, {below}"
        case "RISING":
            return f"all points when above the previous year's same months{tolerance}; else none"
        case "FALLING":
            return f"all points when below the previous year's same months{tolerance}; else none"
        case "COST_REASONABLE":
            return (
                "half the points for each of cost per visit and per stay grown by at most "
                f"{rules.max_cost_growth:.0%} over the previous year's same months"
            )
        case "SATISFACTION" if number == 30:
            return (
                f"half the points each: outpatients above {rules.min_outpatient_satisfaction:.0%}, "
                f"inpatients above {rules.min_inpatient_satisfaction:.0%} satisfied"
            )
        case "SATISFACTION":
            return f"all points when above {rules.min_staff_satisfaction:.0%} satisfied"
        case "QC_PASSED":
            return "the points in proportion to the members that passed (no result: not passed)"
    return "scored by a named assessor of the provincial office, within the points, with evidence"
