"""Pure rules: check characters, calendar arithmetic, agreement status, content negotiation."""

from __future__ import annotations

from datetime import date

import pytest

from adapters.registry.records import AgreementRecord
from gateway.graphql_http import GRAPHQL_RESPONSE, JSON, RequestError, negotiate
from resolvers import clock, credit_code
from resolvers.agreements import AgreementStatus, status_of, term_end
from resolvers.rules import AllianceRules


@pytest.mark.parametrize(
    "code", ["91350100M000100Y43", "12100000400000624D", "52411103417001078K"[:17] + "?"]
)
def test_credit_code_check_character(code: str) -> None:
    expected = credit_code.check_character(code[:17])
    assert credit_code.problem(code[:17] + expected) is None
    wrong = "0" if expected != "0" else "1"
    assert "check character" in (credit_code.problem(code[:17] + wrong) or "")


def test_credit_code_shape() -> None:
    assert "18 characters" in (credit_code.problem("9135") or "")
    assert "digits and the letters" in (credit_code.problem("91350100M000100I43") or "")


@pytest.mark.parametrize(
    ("day", "months", "expected"),
    [
        (date(2026, 1, 31), 1, date(2026, 2, 28)),
        (date(2024, 2, 29), 12, date(2025, 2, 28)),
        (date(2026, 11, 22), -3, date(2026, 8, 22)),
        (date(2026, 1, 15), -1, date(2025, 12, 15)),
    ],
)
def test_add_months(day: date, months: int, expected: date) -> None:
    assert clock.add_months(day, months) == expected


def _agreement(effective: date, years: int = 3, closed_as: str | None = None) -> AgreementRecord:
    return AgreementRecord(
        id=1,
        alliance_id="a",
        party_a_code="A",
        party_b_code="B",
        application_id=None,
        renews_id=None,
        signed_on=effective,
        term_years=years,
        effective_on=effective,
        expires_on=term_end(effective, years),
        closed_as=closed_as,
        closed_on=None,
        termination_reason=None,
        termination_note=None,
    )


@pytest.mark.parametrize(
    ("today", "status"),
    [
        (date(2023, 12, 31), AgreementStatus.SIGNED),
        (date(2024, 1, 1), AgreementStatus.ACTIVE),
        (date(2026, 9, 30), AgreementStatus.ACTIVE),  # last day before the window
        (date(2026, 10, 1), AgreementStatus.EXPIRING),
        (date(2026, 12, 31), AgreementStatus.EXPIRING),  # last day in force
        (date(2027, 1, 1), AgreementStatus.EXPIRED),
    ],
)
def test_agreement_status_follows_the_dates(today: date, status: AgreementStatus) -> None:
    agreement = _agreement(date(2024, 1, 1))
    assert agreement.expires_on == date(2026, 12, 31)
    assert status_of(agreement, today, AllianceRules()) is status


def test_decided_outcomes_override_the_dates() -> None:
    terminated = _agreement(date(2024, 1, 1), closed_as="TERMINATED")
    assert status_of(terminated, date(2025, 1, 1), AllianceRules()) is AgreementStatus.TERMINATED


@pytest.mark.parametrize(
    ("accept", "chosen"),
    [
        (None, JSON),
        ("*/*", JSON),
        ("application/json", JSON),
        (GRAPHQL_RESPONSE, GRAPHQL_RESPONSE),
        (f"{GRAPHQL_RESPONSE}, application/json;q=0.9", GRAPHQL_RESPONSE),
        (f"{GRAPHQL_RESPONSE};q=0.5, application/json", JSON),
    ],
)
def test_negotiation(accept: str | None, chosen: str) -> None:
    assert negotiate(accept) == chosen


def test_negotiation_refuses_what_it_cannot_give() -> None:
    with pytest.raises(RequestError) as refused:
        negotiate("text/html")
    assert refused.value.status == 406
