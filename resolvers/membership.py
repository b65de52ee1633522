"""The join flow (seed 000: application → secretariat review → chair approval → agreement) with
seed 003's due diligence, and the exit conditions of the charter."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import date
from enum import StrEnum

from adapters.registry.assessments import AssessmentStore
from adapters.registry.records import AgreementRecord, ApplicationRecord, HospitalRecord
from adapters.registry.store import RegistryStore
from resolvers import clock, credit_code, events
from resolvers.agreements import (
    RENEWABLE,
    TerminationReason,
    check_signed_on,
    check_term,
    renewal_window_opens,
    status_of,
    still_open,
    term_end,
)
from resolvers.authorization import require_role
from resolvers.context import RequestContext
from resolvers.errors import (
    ErrorCode,
    GatewayError,
    bad_input,
    forbidden,
    invalid_transition,
    not_found,
)
from resolvers.events import EventType
from resolvers.global_ids import decode_int
from resolvers.principal import Role
from resolvers.rules import InclusionCriteria

GRADE_LEVEL = {
    "GRADE_3A": 3,
    "GRADE_3B": 3,
    "GRADE_2A": 2,
    "GRADE_2B": 2,
    "GRADE_1": 1,
    "UNGRADED": 0,
}
# Finer than the level: 三甲 above 三乙 above 二甲 …, for the direction of a referral.
GRADE_RANK = {
    "GRADE_3A": 5,
    "GRADE_3B": 4,
    "GRADE_2A": 3,
    "GRADE_2B": 2,
    "GRADE_1": 1,
    "UNGRADED": 0,
}
_HOSPITAL_CODE = re.compile(r"^[A-Z][A-Z0-9-]{1,19}$")
_PHONE = re.compile(r"^\+?[0-9][0-9 ()-]{5,19}$")
_DIVISION = re.compile(r"^\d{6}$")


class DueDiligenceItem(StrEnum):
    """Seed 003: what the lead hospital verifies before signing with a new member."""

    LEGAL_QUALIFICATION = "LEGAL_QUALIFICATION"
    BUSINESS_SCOPE = "BUSINESS_SCOPE"
    ASSETS_AND_DEBTS = "ASSETS_AND_DEBTS"
    CREDIT_RECORD = "CREDIT_RECORD"
    TECHNICAL_AND_MANAGEMENT_LEVEL = "TECHNICAL_AND_MANAGEMENT_LEVEL"
    QUALITY_AND_SAFETY = "QUALITY_AND_SAFETY"
    ON_SITE_EVALUATION = "ON_SITE_EVALUATION"


class ExitReason(StrEnum):
    """The charter's exit conditions; all but VOLUNTARY expel the member."""

    VOLUNTARY = "VOLUNTARY"
    LAW_OR_POLICY_VIOLATION = "LAW_OR_POLICY_VIOLATION"
    LICENCE_REVOKED_OR_PENALISED = "LICENCE_REVOKED_OR_PENALISED"
    ASSESSMENT_FAILED = "ASSESSMENT_FAILED"


# The agreement's termination reason for each exit condition (seed 000 §16). A revoked licence
# or a severe penalty is the member losing its standing to practise, not a change of national
# policy (seed 001 §七.4, which frees both sides of liability); a failed assessment (seed 000 §11)
# is its own ground, not a breach of the agreement's terms.
_EXIT_TERMINATION = {
    ExitReason.VOLUNTARY: TerminationReason.MUTUAL_CONSENT,
    ExitReason.LAW_OR_POLICY_VIOLATION: TerminationReason.BREACH,
    ExitReason.LICENCE_REVOKED_OR_PENALISED: TerminationReason.LICENCE_REVOKED_OR_PENALISED,
    ExitReason.ASSESSMENT_FAILED: TerminationReason.ASSESSMENT_FAILED,
}


@dataclass(frozen=True, slots=True)
class SignedMembership:
    application: ApplicationRecord
    agreement: AgreementRecord


# -- validation -----------------------------------------------------------------------------


