"""Two-way referral (双向转诊): up to a higher-level hospital for complex or critical cases, down to
the grassroots for stable and rehabilitation patients. A referral lives in the sending hospital's
exchange database; the receiving hospital reads and moves it through the gateway."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum

from adapters.sources import port
from adapters.sources.port import CreateRequest, UpdateRequest
from adapters.sources.records import ChangeRow, ListQuery, ReferralFilter, ReferralRow
from resolvers import agreements, events, global_ids, patients
from resolvers.access import acting_hospital, record_scope
from resolvers.context import RequestContext
from resolvers.errors import bad_input, forbidden, invalid_transition, not_found
from resolvers.federation import Owned, on_member
from resolvers.lists import FederatedPage, federated_page, load_owned
from resolvers.membership import GRADE_RANK

KIND = "Referral"


class Direction(StrEnum):
    UP = "UP"
    DOWN = "DOWN"


class ReferralStatus(StrEnum):
    INITIATED = "INITIATED"
    ACCEPTED = "ACCEPTED"
    REJECTED = "REJECTED"
    ARRIVED = "ARRIVED"
    COMPLETED = "COMPLETED"
    CANCELLED = "CANCELLED"


@dataclass(frozen=True, slots=True)
class PatientIn:
    resident_id: str
    sex: str
    age: int | None


@dataclass(frozen=True, slots=True)
class NewReferral:
    direction: Direction
    to_hospital: str
    patient: PatientIn
    diagnosis_code: str
    diagnosis_name: str
    reason: str
    green_channel: bool = False
    urgency: str = "ROUTINE"
    from_department: str | None = None
    to_department: str | None = None
    condition_summary: str | None = None
    notes: str | None = None
    requested_date: date | None = None
    discharge_summary: str | None = None
    rehab_advice: str | None = None
    idempotency_key: str | None = None


@dataclass(frozen=True, slots=True)
class ReferralQuery:
    directions: tuple[str, ...] | None = None
    statuses: tuple[str, ...] | None = None
    green_channel: bool | None = None
    hospital: str | None = None
    since: datetime | None = None
    until: datetime | None = None


class Referral(Owned[ReferralRow]):
    """A referral, held by the sending hospital."""

    kind = KIND


def sees_patient(ctx: RequestContext, referral: Referral) -> bool:
    """Parties see the patient; the alliance office sees the referral without one."""
    scope = record_scope(ctx.who, "referrals")
    return scope.sees_patients and _is_party(ctx, referral.row)


def sees_clinical_text(ctx: RequestContext) -> bool:
    """The diagnosis and reason: every reader but operations."""
    return record_scope(ctx.who, "referrals").sees_clinical_text


_PARTIES = frozenset({"from_hospital", "to_hospital"})


def _is_party(ctx: RequestContext, row: ReferralRow) -> bool:
    return ctx.who.hospital_code in (row.from_hospital, row.to_hospital)


async def page(
    ctx: RequestContext,
    q: ReferralQuery,
    first: int | None,
    after: str | None,
    *,
    with_total: bool = False,
    fields: frozenset[str] | None = None,
) -> FederatedPage[ReferralRow]:
    """`fields`: the record fields the reader reads (None: all); the parties are read too, for
    the hospitals' names and for who sees the patient."""
    scope = record_scope(ctx.who, "referrals")
    query = ListQuery(parties=scope.parties, with_party=q.hospital, since=q.since, until=q.until)
    filters = ReferralFilter(
        directions=q.directions, statuses=q.statuses, green_channel=q.green_channel
    )
    return await federated_page(
        ctx,
        port.REFERRAL,
        KIND,
        query,
        filters,
        first,
        after,
        with_total=with_total,
        hospitals_of=lambda r: (r.from_hospital, r.to_hospital),
        fields=None if fields is None else fields | _PARTIES,
    )


async def get(ctx: RequestContext, global_id: str) -> Referral | None:
    """The referral if it exists and the reader may see it."""
    scope = record_scope(ctx.who, "referrals")
    referral = await load_owned(ctx, global_id, Referral, ctx.member_loaders.referral)
    if referral is None or (scope.parties is not None and not _is_party(ctx, referral.row)):
        return None
    return referral


