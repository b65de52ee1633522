"""Tele-consultation (远程会诊): a member asks another (usually the lead) for an expert opinion on one
of its patients. The consultation lives in the requesting hospital's exchange database; the invited
hospital reads it through the gateway, accepts or declines, schedules, and issues the signed
opinion report (诊疗意见报告). The requesting doctor stays responsible for care."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from adapters.sources import port
from adapters.sources.port import Children, CreateRequest, UpdateRequest
from adapters.sources.records import (
    ChangeRow,
    ConsultationFilter,
    ConsultationRow,
    ListQuery,
    ReportRow,
)
from resolvers import agreements, events, patients
from resolvers.access import acting_hospital, record_scope
from resolvers.context import RequestContext
from resolvers.errors import bad_input, forbidden, invalid_transition, not_found
from resolvers.federation import Owned, on_member
from resolvers.lists import FederatedPage, federated_page, load_owned
from resolvers.referrals import PatientIn

KIND = "Consultation"


class ConsultationKind(StrEnum):
    REMOTE_CONSULTATION = "REMOTE_CONSULTATION"
    MDT = "MDT"
    REMOTE_IMAGING = "REMOTE_IMAGING"
    REMOTE_ECG = "REMOTE_ECG"
    REMOTE_PATHOLOGY = "REMOTE_PATHOLOGY"
    ON_SITE = "ON_SITE"


class ConsultationStatus(StrEnum):
    REQUESTED = "REQUESTED"
    ACCEPTED = "ACCEPTED"
    DECLINED = "DECLINED"
    SCHEDULED = "SCHEDULED"
    IN_PROGRESS = "IN_PROGRESS"
    REPORTED = "REPORTED"
    CLOSED = "CLOSED"
    CANCELLED = "CANCELLED"


@dataclass(frozen=True, slots=True)
class NewConsultation:
    kind: ConsultationKind
    invited_hospital: str
    patient: PatientIn
    purpose: str
    informed_consent: bool
    urgency: str = "ROUTINE"
    department: str | None = None
    case_summary: str | None = None
    attached_studies: tuple[str, ...] = ()
    desired_specialty: str | None = None
    desired_title: str | None = None
    proposed_at: datetime | None = None
    requesting_doctor: str | None = None
    idempotency_key: str | None = None


@dataclass(frozen=True, slots=True)
class ConsultationQuery:
    kinds: tuple[str, ...] | None = None
    statuses: tuple[str, ...] | None = None
    hospital: str | None = None
    since: datetime | None = None
    until: datetime | None = None


class Consultation(Owned[ConsultationRow]):
    """A consultation, held by the requesting hospital."""

    kind = KIND


def sees_patient(ctx: RequestContext, consultation: Consultation) -> bool:
    """Parties see the patient and the clinical text; the alliance office sees neither."""
    scope = record_scope(ctx.who, "consultations")
    return scope.sees_patients and _is_party(ctx, consultation.row)


_PARTIES = frozenset({"requesting_hospital", "invited_hospital"})


def _is_party(ctx: RequestContext, row: ConsultationRow) -> bool:
    return ctx.who.hospital_code in (row.requesting_hospital, row.invited_hospital)


async def page(
    ctx: RequestContext,
    q: ConsultationQuery,
    first: int | None,
    after: str | None,
    *,
    with_total: bool = False,
    fields: frozenset[str] | None = None,
) -> FederatedPage[ConsultationRow]:
    """`fields`: the record fields the reader reads (None: all); the parties are read too, for
    the hospitals' names and for who sees the patient."""
    scope = record_scope(ctx.who, "consultations")
    query = ListQuery(parties=scope.parties, with_party=q.hospital, since=q.since, until=q.until)
    filters = ConsultationFilter(kinds=q.kinds, statuses=q.statuses)
    return await federated_page(
        ctx,
        port.CONSULTATION,
        KIND,
        query,
        filters,
        first,
        after,
        with_total=with_total,
        hospitals_of=lambda r: (r.requesting_hospital, r.invited_hospital),
        fields=None if fields is None else fields | _PARTIES,
    )


async def report(ctx: RequestContext, consultation: Consultation) -> ReportRow | None:
    """The signed opinion report, if issued: one query per member for a whole page."""
    rows = await ctx.member_loaders.report.load((consultation.member, consultation.row.id))
    return rows[0] if rows else None