def validate_hospital(h: HospitalRecord) -> HospitalRecord:
    """The hospital, normalised, as every hospital entering the registry must be (an applicant, or
    a founding member given to `alliance-gateway init`); BAD_USER_INPUT naming the field."""
    h = replace(h, credit_code=credit_code.normalise(h.credit_code), name=h.name.strip())
    if not h.name or len(h.name) > 100:
        raise bad_input("hospital.name must hold 1 to 100 characters.", field="hospital.name")
    if (why := credit_code.problem(h.credit_code)) is not None:
        raise bad_input(f"hospital.creditCode {why}.", field="hospital.creditCode")
    if not _HOSPITAL_CODE.match(h.code):
        raise bad_input(
            "hospital.code must be 2-20 capital letters, digits or '-', starting with a letter.",
            field="hospital.code",
        )
    if not _DIVISION.match(h.division_code):
        raise bad_input(
            "hospital.divisionCode must be a 6-digit GB/T 2260 division code.",
            field="hospital.divisionCode",
        )
    if not _PHONE.match(h.contact_phone):
        raise bad_input(
            "hospital.contactPhone is not a phone number.", field="hospital.contactPhone"
        )
    if not h.contact_name.strip():
        raise bad_input("hospital.contactName is required.", field="hospital.contactName")
    for name in (
        "specialty_beds",
        "authorised_beds",
        "open_beds",
        "staff_total",
        "medical_staff",
        "management_staff",
    ):
        value = getattr(h, name)
        if value is not None and value < 0:
            raise bad_input(
                f"hospital.{_camel(name)} cannot be negative.", field=f"hospital.{_camel(name)}"
            )
    if h.licence_valid_until is not None and h.licence_valid_until < clock.today():
        raise bad_input(
            "The practice licence (医疗机构执业许可证) has expired; renew it before applying.",
            field="hospital.licenceValidUntil",
        )
    return h


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(p.title() for p in rest)


def check_inclusion(
    h: HospitalRecord, criteria: InclusionCriteria, excepted: str | None = None
) -> None:
    """The alliance's 纳入标准; the refusal names the criterion so the applicant knows what to fix.
    `excepted` is a criterion the member was admitted without, recorded on its membership."""
    unmet = unmet_criteria(h, criteria)
    if excepted in unmet:
        del unmet[excepted]
    if unmet:
        criterion, message = next(iter(unmet.items()))
        raise bad_input(message, criterion=criterion)


def unmet_criteria(h: HospitalRecord, criteria: InclusionCriteria) -> dict[str, str]:
    """Each inclusion criterion the hospital does not meet, with the refusal's message."""
    unmet: dict[str, str] = {}
    if GRADE_LEVEL[h.grade] < criteria.min_level:
        unmet["MIN_LEVEL"] = (
            f"Inclusion criterion not met: the hospital must be of level {criteria.min_level} or above."
        )
    if criteria.public_only and h.ownership != "PUBLIC":
        unmet["PUBLIC_ONLY"] = (
            "Inclusion criterion not met: the alliance admits government-run (public) hospitals only."
        )
    if h.specialty_beds < criteria.min_specialty_beds:
        unmet["MIN_SPECIALTY_BEDS"] = (
            "Inclusion criterion not met: an independent specialty ward of at least "
            f"{criteria.min_specialty_beds} beds is required (has {h.specialty_beds})."
        )
    return unmet


def default_hospital_code(credit: str) -> str:
    """Positions 9-17 of the credit code are the organisation code: unique per institution."""
    return "H" + credit[8:17]


# -- the steps ------------------------------------------------------------------------------


