"""Typed rows of the registry. Plain data: no Strawberry, no rules."""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import date, datetime
from typing import Any

from adapters.rows import FromRow


@dataclass(frozen=True, slots=True)
class AllianceRecord(FromRow):
    id: str
    name: str
    specialty: str
    level: str
    form: str
    lead_hospital_code: str
    lead_department: str
    discipline_leader: str
    founded_on: date
    charter_version: str
    development_plan: str | None
    filing_status: str
    filing_number: str | None
    standing: str


@dataclass(frozen=True, slots=True)
class HospitalRecord(FromRow):
    code: str
    name: str
    credit_code: str
    grade: str
    ownership: str
    type: str
    division_code: str
    contact_name: str
    contact_phone: str
    specialty_beds: int = 0
    address: str | None = None
    licence_number: str | None = None
    licence_valid_until: date | None = None
    authorised_beds: int | None = None
    open_beds: int | None = None
    staff_total: int | None = None
    medical_staff: int | None = None
    management_staff: int | None = None
    specialty_ward: str | None = None

    def as_row(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass(frozen=True, slots=True)
class MembershipRecord(FromRow):
    alliance_id: str
    hospital_code: str
    role: str
    status: str
    joined_on: date
    plaque_granted_on: date | None
    left_on: date | None
    exit_reason: str | None
    # The inclusion criterion it was admitted without (MIN_LEVEL | PUBLIC_ONLY | …), and why.
    inclusion_exception: str | None
    inclusion_exception_reason: str | None


@dataclass(frozen=True, slots=True)
class CouncilSeatRecord(FromRow):
    id: int
    role: str
    holder_name: str
    holder_title: str | None
    hospital_code: str
    since: date


@dataclass(frozen=True, slots=True)
class ResolutionRecord(FromRow):
    id: int
    number: str
    adopted_on: date
    subject: str
    summary: str


@dataclass(frozen=True, slots=True)
class ApplicationRecord(FromRow):
    id: int
    alliance_id: str
    hospital_code: str
    status: str
    submitted_at: datetime
    submitted_by: str
    reviewed_at: datetime | None
    reviewed_by: str | None
    review_note: str | None
    due_diligence: list[str]
    decided_at: datetime | None
    decided_by: str | None
    decision_note: str | None
    resolution_id: int | None
    kind: str  # JOIN | RENEWAL
    renews_agreement_id: int | None


@dataclass(frozen=True, slots=True)
class AgreementRecord(FromRow):
    id: int
    alliance_id: str
    party_a_code: str
    party_b_code: str
    application_id: int | None
    renews_id: int | None
    signed_on: date
    term_years: int
    effective_on: date
    expires_on: date
    closed_as: str | None
    closed_on: date | None
    termination_reason: str | None
    termination_note: str | None


@dataclass(frozen=True, slots=True)
class AuditRecord(FromRow):
    id: int
    occurred_at: datetime
    subject: str
    hospital_code: str | None
    roles: list[str]
    purpose: str | None
    operation: str
    action: str
    patients: list[str]
    members_asked: list[str]
    members_failed: list[str]
    outcome: str


@dataclass(frozen=True, slots=True)
class EventRecord(FromRow):
    """An envelope in the event log: what changed, never its content."""

    cursor: int
    type: str
    members: list[str]
    entity_type: str
    entity_id: str
    entity_version: int
    occurred_at: datetime
    recorded_at: datetime
    detected_by: str


@dataclass(frozen=True, slots=True)
class NewEvent:
    type: str
    members: tuple[str, ...]
    entity_type: str
    entity_id: str
    # None: the next version of this entity in the log (for records that keep none themselves).
    entity_version: int | None
    occurred_at: datetime
    detected_by: str


@dataclass(frozen=True, slots=True)
class WorkReportRecord(FromRow):
    """A half year's work report as the office keeps it; `counts` is the snapshot sent (JSON)."""

    alliance_id: str
    year: int
    half: int
    narrative: str
    narrative_by: str | None
    narrative_at: datetime | None
    status: str
    submitted_at: datetime | None
    submitted_by: str | None
    due_on: date | None
    counts: Any


# -- filing (备案): the application of seed 003 Annex 2, as the registry stood when drafted ----


@dataclass(frozen=True, slots=True)
class FiledHospital:
    code: str
    name: str
    grade: str
    type: str
    ownership: str
    division_code: str


@dataclass(frozen=True, slots=True)
class FiledAgreement:
    signed_on: date
    effective_on: date
    expires_on: date
    term_years: int
    status: str


@dataclass(frozen=True, slots=True)
class FiledMember:
    hospital: FiledHospital
    role: str
    joined_on: date
    agreement: FiledAgreement | None


@dataclass(frozen=True, slots=True)
class FiledResolution:
    number: str
    adopted_on: date
    summary: str


@dataclass(frozen=True, slots=True)
class FilingForm:
    """What the application says: the form's fields and the registry's members, agreements and
    charter at drafting. No patient data."""

    name: str
    specialty: str
    level: str
    founded_on: date
    lead_department: str
    department_head: str
    discipline_leader: str
    lead_hospital: FiledHospital
    lead_hospital_affiliation: str
    members: tuple[FiledMember, ...]
    charter_version: str
    charter_resolutions: tuple[FiledResolution, ...]
    discipline_building: str
    development_plan: str


@dataclass(frozen=True, slots=True)
class FilingApplicationRecord:
    id: int
    alliance_id: str
    attempt: int
    status: str
    municipal_opinion_required: bool
    form: FilingForm
    number: str | None
    rejection_reason: str | None
    drafted_at: datetime
    decided_at: datetime | None


@dataclass(frozen=True, slots=True)
class FilingStepRecord(FromRow):
    id: int
    application_id: int
    attempt: int
    step: str
    role: str
    subject: str
    hospital_code: str | None
    authority: str | None
    favourable: bool | None
    opinion: str | None
    at: datetime
