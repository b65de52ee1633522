"""Cooperation agreements (合作协议): status from dates, renewal inside its window, termination."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from enum import StrEnum

from adapters.registry.records import AgreementRecord, HospitalRecord, NewEvent
from resolvers import clock, events, registry
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
    """Seed 001's grounds (agreement §七, §八), and two of the charter's exit conditions (seed 000
    §16) that none of them describes: the member losing its licence, or failing its assessment."""

    MUTUAL_CONSENT = "MUTUAL_CONSENT"
    BREACH = "BREACH"
    FORCE_MAJEURE = "FORCE_MAJEURE"
    POLICY_CHANGE = "POLICY_CHANGE"
    LICENCE_REVOKED_OR_PENALISED = "LICENCE_REVOKED_OR_PENALISED"
    ASSESSMENT_FAILED = "ASSESSMENT_FAILED"


_OPEN = {AgreementStatus.SIGNED, AgreementStatus.ACTIVE, AgreementStatus.EXPIRING}
IN_FORCE = {AgreementStatus.ACTIVE, AgreementStatus.EXPIRING}


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


@dataclass(frozen=True, slots=True)
class Party:
    """A hospital that may take part in the alliance's clinical collaboration now."""

    hospital: HospitalRecord
    role: str  # LEAD | BACKBONE | MEMBER


async def active_party(ctx: RequestContext, code: str, field: str) -> Party:
    """The hospital, if it is an active member with an agreement in force (or the lead, party A
    of every agreement); BAD_USER_INPUT naming `field` otherwise. Seed 000 §15 and §19: members
    collaborate under a signed agreement of a limited term, and continue only after
    re-evaluation and a new agreement, so an expired or terminated one ends collaboration."""
    hospital = await registry.active_member(ctx, code, field)
    membership = await registry.membership(ctx, code)
    assert membership is not None
    if membership.role == "LEAD":
        return Party(hospital, membership.role)
    today = clock.today()
    statuses = [status_of(a, today, ctx.rules) for a in await registry.agreement_history(ctx, code)]
    if not IN_FORCE.intersection(statuses):
        latest = statuses[0] if statuses else None
        raise bad_input(
            f"{code} has no cooperation agreement in force"
            + (f" (its latest is {latest})" if latest else "")
            + ": clinical collaboration needs one, and continuing after a term needs "
            "re-evaluation and a renewed agreement (seed 000 §19).",
            field=field,
            agreementStatus=latest,
        )
    return Party(hospital, membership.role)


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


RENEWABLE = {AgreementStatus.EXPIRING, AgreementStatus.EXPIRED}


async def renew_agreement(
    ctx: RequestContext, agreement_id: str, signed_on: date, term_years: int
) -> AgreementRecord:
    """Sign the new agreement of an approved renewal application. Seed 000 §19: continuing after
    a term needs re-evaluation (再评估) and a new agreement, so the renewal is reviewed and
    approved as an application is, and signed only then."""
    require_role(ctx.who, Role.ALLIANCE_ADMIN, action="renew an agreement")
    key = decode_int(agreement_id, "Agreement")
    check_term(term_years, ctx.rules)
    check_signed_on(signed_on)
    async with ctx.registry.transaction() as tx:
        current = await tx.agreement(key, lock=True)
        if current is None or current.alliance_id != ctx.alliance_id:
            raise not_found("agreement", agreement_id)
        status = status_of(current, clock.today(), ctx.rules)
        if status not in RENEWABLE:
            opens = renewal_window_opens(current, ctx.rules)
            raise invalid_transition(
                f"An agreement can be renewed only from its renewal window (from {opens}) on, "
                f"or once expired; this one is {status}.",
                status=status,
            )
        membership = await tx.membership_for_update(ctx.alliance_id, current.party_b_code)
        if membership is None or membership.status != "ACTIVE":
            raise invalid_transition(
                "Only an active member's agreement can be renewed.", status=status
            )
        application = await tx.renewal_application(current.id, "APPROVED", lock=True)
        if application is None:
            raise invalid_transition(
                "A renewal needs re-evaluation first (seed 000 §19): request it with "
                "requestAgreementRenewal, then the secretariat's review (初审) and the chair "
                "institution's approval; this agreement has no approved renewal application.",
                status=status,
            )
        await tx.close_agreement(current.id, AgreementStatus.RENEWED, signed_on)
        # Inside the window the new term follows on; after expiry it starts when signed.
        effective_on = max(current.expires_on + timedelta(days=1), signed_on)
        renewed = await tx.insert_agreement(
            alliance_id=ctx.alliance_id,
            party_a_code=current.party_a_code,
            party_b_code=current.party_b_code,
            signed_on=signed_on,
            term_years=term_years,
            effective_on=effective_on,
            expires_on=term_end(effective_on, term_years),
            application_id=application.id,
            renews_id=current.id,
        )
        await tx.mark_application_signed(application.id)
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