async def submit_application(ctx: RequestContext, hospital: HospitalRecord) -> ApplicationRecord:
    who = ctx.who
    require_role(
        who,
        Role.MEMBER_ADMIN,
        Role.SECRETARIAT,
        Role.ALLIANCE_ADMIN,
        action="submit a membership application",
    )
    if not hospital.code:
        hospital = replace(
            hospital,
            code=(who.hospital_code or "")
            if _only_member_admin(ctx)
            else default_hospital_code(credit_code.normalise(hospital.credit_code)),
        )
    if _only_member_admin(ctx) and hospital.code != who.hospital_code:
        raise forbidden("A MEMBER_ADMIN may apply only for the hospital named in its token.")
    hospital = validate_hospital(hospital)
    check_inclusion(hospital, ctx.rules.inclusion)
    async with ctx.registry.transaction() as tx:
        await check_hospital_identity(tx, hospital)
        membership = await tx.membership_for_update(ctx.alliance_id, hospital.code)
        if membership is not None and membership.status == "ACTIVE":
            raise GatewayError(ErrorCode.CONFLICT, f"{hospital.name} is already an active member.")
        if await tx.open_application_of(ctx.alliance_id, hospital.code) is not None:
            raise GatewayError(
                ErrorCode.CONFLICT, f"{hospital.name} already has an open application."
            )
        await tx.upsert_hospital(hospital)
        return await tx.insert_application(ctx.alliance_id, hospital.code, who.subject)


async def request_renewal(ctx: RequestContext, agreement_id: str) -> ApplicationRecord:
    """A member asks to continue after its term. Seed 000 §19: that needs re-evaluation and a
    new agreement, so it is an application (kind RENEWAL) that the secretariat reviews with due
    diligence and the chair institution approves, as a new member's is; the hospital must still
    meet the inclusion criteria (but one its membership records an exception for) and hold a
    valid practice licence."""
    who = ctx.who
    require_role(
        who,
        Role.MEMBER_ADMIN,
        Role.SECRETARIAT,
        Role.ALLIANCE_ADMIN,
        action="request the renewal of an agreement",
    )
    key = decode_int(agreement_id, "Agreement")
    async with ctx.registry.transaction() as tx:
        agreement = await tx.agreement(key, lock=True)
        if agreement is None or agreement.alliance_id != ctx.alliance_id:
            raise not_found("agreement", agreement_id)
        code = agreement.party_b_code
        if _only_member_admin(ctx) and code != who.hospital_code:
            raise forbidden(
                "A MEMBER_ADMIN may request renewal of its own hospital's agreement only."
            )
        status = status_of(agreement, clock.today(), ctx.rules)
        if status not in RENEWABLE:
            raise invalid_transition(
                "Renewal can be requested from the renewal window "
                f"({renewal_window_opens(agreement, ctx.rules)}) on, or once expired; this "
                f"agreement is {status}.",
                status=status,
            )
        membership = await tx.membership_for_update(ctx.alliance_id, code)
        if membership is None or membership.status != "ACTIVE":
            raise invalid_transition(
                "Only an active member's agreement can be renewed.", status=status
            )
        (hospital,) = await tx.hospitals([code])
        validate_hospital(hospital)
        check_inclusion(hospital, ctx.rules.inclusion, membership.inclusion_exception)
        if await tx.open_application_of(ctx.alliance_id, code) is not None:
            raise GatewayError(
                ErrorCode.CONFLICT, f"{hospital.name} already has an open application."
            )
        return await tx.insert_application(
            ctx.alliance_id, code, who.subject, renews_agreement_id=agreement.id
        )


async def check_hospital_identity(tx: RegistryStore, hospital: HospitalRecord) -> None:
    """CONFLICT unless the hospital's code and credit code are new, or registered together."""
    known = await tx.hospital_by_credit_code(hospital.credit_code)
    if known is not None and known.code != hospital.code:
        raise GatewayError(
            ErrorCode.CONFLICT,
            f"This credit code is registered as hospital {known.code}; apply under that code.",
            field="hospital.code",
        )
    existing = await tx.hospitals([hospital.code])
    if existing and existing[0].credit_code != hospital.credit_code:
        raise GatewayError(
            ErrorCode.CONFLICT,
            f"Hospital code {hospital.code} is taken.",
            field="hospital.code",
        )


def _only_member_admin(ctx: RequestContext) -> bool:
    return not ctx.who.has_any(Role.SECRETARIAT, Role.ALLIANCE_ADMIN)


async def _locked_application(
    tx: RegistryStore, ctx: RequestContext, application_id: str
) -> ApplicationRecord:
    key = decode_int(application_id, "MembershipApplication")
    application = await tx.application(key, lock=True)
    if application is None or application.alliance_id != ctx.alliance_id:
        raise not_found("membership application", application_id)
    return application


