"""Cooperation agreements (合作协议): status from dates, renewal inside its window, termination."""

from __future__ import annotations

from datetime import date, timedelta
from enum import StrEnum

from adapters.registry.records import AgreementRecord, NewEvent
from resolvers import clock, events
from resolvers.authorization import require_role
from resolvers.context import RequestContext
from resolvers.errors import bad_input, invalid_transition, not_found
from resolvers.events import EventType
from resolvers.global_ids import decode_int
from resolvers.principal import Role
from resolvers.rules import AllianceRules


class AgreementStatus(StrEnum):
    SIGNED = "SIGNED"  # signed, in force from effective_on (a renewal waiting for its start)
    ACTIVE = "ACTIVE"
    EXPIRING = "EXPIRING"  # inside the renewal window
    EXPIRED = "EXPIRED"
    RENEWED = "RENEWED"
    TERMINATED = "TERMINATED"


class TerminationReason(StrEnum):
    MUTUAL_CONSENT = "MUTUAL_CONSENT"
    BREACH = "BREACH"
    FORCE_MAJEURE = "FORCE_MAJEURE"
    POLICY_CHANGE = "POLICY_CHANGE"


_OPEN = {AgreementStatus.SIGNED, AgreementStatus.ACTIVE, AgreementStatus.EXPIRING}


def status_of(agreement: AgreementRecord, today: date, rules: AllianceRules) -> AgreementStatus:
    if agreement.closed_as is not None:
        return AgreementStatus(agreement.closed_as)
    if today > agreement.expires_on:
        return AgreementStatus.EXPIRED
    if today < agreement.effective_on:
        return AgreementStatus.SIGNED
    if today > clock.add_months(agreement.expires_on, -rules.renewal_window_months):
        return AgreementStatus.EXPIRING
    return AgreementStatus.ACTIVE


def renewal_window_opens(agreement: AgreementRecord, rules: AllianceRules) -> date:
    return clock.add_months(agreement.expires_on, -rules.renewal_window_months) + timedelta(days=1)


def term_end(effective_on: date, term_years: int) -> date:
    """The last day in force of a term starting on `effective_on`."""
    return clock.add_months(effective_on, 12 * term_years) - timedelta(days=1)


def check_term(term_years: int, rules: AllianceRules) -> None:
    if not 1 <= term_years <= rules.max_term_years:
        raise bad_input(
            f"termYears must be between 1 and {rules.max_term_years}: the charter limits an "
            "agreement's term, after which the member is evaluated again.",
            field="termYears",
        )


def check_signed_on(signed_on: date) -> None:
    if signed_on > clock.today():
        raise bad_input("signedOn cannot be in the future.", field="signedOn")


async def renew_agreement(
    ctx: RequestContext, agreement_id: str, signed_on: date, term_years: int
) -> AgreementRecord:
    require_role(ctx.who, Role.ALLIANCE_ADMIN, action="renew an agreement")
    key = decode_int(agreement_id, "Agreement")
    check_term(term_years, ctx.rules)
    check_signed_on(signed_on)
    async with ctx.registry.transaction() as tx:
        current = await tx.agreement(key, lock=True)
        if current is None or current.alliance_id != ctx.alliance_id:
            raise not_found("agreement", agreement_id)
        status = status_of(current, clock.today(), ctx.rules)
        if status is not AgreementStatus.EXPIRING:
            opens = renewal_window_opens(current, ctx.rules)
            raise invalid_transition(
                f"An agreement can be renewed only inside its renewal window (from {opens} to "
                f"{current.expires_on}); this one is {status}.",
                status=status,
            )
        membership = await tx.membership_for_update(ctx.alliance_id, current.party_b_code)
        if membership is None or membership.status != "ACTIVE":
            raise invalid_transition(
                "Only an active member's agreement can be renewed.", status=status
            )
        await tx.close_agreement(current.id, AgreementStatus.RENEWED, signed_on)
        effective_on = current.expires_on + timedelta(days=1)
        renewed = await tx.insert_agreement(
            alliance_id=ctx.alliance_id,
            party_a_code=current.party_a_code,
            party_b_code=current.party_b_code,
            signed_on=signed_on,
            term_years=term_years,
            effective_on=effective_on,
            expires_on=term_end(effective_on, term_years),
            renews_id=current.id,
        )
        await tx.record_events(
            ctx.alliance_id,
            [
                _changed(current.id, current.party_b_code),
                _changed(renewed.id, current.party_b_code),
            ],
        )
        return renewed


def _changed(agreement_id: int, member: str) -> NewEvent:
    return events.of_registry(
        EventType.AGREEMENT_CHANGED, "Agreement", agreement_id, [member], clock.now()
    )


async def terminate_agreement(
    ctx: RequestContext, agreement_id: str, reason: TerminationReason, note: str | None
) -> AgreementRecord:
    require_role(ctx.who, Role.ALLIANCE_ADMIN, action="terminate an agreement")
    key = decode_int(agreement_id, "Agreement")
    async with ctx.registry.transaction() as tx:
        current = await tx.agreement(key, lock=True)
        if current is None or current.alliance_id != ctx.alliance_id:
            raise not_found("agreement", agreement_id)
        today = clock.today()
        status = status_of(current, today, ctx.rules)
        if status not in _OPEN:
            raise invalid_transition(f"This agreement is already {status}.", status=status)
        hospital = await tx.hospitals([current.party_b_code])
        await tx.add_resolution(
            ctx.alliance_id,
            today,
            "TERMINATE_AGREEMENT",
            f"终止与{hospital[0].name}的合作协议（{reason}）",
        )
        closed = await tx.close_agreement(
            current.id, AgreementStatus.TERMINATED, today, reason, note
        )
        await tx.record_events(ctx.alliance_id, [_changed(current.id, current.party_b_code)])
        return closed


def still_open(
    agreements: list[AgreementRecord], today: date, rules: AllianceRules
) -> list[AgreementRecord]:
    """The agreements not yet expired, renewed or terminated."""
    return [a for a in agreements if status_of(a, today, rules) in _OPEN]