async def get(ctx: RequestContext, global_id: str) -> Consultation | None:
    """The consultation if it exists and the reader may see it."""
    scope = record_scope(ctx.who, "consultations")
    consultation = await load_owned(ctx, global_id, Consultation, ctx.member_loaders.consultation)
    if consultation is None or (scope.parties is not None and not _is_party(ctx, consultation.row)):
        return None
    return consultation


def _validate(new: NewConsultation) -> None:
    if not new.informed_consent:
        raise bad_input(
            "A consultation needs the patient's written informed consent (知情同意), which also "
            "covers the fee.",
            field="informedConsent",
        )
    if new.patient.sex not in ("MALE", "FEMALE", "UNKNOWN"):
        raise bad_input("patient.sex must be MALE, FEMALE or UNKNOWN.", field="patient.sex")
    if new.patient.age is not None and not 0 <= new.patient.age <= 150:
        raise bad_input("patient.age must be between 0 and 150.", field="patient.age")
    if not new.purpose.strip():
        raise bad_input("purpose (会诊目的) is required.", field="purpose")
    if new.urgency not in ("ROUTINE", "URGENT", "EMERGENCY"):
        raise bad_input("urgency must be ROUTINE, URGENT or EMERGENCY.", field="urgency")
    if any(not s.strip() for s in new.attached_studies):
        raise bad_input("attachedStudies must not hold empty references.", field="attachedStudies")
    if new.requesting_doctor is not None and not new.requesting_doctor.strip():
        raise bad_input("requestingDoctor must not be empty.", field="requestingDoctor")
    if new.idempotency_key is not None and not 8 <= len(new.idempotency_key) <= 128:
        raise bad_input("idempotencyKey must hold 8 to 128 characters.", field="idempotencyKey")


async def request(ctx: RequestContext, new: NewConsultation) -> Consultation:
    requester = acting_hospital(ctx.who, "request a consultation")
    _validate(new)
    if new.invited_hospital == requester:
        raise bad_input(
            "A hospital cannot invite itself to a consultation.", field="invitedHospital"
        )
    # Seed 000 §15, §19: both sides collaborate under an agreement in force.
    await agreements.active_party(ctx, requester, "requestingHospital")
    await agreements.active_party(ctx, new.invited_hospital, "invitedHospital")
    pseudonym = patients.linked_pseudonym(new.patient.resident_id, ctx.linkage_key)
    values = {
        "kind": new.kind.value,
        "requesting_hospital": requester,
        "requesting_doctor": (new.requesting_doctor or ctx.who.subject).strip(),
        "invited_hospital": new.invited_hospital,
        "department": new.department,
        "patient_pseudonym": pseudonym,
        "patient_sex": new.patient.sex,
        "patient_age": new.patient.age,
        "urgency": new.urgency,
        "purpose": new.purpose.strip(),
        "case_summary": new.case_summary,
        "attached_studies": [s.strip() for s in new.attached_studies],
        "desired_specialty": new.desired_specialty,
        "desired_title": new.desired_title,
        "proposed_at": new.proposed_at,
        "consent_obtained": True,
        "fee_fen": ctx.rules.consultation_fees_fen.get(new.kind.value),
        "idempotency_key": new.idempotency_key,
        "created_by": ctx.who.subject,
    }
    created = await on_member(
        ctx.federation, requester, CreateRequest(port.CONSULTATION, values), ctx.sources
    )
    row = created.record
    if not created.created and (row.patient_pseudonym != pseudonym or row.kind != new.kind.value):
        raise bad_input(
            "This idempotencyKey was already used for another consultation.",
            field="idempotencyKey",
        )
    ctx.audit.wrote("requestConsultation", pseudonym)
    await events.record(ctx, requester, _change(row))
    return Consultation(requester, row)


def _change(
    row: ConsultationRow, table: str = "consultation", version: int | None = None
) -> ChangeRow:
    return ChangeRow(
        table,
        row.id,
        row.version if version is None else version,
        row.updated_at,
        (row.requesting_hospital, row.invited_hospital),
    )