def _expect(application: ApplicationRecord, status: str, step: str) -> None:
    if application.status != status:
        raise invalid_transition(
            f"Cannot {step}: the application is {application.status}, and this step needs {status}.",
            status=application.status,
        )


def _note_required(note: str | None, step: str) -> str:
    if note is None or not note.strip():
        raise bad_input(f"A note explaining the reason is required to {step}.", field="note")
    return note.strip()


async def review_application(
    ctx: RequestContext,
    application_id: str,
    passed: bool,
    note: str | None,
    due_diligence: list[DueDiligenceItem],
) -> ApplicationRecord:
    require_role(ctx.who, Role.SECRETARIAT, action="review a membership application (初审)")
    if passed:
        missing = [item for item in DueDiligenceItem if item not in due_diligence]
        if missing:
            raise bad_input(
                "Due diligence is incomplete; verify before passing: " + ", ".join(missing) + ".",
                field="dueDiligence",
                missing=list(missing),
            )
    else:
        note = _note_required(note, "reject an application")
    async with ctx.registry.transaction() as tx:
        application = await _locked_application(tx, ctx, application_id)
        _expect(application, "SUBMITTED", "review")
        return await tx.record_review(
            application.id,
            "REVIEW_PASSED" if passed else "REJECTED",
            ctx.who.subject,
            note,
            sorted(set(due_diligence)),
        )


async def approve_application(
    ctx: RequestContext, application_id: str, approved: bool, note: str | None
) -> ApplicationRecord:
    require_role(ctx.who, Role.ALLIANCE_ADMIN, action="approve a membership application (审批)")
    if not approved:
        note = _note_required(note, "reject an application")
    async with ctx.registry.transaction() as tx:
        application = await _locked_application(tx, ctx, application_id)
        _expect(application, "REVIEW_PASSED", "approve")
        resolution_id = None
        if approved:
            (hospital,) = await tx.hospitals([application.hospital_code])
            subject, summary = (
                ("OTHER", f"经再评估，同意与{hospital.name}续签合作协议")
                if application.kind == "RENEWAL"
                else ("ADMIT_MEMBER", f"同意{hospital.name}加入联盟")
            )
            resolution = await tx.add_resolution(ctx.alliance_id, clock.today(), subject, summary)
            resolution_id = resolution.id
        return await tx.record_decision(
            application.id,
            "APPROVED" if approved else "REJECTED",
            ctx.who.subject,
            note,
            resolution_id,
        )


async def sign_agreement(
    ctx: RequestContext, application_id: str, signed_on: date, term_years: int
) -> SignedMembership:
    require_role(ctx.who, Role.ALLIANCE_ADMIN, action="sign a cooperation agreement")
    check_term(term_years, ctx.rules)
    check_signed_on(signed_on)
    async with ctx.registry.transaction() as tx:
        application = await _locked_application(tx, ctx, application_id)
        _expect(application, "APPROVED", "sign the agreement")
        if application.kind == "RENEWAL":
            raise invalid_transition(
                "This is a renewal application: sign it with renewAgreement on the agreement it "
                "renews.",
                status=application.status,
            )
        alliance = await tx.alliance(ctx.alliance_id)
        assert alliance is not None
        await tx.insert_membership(ctx.alliance_id, application.hospital_code, "MEMBER", signed_on)
        agreement = await tx.insert_agreement(
            alliance_id=ctx.alliance_id,
            party_a_code=alliance.lead_hospital_code,
            party_b_code=application.hospital_code,
            application_id=application.id,
            signed_on=signed_on,
            term_years=term_years,
            effective_on=signed_on,
            expires_on=term_end(signed_on, term_years),
        )
        await tx.mark_application_signed(application.id)
        code = application.hospital_code
        await tx.record_events(
            ctx.alliance_id,
            [
                events.of_registry(
                    EventType.MEMBERSHIP_CHANGED, "Member", code, [code], clock.now()
                ),
                events.of_registry(
                    EventType.AGREEMENT_CHANGED, "Agreement", agreement.id, [code], clock.now()
                ),
            ],
        )
        signed = await tx.application(application.id)
        assert signed is not None
        return SignedMembership(application=signed, agreement=agreement)


