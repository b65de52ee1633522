"""Two-way referrals in the public contract."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, cast

import strawberry

from resolvers import referrals
from resolvers.referrals import Referral as ReferralRecord
from schema.clinical import Diagnosis, DiagnosisInput, Patient, PatientInput
from schema.connections import CountedConnection, Edge, PageInfo
from schema.direct import direct, hospital
from schema.enums import Sex, Urgency
from schema.fan_out import FanOut
from schema.selection import node_reads, selects
from schema.types import Ctx, Hospital, Node

# strawberry.enum registers each class in place and returns it: the names stay types.
Direction = referrals.Direction
strawberry.enum(Direction)
ReferralStatus = referrals.ReferralStatus
strawberry.enum(ReferralStatus)


@strawberry.type(
    description="A two-way referral (双向转诊). Its record lives at the sending "
    "hospital; both parties read it here."
)
class Referral(Node):
    record: strawberry.Private[ReferralRecord]

    @classmethod
    def of(cls, record: ReferralRecord) -> Referral:
        # Plain fields, filled once: a field with a resolver costs a call per field per node.
        # Enums as the record holds them: their GraphQL types serialize the value itself, with
        # no member made per node, and a field a list did not read (None) is never serialized.
        row = record.row
        return cls(
            id=strawberry.ID(record.global_id),
            record=record,
            referral_no=row.referral_no,
            direction=cast(Direction, row.direction),
            status=cast(ReferralStatus, row.status),
            status_reason=row.status_reason,
            green_channel=row.green_channel,
            urgency=cast(Urgency, row.urgency),
            from_department=row.from_department,
            to_department=row.to_department,
            requested_date=row.requested_date,
            arrived_at=row.arrived_at,
            completed_at=row.completed_at,
            created_at=row.created_at,
            updated_at=row.updated_at,
            version=row.version,
        )

    def _clinical(self, info: Ctx) -> bool:
        return referrals.sees_patient(info.context, self.record)

    referral_no: str = strawberry.field(
        description="The sending hospital's referral number (转诊单号)."
    )
    direction: Direction
    status: ReferralStatus
    status_reason: str | None = strawberry.field(description="Why it was rejected or cancelled.")
    green_channel: bool = strawberry.field(
        description="绿色通道: priority reception, examination and admission."
    )
    urgency: Urgency

    @strawberry.field
    @direct
    def from_hospital(self, info: Ctx) -> Hospital:
        return hospital(info, self.record.row.from_hospital)

    from_department: str | None

    @strawberry.field
    @direct
    def to_hospital(self, info: Ctx) -> Hospital:
        return hospital(info, self.record.row.to_hospital)

    to_department: str | None

    @strawberry.field(description="Null for readers who are not a party (the alliance office).")
    @direct
    def patient(self, info: Ctx) -> Patient | None:
        if not self._clinical(info):
            return None
        row = self.record.row
        info.context.audit.read("referrals", [row.patient_pseudonym])
        return Patient(
            pseudonym=row.patient_pseudonym, sex=Sex(row.patient_sex), age=row.patient_age
        )

    @strawberry.field(description="Null for operations (OPS), which see no clinical content.")
    @direct
    def diagnosis(self, info: Ctx) -> Diagnosis | None:
        if not referrals.sees_clinical_text(info.context):
            return None
        return Diagnosis(code=self.record.row.diagnosis_code, name=self.record.row.diagnosis_name)

    @strawberry.field(
        description="Indication and reason (转诊指征/原因). Null for operations (OPS)."
    )
    @direct
    def reason(self, info: Ctx) -> str | None:
        return self.record.row.reason if referrals.sees_clinical_text(info.context) else None

    @strawberry.field(description="Parties only.")
    @direct
    def condition_summary(self, info: Ctx) -> str | None:
        return self.record.row.condition_summary if self._clinical(info) else None

    @strawberry.field(description="Parties only.")
    @direct
    def notes(self, info: Ctx) -> str | None:
        return self.record.row.notes if self._clinical(info) else None

    requested_date: date | None
    arrived_at: datetime | None
    completed_at: datetime | None

    @strawberry.field(description="Parties only.")
    @direct
    def treatment_result(self, info: Ctx) -> str | None:
        return self.record.row.treatment_result if self._clinical(info) else None

    @strawberry.field(description="On a downward referral. Parties only.")
    @direct
    def discharge_summary(self, info: Ctx) -> str | None:
        return self.record.row.discharge_summary if self._clinical(info) else None

    @strawberry.field(description="On a downward referral. Parties only.")
    @direct
    def rehab_advice(self, info: Ctx) -> str | None:
        return self.record.row.rehab_advice if self._clinical(info) else None

    created_at: datetime
    updated_at: datetime

    version: int = strawberry.field(description="Increases with every change.")


# The record fields each field of a Referral reads, for lists to read no others; a field that is
# not here (a new one) makes a list read the whole record. The parties are read anyway
# (resolvers.referrals.page).
READS: dict[str, tuple[str, ...]] = {
    "id": ("id",),
    "referralNo": ("referral_no",),
    "direction": ("direction",),
    "status": ("status",),
    "statusReason": ("status_reason",),
    "greenChannel": ("green_channel",),
    "urgency": ("urgency",),
    "fromHospital": ("from_hospital",),
    "fromDepartment": ("from_department",),
    "toHospital": ("to_hospital",),
    "toDepartment": ("to_department",),
    "patient": ("patient_pseudonym", "patient_sex", "patient_age"),
    "diagnosis": ("diagnosis_code", "diagnosis_name"),
    "reason": ("reason",),
    "conditionSummary": ("condition_summary",),
    "notes": ("notes",),
    "requestedDate": ("requested_date",),
    "arrivedAt": ("arrived_at",),
    "completedAt": ("completed_at",),
    "treatmentResult": ("treatment_result",),
    "dischargeSummary": ("discharge_summary",),
    "rehabAdvice": ("rehab_advice",),
    "createdAt": ("created_at",),
    "updatedAt": ("updated_at",),
    "version": ("version",),
}


@strawberry.type
class ReferralConnection(CountedConnection[Referral]):
    pass


@strawberry.input
class ReferralFilter:
    direction: Direction | None = None
    statuses: list[ReferralStatus] | None = None
    green_channel: bool | None = None
    hospital: str | None = strawberry.field(
        default=None, description="Only referrals this hospital is a party to."
    )
    since: datetime | None = None
    until: datetime | None = None


@strawberry.input
class CreateReferralInput:
    direction: Direction
    to_hospital: str
    patient: PatientInput
    diagnosis: DiagnosisInput
    reason: str
    green_channel: bool = False
    urgency: Urgency = Urgency.ROUTINE
    from_department: str | None = None
    to_department: str | None = None
    condition_summary: str | None = None
    notes: str | None = None
    requested_date: date | None = None
    discharge_summary: str | None = strawberry.field(
        default=None, description="On a downward referral, from the sending hospital."
    )
    rehab_advice: str | None = None
    idempotency_key: str | None = strawberry.field(
        default=None, description="The same key twice creates one referral (8-128 characters)."
    )


@strawberry.type
class ReferralPayload:
    referral: Referral


def _new(input: CreateReferralInput) -> referrals.NewReferral:
    return referrals.NewReferral(
        direction=referrals.Direction(input.direction.value),
        to_hospital=input.to_hospital,
        patient=referrals.PatientIn(
            input.patient.resident_id, input.patient.sex.value, input.patient.age
        ),
        diagnosis_code=input.diagnosis.code,
        diagnosis_name=input.diagnosis.name,
        reason=input.reason,
        green_channel=input.green_channel,
        urgency=input.urgency.value,
        from_department=input.from_department,
        to_department=input.to_department,
        condition_summary=input.condition_summary,
        notes=input.notes,
        requested_date=input.requested_date,
        discharge_summary=input.discharge_summary,
        rehab_advice=input.rehab_advice,
        idempotency_key=input.idempotency_key,
    )


@strawberry.type
class ReferralQueries:
    @strawberry.field(
        description="Referrals across the alliance, newest first. Parties see their "
        "own with the patient; the alliance office sees all without.",
        extensions=[FanOut()],
    )
    async def referrals(
        self,
        info: Ctx,
        filter: ReferralFilter | None = None,
        first: Annotated[int | None, strawberry.argument(description="At most 100.")] = 20,
        after: str | None = None,
    ) -> ReferralConnection | None:
        f = filter or ReferralFilter()
        query = referrals.ReferralQuery(
            directions=(f.direction.value,) if f.direction else None,
            statuses=tuple(s.value for s in f.statuses) if f.statuses else None,
            green_channel=f.green_channel,
            hospital=f.hospital,
            since=f.since,
            until=f.until,
        )
        merged = await referrals.page(
            info.context,
            query,
            first,
            after,
            with_total=selects(info, "totalCount"),
            fields=node_reads(info, READS),
        )
        return ReferralConnection(
            edges=[
                Edge(cursor=c, node=Referral.of(ReferralRecord(m, r))) for c, m, r in merged.items
            ],
            page_info=PageInfo.of_items(merged.items, merged.has_next_page),
            total=merged.total,
        )


@strawberry.type
class ReferralMutations:
    @strawberry.mutation(
        description="Refer a patient; the sending hospital is the caller's.", extensions=[FanOut()]
    )
    async def create_referral(self, info: Ctx, input: CreateReferralInput) -> ReferralPayload:
        return ReferralPayload(
            referral=Referral.of(await referrals.create(info.context, _new(input)))
        )

    @strawberry.mutation(description="The receiving hospital accepts.", extensions=[FanOut()])
    async def accept_referral(self, info: Ctx, id: strawberry.ID) -> ReferralPayload:
        record = await referrals.advance(info.context, id, referrals.Step.ACCEPT)
        return ReferralPayload(referral=Referral.of(record))

    @strawberry.mutation(
        description="The receiving hospital rejects, with a reason.", extensions=[FanOut()]
    )
    async def reject_referral(self, info: Ctx, id: strawberry.ID, reason: str) -> ReferralPayload:
        record = await referrals.advance(info.context, id, referrals.Step.REJECT, reason=reason)
        return ReferralPayload(referral=Referral.of(record))

    @strawberry.mutation(
        description="The receiving hospital records the patient's arrival.", extensions=[FanOut()]
    )
    async def record_referral_arrival(self, info: Ctx, id: strawberry.ID) -> ReferralPayload:
        record = await referrals.advance(info.context, id, referrals.Step.ARRIVE)
        return ReferralPayload(referral=Referral.of(record))

    @strawberry.mutation(
        description="Either party completes it; a downward referral needs the "
        "discharge summary and rehabilitation advice.",
        extensions=[FanOut()],
    )
    async def complete_referral(
        self,
        info: Ctx,
        id: strawberry.ID,
        treatment_result: str | None = None,
        discharge_summary: str | None = None,
        rehab_advice: str | None = None,
    ) -> ReferralPayload:
        record = await referrals.advance(
            info.context,
            id,
            referrals.Step.COMPLETE,
            treatment_result=treatment_result,
            discharge_summary=discharge_summary,
            rehab_advice=rehab_advice,
        )
        return ReferralPayload(referral=Referral.of(record))

    @strawberry.mutation(
        description="The sending hospital cancels, with a reason.", extensions=[FanOut()]
    )
    async def cancel_referral(self, info: Ctx, id: strawberry.ID, reason: str) -> ReferralPayload:
        record = await referrals.advance(info.context, id, referrals.Step.CANCEL, reason=reason)
        return ReferralPayload(referral=Referral.of(record))