class Step(StrEnum):
    ACCEPT = "accept"
    DECLINE = "decline"
    SCHEDULE = "schedule"
    START = "start"
    REPORT = "issue the report of"
    CLOSE = "close"
    CANCEL = "cancel"


S = ConsultationStatus

# Step → (statuses it may start from, the status it leads to, who may take it).
_STEPS: dict[Step, tuple[tuple[ConsultationStatus, ...], ConsultationStatus, str]] = {
    Step.ACCEPT: ((S.REQUESTED,), S.ACCEPTED, "invited"),
    Step.DECLINE: ((S.REQUESTED,), S.DECLINED, "invited"),
    Step.SCHEDULE: ((S.ACCEPTED,), S.SCHEDULED, "invited"),
    Step.START: ((S.SCHEDULED,), S.IN_PROGRESS, "invited"),
    Step.REPORT: ((S.SCHEDULED, S.IN_PROGRESS), S.REPORTED, "invited"),
    Step.CLOSE: ((S.REPORTED,), S.CLOSED, "requesting"),
    Step.CANCEL: ((S.REQUESTED, S.ACCEPTED, S.SCHEDULED), S.CANCELLED, "requesting"),
}


def _text(value: str | None) -> str | None:
    return value.strip() if value and value.strip() else None


async def advance(
    ctx: RequestContext,
    global_id: str,
    step: Step,
    *,
    reason: str | None = None,
    expert_name: str | None = None,
    expert_title: str | None = None,
    scheduled_at: datetime | None = None,
    opinion: str | None = None,
) -> Consultation:
    actor = acting_hospital(ctx.who, f"{step} a consultation")
    current = await get(ctx, global_id)
    if current is None:
        raise not_found("consultation", global_id)
    member, row = current.member, current.row
    allowed_from, target, who = _STEPS[step]
    party = row.invited_hospital if who == "invited" else row.requesting_hospital
    if actor != party:
        raise forbidden(f"Only the {who} hospital of this consultation may {step} it.")
    if row.status not in allowed_from:
        raise invalid_transition(
            f"Cannot {step} a consultation that is {row.status}; this step needs "
            f"{' or '.join(allowed_from)}.",
            status=row.status,
        )
    if step is Step.REPORT:
        text, expert = _text(opinion), _text(expert_name) or row.expert_name
        if text is None:
            raise bad_input("The report needs the expert's opinion.", field="opinion")
        if expert is None:
            raise bad_input("Name the expert who signs the report.", field="expertName")
        # The signed opinion is stored with the status change, atomically.
        report = {"expert_name": expert, "opinion": text}
        updated = await on_member(
            ctx.federation,
            member,
            UpdateRequest(
                port.CONSULTATION,
                row.id,
                row.version,
                {"status": target.value},
                Children(port.CONSULTATION_REPORT, "consultation_id", (report,)),
            ),
            ctx.sources,
        )
    else:
        changes: dict[str, object] = {"status": target.value}
        if step in (Step.DECLINE, Step.CANCEL):
            if _text(reason) is None:
                raise bad_input(f"A reason is required to {step} a consultation.", field="reason")
            changes["status_reason"] = _text(reason)
        if step is Step.ACCEPT:
            if _text(expert_name) is not None:
                changes["expert_name"] = _text(expert_name)
            if _text(expert_title) is not None:
                changes["expert_title"] = _text(expert_title)
        if step is Step.SCHEDULE:
            if scheduled_at is None:
                raise bad_input("scheduledAt is required.", field="scheduledAt")
            changes["scheduled_at"] = scheduled_at
        updated = await on_member(
            ctx.federation,
            member,
            UpdateRequest(port.CONSULTATION, row.id, row.version, changes),
            ctx.sources,
        )
    if updated is None:
        raise invalid_transition(
            "The consultation changed meanwhile; read it again and retry.", status=row.status
        )
    ctx.audit.wrote("updateConsultation", row.patient_pseudonym)
    ctx.member_loaders.consultation.clear((member, row.id))
    ctx.member_loaders.report.clear((member, row.id))
    recorded = [_change(updated)]
    if step is Step.REPORT:
        # The report is a row of its own, written in the same transaction: its first version.
        recorded.append(_change(updated, "consultation_report", 1))
    await events.record(ctx, member, *recorded)
    return Consultation(member, updated)