# Seed 000 §16(三) expels on a failed annual or periodic assessment: the lead's latest, of this
# year or the last, since one older than the assessment after it says nothing of the member now.
RECENT_ASSESSMENT_YEARS = 2


async def _check_failed_assessment(
    tx: RegistryStore, ctx: RequestContext, hospital_code: str, status: str, today: date
) -> None:
    """INVALID_TRANSITION unless the lead's latest concluded assessment of the member, of a
    recent year, failed it (seed 000 §11, §16(三))."""
    since = today.year - RECENT_ASSESSMENT_YEARS + 1
    concluded = await AssessmentStore(tx, ctx.alliance_id).member_assessments_since(
        hospital_code, since
    )
    if concluded and not concluded[0].passed:
        return
    years = f"{since} or {today.year}"
    error = invalid_transition(
        (
            f"The lead's latest assessment of {hospital_code} ({concluded[0].year}) passed it"
            if concluded
            else f"The lead has concluded no assessment of {hospital_code} for {years}"
        )
        + ": expelling for ASSESSMENT_FAILED needs a failed one (seed 000 §16(三)); the lead "
        "hospital's MEMBER_ADMIN records it with concludeMemberAssessment(passed: false).",
        status=status,
    )
    error.extensions["missing"] = "FAILED_MEMBER_ASSESSMENT"
    error.extensions["years"] = [since, today.year]
    raise error


async def withdraw_member(
    ctx: RequestContext, hospital_code: str, reason: ExitReason, note: str | None
) -> str:
    who = ctx.who
    own_voluntary = (
        who.has_any(Role.MEMBER_ADMIN)
        and who.hospital_code == hospital_code
        and reason is ExitReason.VOLUNTARY
    )
    if not (who.has_any(Role.ALLIANCE_ADMIN) or own_voluntary):
        raise forbidden(
            "Only ALLIANCE_ADMIN may end a membership; a MEMBER_ADMIN may only withdraw its own "
            "hospital voluntarily."
        )
    if reason is not ExitReason.VOLUNTARY:
        note = _note_required(note, "expel a member")
    today = clock.today()
    async with ctx.registry.transaction() as tx:
        membership = await tx.membership_for_update(ctx.alliance_id, hospital_code)
        if membership is None:
            raise not_found("member", hospital_code)
        if membership.role == "LEAD":
            raise invalid_transition(
                "The lead hospital cannot leave its own alliance.", status=membership.status
            )
        if membership.status != "ACTIVE":
            raise invalid_transition(
                f"This member is already {membership.status}.", status=membership.status
            )
        if reason is ExitReason.ASSESSMENT_FAILED:
            await _check_failed_assessment(tx, ctx, hospital_code, membership.status, today)
        status = "WITHDRAWN" if reason is ExitReason.VOLUNTARY else "EXPELLED"
        if status == "EXPELLED":
            (hospital,) = await tx.hospitals([hospital_code])
            await tx.add_resolution(
                ctx.alliance_id, today, "EXPEL_MEMBER", f"{hospital.name}退出联盟（{reason}）"
            )
        changed = [
            events.of_registry(
                EventType.MEMBERSHIP_CHANGED, "Member", hospital_code, [hospital_code], clock.now()
            )
        ]
        for agreement in still_open(
            await tx.agreements_of(ctx.alliance_id, hospital_code), today, ctx.rules
        ):
            await tx.close_agreement(
                agreement.id, "TERMINATED", today, _EXIT_TERMINATION[reason], note
            )
            changed.append(
                events.of_registry(
                    EventType.AGREEMENT_CHANGED,
                    "Agreement",
                    agreement.id,
                    [hospital_code],
                    clock.now(),
                )
            )
        await tx.end_membership(ctx.alliance_id, hospital_code, status, today, reason)
        await tx.record_events(ctx.alliance_id, changed)
        return hospital_code
