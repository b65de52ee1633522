"""Tele-consultations (远程会诊) in the public contract."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, cast

import strawberry

from resolvers import consultations
from resolvers.consultations import Consultation as ConsultationRecord
from resolvers.referrals import PatientIn
from schema.clinical import Patient, PatientInput
from schema.connections import CountedConnection, Edge, PageInfo
from schema.direct import direct, hospital
from schema.enums import Sex, Urgency
from schema.fan_out import FanOut
from schema.selection import node_reads, selects
from schema.types import Ctx, Hospital, Node

# strawberry.enum registers each class in place and returns it: the names stay types.
ConsultationKind = consultations.ConsultationKind
strawberry.enum(ConsultationKind)
ConsultationStatus = consultations.ConsultationStatus
strawberry.enum(ConsultationStatus)


@strawberry.type(description="The expert the invited hospital assigned.")
class ConsultationExpert:
    name: str
    title: str | None


@strawberry.type(description="The signed opinion report (诊疗意见报告) of the invited hospital.")
class ConsultationReport:
    issued_at: datetime
    expert_name: str
    signed: bool
    opinion: str | None = strawberry.field(description="Parties only.")


@strawberry.type(
    description="A tele-consultation (远程会诊). Its record lives at the requesting "
    "hospital; both parties read and move it here."
)
class Consultation(Node):
    record: strawberry.Private[ConsultationRecord]

    @classmethod
    def of(cls, record: ConsultationRecord) -> Consultation:
        # Plain fields, filled once: a field with a resolver costs a call per field per node.
        # Enums as the record holds them: their GraphQL types serialize the value itself, with
        # no member made per node, and a field a list did not read (None) is never serialized.
        row = record.row
        return cls(
            id=strawberry.ID(record.global_id),
            record=record,
            kind=cast(ConsultationKind, row.kind),
            status=cast(ConsultationStatus, row.status),
            status_reason=row.status_reason,
            urgency=cast(Urgency, row.urgency),
            requesting_doctor=row.requesting_doctor,
            department=row.department,
            desired_specialty=row.desired_specialty,
            desired_title=row.desired_title,
            proposed_at=row.proposed_at,
            informed_consent=row.consent_obtained,
            scheduled_at=row.scheduled_at,
            fee_fen=row.fee_fen,
            requested_at=row.created_at,
            updated_at=row.updated_at,
            version=row.version,
        )

    def _clinical(self, info: Ctx) -> bool:
        """Whether the reader sees the patient and clinical text; such a read is audited."""
        if not consultations.sees_patient(info.context, self.record):
            return False
        info.context.audit.read("consultations", [self.record.row.patient_pseudonym])
        return True

    kind: ConsultationKind
    status: ConsultationStatus
    status_reason: str | None = strawberry.field(description="Why it was declined or cancelled.")
    urgency: Urgency

    @strawberry.field(description="The inviting hospital (邀请方).")
    @direct
    def requesting_hospital(self, info: Ctx) -> Hospital:
        return hospital(info, self.record.row.requesting_hospital)

    requesting_doctor: str = strawberry.field(
        description="Stays responsible for the patient's care."
    )

    @strawberry.field(description="The invited hospital (受邀方).")
    @direct
    def invited_hospital(self, info: Ctx) -> Hospital:
        return hospital(info, self.record.row.invited_hospital)

    department: str | None

    @strawberry.field(description="Null for readers who are not a party (the alliance office).")
    @direct
    def patient(self, info: Ctx) -> Patient | None:
        if not self._clinical(info):
            return None
        row = self.record.row
        return Patient(
            pseudonym=row.patient_pseudonym, sex=Sex(row.patient_sex), age=row.patient_age
        )

    @strawberry.field(description="Reason and purpose of the consultation. Parties only.")
    @direct
    def purpose(self, info: Ctx) -> str | None:
        return self.record.row.purpose if self._clinical(info) else None

    @strawberry.field(description="Parties only.")
    @direct
    def case_summary(self, info: Ctx) -> str | None:
        return self.record.row.case_summary if self._clinical(info) else None

    @strawberry.field(
        description="References to studies in the requesting hospital's source. Parties only."
    )
    @direct
    def attached_studies(self, info: Ctx) -> list[str] | None:
        return list(self.record.row.attached_studies) if self._clinical(info) else None

    desired_specialty: str | None
    desired_title: str | None = strawberry.field(
        description="The professional title wished for the expert."
    )
    proposed_at: datetime | None
    informed_consent: bool = strawberry.field(
        description="Written informed consent (知情同意), which covers the fee."
    )

    @strawberry.field(description="Null until the invited hospital assigns one.")
    def expert(self) -> ConsultationExpert | None:
        row = self.record.row
        if row.expert_name is None:
            return None
        return ConsultationExpert(name=row.expert_name, title=row.expert_title)

    scheduled_at: datetime | None
    fee_fen: int | None = strawberry.field(
        description="Fee per case in fen (分), at the provincial price."
    )
    requested_at: datetime = strawberry.field(description="When it was requested.")

    @strawberry.field(description="Null until the report is issued.")
    @direct
    async def report(self, info: Ctx) -> ConsultationReport | None:
        found = await consultations.report(info.context, self.record)
        if found is None:
            return None
        return ConsultationReport(
            issued_at=found.issued_at,
            expert_name=found.expert_name,
            opinion=found.opinion if self._clinical(info) else None,
            signed=found.signed,
        )

    updated_at: datetime

    version: int = strawberry.field(description="Increases with every change.")


# The record fields each field of a Consultation reads, for lists to read no others; a field that
# is not here (a new one) makes a list read the whole record. A field that may show clinical
# content reads the patient's pseudonym too, for the audit. The parties are read anyway
# (resolvers.consultations.page).
_CLINICAL = "patient_pseudonym"
READS: dict[str, tuple[str, ...]] = {
    "id": ("id",),
    "kind": ("kind",),
    "status": ("status",),
    "statusReason": ("status_reason",),
    "urgency": ("urgency",),
    "requestingHospital": ("requesting_hospital",),
    "requestingDoctor": ("requesting_doctor",),
    "invitedHospital": ("invited_hospital",),
    "department": ("department",),
    "patient": (_CLINICAL, "patient_sex", "patient_age"),
    "purpose": ("purpose", _CLINICAL),
    "caseSummary": ("case_summary", _CLINICAL),
    "attachedStudies": ("attached_studies", _CLINICAL),
    "desiredSpecialty": ("desired_specialty",),
    "desiredTitle": ("desired_title",),
    "proposedAt": ("proposed_at",),
    "informedConsent": ("consent_obtained",),
    "expert": ("expert_name", "expert_title"),
    "scheduledAt": ("scheduled_at",),
    "feeFen": ("fee_fen",),
    "requestedAt": ("created_at",),
    "report": ("id", _CLINICAL),
    "updatedAt": ("updated_at",),
    "version": ("version",),
}


@strawberry.type
class ConsultationConnection(CountedConnection[Consultation]):
    pass


@strawberry.input
class ConsultationFilter:
    kind: ConsultationKind | None = None
    statuses: list[ConsultationStatus] | None = None
    hospital: str | None = strawberry.field(
        default=None, description="Only consultations this hospital is a party to."
    )
    since: datetime | None = strawberry.field(default=None, description="Requested at or after.")
    until: datetime | None = strawberry.field(default=None, description="Requested before.")


@strawberry.input
class RequestConsultationInput:
    kind: ConsultationKind
    invited_hospital: str
    patient: PatientInput
    purpose: str = strawberry.field(description="Reason and purpose of the consultation.")
    informed_consent: bool = strawberry.field(
        description="The patient's written informed consent (知情同意); must be true."
    )
    department: str | None = None
    urgency: Urgency = Urgency.ROUTINE
    case_summary: str | None = None
    attached_studies: list[str] | None = strawberry.field(
        default=None, description="References to studies in the requesting hospital's source."
    )
    desired_specialty: str | None = None
    desired_title: str | None = None
    proposed_at: datetime | None = None
    requesting_doctor: str | None = strawberry.field(
        default=None, description="Defaults to the caller's token subject."
    )
    idempotency_key: str | None = strawberry.field(
        default=None, description="The same key twice creates one consultation (8-128 characters)."
    )


@strawberry.type
class ConsultationPayload:
    consultation: Consultation


def _new(input: RequestConsultationInput) -> consultations.NewConsultation:
    return consultations.NewConsultation(
        kind=consultations.ConsultationKind(input.kind.value),
        invited_hospital=input.invited_hospital,
        patient=PatientIn(input.patient.resident_id, input.patient.sex.value, input.patient.age),
        purpose=input.purpose,
        informed_consent=input.informed_consent,
        urgency=input.urgency.value,
        department=input.department,
        case_summary=input.case_summary,
        attached_studies=tuple(input.attached_studies or ()),
        desired_specialty=input.desired_specialty,
        desired_title=input.desired_title,
        proposed_at=input.proposed_at,
        requesting_doctor=input.requesting_doctor,
        idempotency_key=input.idempotency_key,
    )


@strawberry.type
class ConsultationQueries:
    @strawberry.field(
        description="Tele-consultations across the alliance, newest first. Parties see their "
        "own with the patient; the alliance office sees all without.",
        extensions=[FanOut()],
    )
    async def consultations(
        self,
        info: Ctx,
        filter: ConsultationFilter | None = None,
        first: Annotated[int | None, strawberry.argument(description="At most 100.")] = 20,
        after: str | None = None,
    ) -> ConsultationConnection | None:
        f = filter or ConsultationFilter()
        query = consultations.ConsultationQuery(
            kinds=(f.kind.value,) if f.kind else None,
            statuses=tuple(s.value for s in f.statuses) if f.statuses else None,
            hospital=f.hospital,
            since=f.since,
            until=f.until,
        )
        merged = await consultations.page(
            info.context,
            query,
            first,
            after,
            with_total=selects(info, "totalCount"),
            fields=node_reads(info, READS),
        )
        return ConsultationConnection(
            edges=[
                Edge(cursor=c, node=Consultation.of(ConsultationRecord(m, r)))
                for c, m, r in merged.items
            ],
            page_info=PageInfo.of_items(merged.items, merged.has_next_page),
            total=merged.total,
        )


@strawberry.type
class ConsultationMutations:
    @strawberry.mutation(
        description="Request a consultation; the requesting hospital is the caller's.",
        extensions=[FanOut()],
    )
    async def request_consultation(
        self, info: Ctx, input: RequestConsultationInput
    ) -> ConsultationPayload:
        record = await consultations.request(info.context, _new(input))
        return ConsultationPayload(consultation=Consultation.of(record))

    @strawberry.mutation(
        description="The invited hospital accepts and may assign the expert.", extensions=[FanOut()]
    )
    async def accept_consultation(
        self,
        info: Ctx,
        id: strawberry.ID,
        expert_name: str | None = None,
        expert_title: str | None = None,
    ) -> ConsultationPayload:
        record = await consultations.advance(
            info.context,
            id,
            consultations.Step.ACCEPT,
            expert_name=expert_name,
            expert_title=expert_title,
        )
        return ConsultationPayload(consultation=Consultation.of(record))

    @strawberry.mutation(
        description="The invited hospital declines, with a reason.", extensions=[FanOut()]
    )
    async def decline_consultation(
        self, info: Ctx, id: strawberry.ID, reason: str
    ) -> ConsultationPayload:
        record = await consultations.advance(
            info.context, id, consultations.Step.DECLINE, reason=reason
        )
        return ConsultationPayload(consultation=Consultation.of(record))

    @strawberry.mutation(
        description="The invited hospital schedules an accepted consultation.",
        extensions=[FanOut()],
    )
    async def schedule_consultation(
        self, info: Ctx, id: strawberry.ID, scheduled_at: datetime
    ) -> ConsultationPayload:
        record = await consultations.advance(
            info.context, id, consultations.Step.SCHEDULE, scheduled_at=scheduled_at
        )
        return ConsultationPayload(consultation=Consultation.of(record))

    @strawberry.mutation(
        description="The invited hospital starts a scheduled consultation.", extensions=[FanOut()]
    )
    async def start_consultation(self, info: Ctx, id: strawberry.ID) -> ConsultationPayload:
        record = await consultations.advance(info.context, id, consultations.Step.START)
        return ConsultationPayload(consultation=Consultation.of(record))

    @strawberry.mutation(
        description="The invited hospital issues the signed opinion report; the expert defaults "
        "to the one assigned on acceptance.",
        extensions=[FanOut()],
    )
    async def issue_consultation_report(
        self, info: Ctx, id: strawberry.ID, opinion: str, expert_name: str | None = None
    ) -> ConsultationPayload:
        record = await consultations.advance(
            info.context,
            id,
            consultations.Step.REPORT,
            opinion=opinion,
            expert_name=expert_name,
        )
        return ConsultationPayload(consultation=Consultation.of(record))

    @strawberry.mutation(
        description="The requesting hospital closes a reported consultation.", extensions=[FanOut()]
    )
    async def close_consultation(self, info: Ctx, id: strawberry.ID) -> ConsultationPayload:
        record = await consultations.advance(info.context, id, consultations.Step.CLOSE)
        return ConsultationPayload(consultation=Consultation.of(record))

    @strawberry.mutation(
        description="The requesting hospital cancels, with a reason.", extensions=[FanOut()]
    )
    async def cancel_consultation(
        self, info: Ctx, id: strawberry.ID, reason: str
    ) -> ConsultationPayload:
        record = await consultations.advance(
            info.context, id, consultations.Step.CANCEL, reason=reason
        )
        return ConsultationPayload(consultation=Consultation.of(record))