def expected_direction(
    from_role: str, from_grade: str, to_role: str, to_grade: str
) -> Direction | None:
    """The direction of a referral between two parties, None when it has none. Up and down are
    by role first (seed 001 #16, #17): a member or backbone sends UP to the lead, the lead sends
    DOWN to them, whatever their grades; between two non-lead parties, by hospital grade."""
    if to_role == "LEAD":
        return Direction.UP
    if from_role == "LEAD":
        return Direction.DOWN
    step = GRADE_RANK[to_grade] - GRADE_RANK[from_grade]
    return Direction.UP if step > 0 else Direction.DOWN if step < 0 else None


def _check_direction(
    direction: Direction, sender: agreements.Party, receiver: agreements.Party
) -> None:
    expected = expected_direction(
        sender.role, sender.hospital.grade, receiver.role, receiver.hospital.grade
    )
    if expected is direction:
        return
    if receiver.role == "LEAD":
        why = "a referral to the lead hospital goes UP (seed 001 #16)"
    elif sender.role == "LEAD":
        why = "the lead hospital refers DOWN to its members (seed 001 #17)"
    elif expected is None:
        why = (
            "between two members of the same grade a referral is neither UP nor DOWN; refer UP "
            "to the lead or a higher grade, DOWN to a lower grade"
        )
    elif expected is Direction.UP:
        why = "a referral to a member of a higher grade goes UP"
    else:
        why = "a referral to a member of a lower grade goes DOWN"
    raise bad_input(f"This referral cannot be {direction}: {why}.", field="direction")


def _validate(new: NewReferral) -> None:
    if new.patient.sex not in ("MALE", "FEMALE", "UNKNOWN"):
        raise bad_input("patient.sex must be MALE, FEMALE or UNKNOWN.", field="patient.sex")
    if new.patient.age is not None and not 0 <= new.patient.age <= 150:
        raise bad_input("patient.age must be between 0 and 150.", field="patient.age")
    if not new.diagnosis_code.strip() or not new.diagnosis_name.strip():
        raise bad_input("diagnosis needs an ICD-10 code and a name.", field="diagnosis")
    if not new.reason.strip():
        raise bad_input("reason (转诊原因) is required.", field="reason")
    if new.urgency not in ("ROUTINE", "URGENT", "EMERGENCY"):
        raise bad_input("urgency must be ROUTINE, URGENT or EMERGENCY.", field="urgency")
    if new.idempotency_key is not None and not 8 <= len(new.idempotency_key) <= 128:
        raise bad_input("idempotencyKey must hold 8 to 128 characters.", field="idempotencyKey")


async def create(ctx: RequestContext, new: NewReferral) -> Referral:
    sender = acting_hospital(ctx.who, "create a referral")
    _validate(new)
    if new.to_hospital == sender:
        raise bad_input("A hospital cannot refer a patient to itself.", field="toHospital")
    sender_party = await agreements.active_party(ctx, sender, "fromHospital")
    receiver = await agreements.active_party(ctx, new.to_hospital, "toHospital")
    _check_direction(new.direction, sender_party, receiver)
    pseudonym = patients.linked_pseudonym(new.patient.resident_id, ctx.linkage_key)
    today = date.today()
    values = {
        "referral_no": f"{sender}-R{today:%Y%m%d}-{global_ids.short_token()}",
        "direction": new.direction.value,
        "from_hospital": sender,
        "from_department": new.from_department,
        "to_hospital": new.to_hospital,
        "to_department": new.to_department,
        "patient_pseudonym": pseudonym,
        "patient_sex": new.patient.sex,
        "patient_age": new.patient.age,
        "diagnosis_code": new.diagnosis_code.strip(),
        "diagnosis_name": new.diagnosis_name.strip(),
        "reason": new.reason.strip(),
        "condition_summary": new.condition_summary,
        "notes": new.notes,
        "urgency": new.urgency,
        "green_channel": new.green_channel,
        "requested_date": new.requested_date,
        "discharge_summary": new.discharge_summary,
        "rehab_advice": new.rehab_advice,
        "idempotency_key": new.idempotency_key,
        "created_by": ctx.who.subject,
    }
    created = await on_member(
        ctx.federation, sender, CreateRequest(port.REFERRAL, values), ctx.sources
    )
    row = created.record
    if not created.created and row.patient_pseudonym != pseudonym:
        raise bad_input(
            "This idempotencyKey was already used for another referral.", field="idempotencyKey"
        )
    ctx.audit.wrote("createReferral", pseudonym)
    await events.record(ctx, sender, _change(row))
    return Referral(sender, row)


def _change(row: ReferralRow) -> ChangeRow:
    return ChangeRow(
        "referral", row.id, row.version, row.updated_at, (row.from_hospital, row.to_hospital)
    )


class Step(StrEnum):
    ACCEPT = "accept"
    REJECT = "reject"
    ARRIVE = "record the arrival of"
    COMPLETE = "complete"
    CANCEL = "cancel"


# Step → (statuses it may start from, the status it leads to, who may take it).
_STEPS: dict[Step, tuple[tuple[ReferralStatus, ...], ReferralStatus, str]] = {
    Step.ACCEPT: ((ReferralStatus.INITIATED,), ReferralStatus.ACCEPTED, "receiver"),
    Step.REJECT: ((ReferralStatus.INITIATED,), ReferralStatus.REJECTED, "receiver"),
    Step.ARRIVE: ((ReferralStatus.ACCEPTED,), ReferralStatus.ARRIVED, "receiver"),
    Step.COMPLETE: ((ReferralStatus.ARRIVED,), ReferralStatus.COMPLETED, "either"),
    Step.CANCEL: (
        (ReferralStatus.INITIATED, ReferralStatus.ACCEPTED),
        ReferralStatus.CANCELLED,
        "sender",
    ),
}


async def advance(
    ctx: RequestContext,
    global_id: str,
    step: Step,
    *,
    reason: str | None = None,
    treatment_result: str | None = None,
    discharge_summary: str | None = None,
    rehab_advice: str | None = None,
) -> Referral:
    actor = acting_hospital(ctx.who, f"{step} a referral")
    current = await get(ctx, global_id)
    if current is None:
        raise not_found("referral", global_id)
    row = current.row
    allowed_from, target, who = _STEPS[step]
    party = {
        "receiver": (row.to_hospital,),
        "sender": (row.from_hospital,),
        "either": (row.from_hospital, row.to_hospital),
    }[who]
    if actor not in party:
        raise forbidden(f"Only the {who} hospital of this referral may {step} it.")
    if row.status not in allowed_from:
        raise invalid_transition(
            f"Cannot {step} a referral that is {row.status}; this step needs "
            f"{' or '.join(allowed_from)}.",
            status=row.status,
        )
    changes: dict[str, object] = {"status": target.value}
    if step in (Step.REJECT, Step.CANCEL):
        if not reason or not reason.strip():
            raise bad_input(f"A reason is required to {step} a referral.", field="reason")
        changes["status_reason"] = reason.strip()
    if step is Step.ARRIVE:
        changes["arrived_at"] = datetime.now().astimezone()
    if step is Step.COMPLETE:
        summary = discharge_summary or row.discharge_summary
        advice = rehab_advice or row.rehab_advice
        if row.direction == Direction.DOWN and not (summary and advice):
            raise bad_input(
                "A downward referral is completed with a discharge summary and rehabilitation "
                "advice.",
                field="dischargeSummary",
            )
        changes.update(
            completed_at=datetime.now().astimezone(),
            treatment_result=treatment_result,
            discharge_summary=summary,
            rehab_advice=advice,
        )
    member = current.member
    updated = await on_member(
        ctx.federation,
        member,
        UpdateRequest(port.REFERRAL, row.id, row.version, changes),
        ctx.sources,
    )
    if updated is None:
        raise invalid_transition(
            "The referral changed meanwhile; read it again and retry.", status=row.status
        )
    ctx.audit.wrote("updateReferral", row.patient_pseudonym)
    ctx.member_loaders.referral.clear((member, row.id))
    await events.record(ctx, member, _change(updated))
    return Referral(member, updated)
