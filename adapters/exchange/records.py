"""Typed rows of an exchange database and the queries the gateway pushes down. Plain data.

Rows are read-only by convention but not frozen: a frozen dataclass's __init__ costs about ten
times as much, and a page builds hundreds of rows from every member."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from adapters.rows import FromRow


@dataclass(slots=True)
class ReferralRow(FromRow):
    id: int
    referral_no: str
    direction: str
    from_hospital: str
    from_department: str | None
    to_hospital: str
    to_department: str | None
    patient_pseudonym: str
    patient_sex: str
    patient_age: int | None
    diagnosis_code: str
    diagnosis_name: str
    reason: str
    condition_summary: str | None
    notes: str | None
    urgency: str
    green_channel: bool
    status: str
    status_reason: str | None
    requested_date: date | None
    arrived_at: datetime | None
    completed_at: datetime | None
    treatment_result: str | None
    discharge_summary: str | None
    rehab_advice: str | None
    idempotency_key: str | None
    created_by: str | None
    created_at: datetime
    updated_at: datetime
    version: int


@dataclass(slots=True)
class ConsultationRow(FromRow):
    id: int
    kind: str
    requesting_hospital: str
    requesting_doctor: str
    invited_hospital: str
    department: str | None
    patient_pseudonym: str
    patient_sex: str
    patient_age: int | None
    urgency: str
    purpose: str
    case_summary: str | None
    attached_studies: list[str]
    desired_specialty: str | None
    desired_title: str | None
    proposed_at: datetime | None
    consent_obtained: bool
    status: str
    status_reason: str | None
    expert_name: str | None
    expert_title: str | None
    scheduled_at: datetime | None
    fee_fen: int | None
    idempotency_key: str | None
    created_by: str | None
    created_at: datetime
    updated_at: datetime
    version: int


@dataclass(slots=True)
class ReportRow(FromRow):
    consultation_id: int
    issued_at: datetime
    expert_name: str
    opinion: str
    signed: bool


@dataclass(slots=True)
class TrainingEventRow(FromRow):
    id: int
    kind: str
    host_hospital: str
    mode: str
    place: str | None
    held_on: date
    topic: str
    lecturers: list[str]
    credits: Decimal | None
    created_at: datetime
    updated_at: datetime
    version: int


@dataclass(slots=True)
class ParticipationRow(FromRow):
    event_id: int
    hospital: str
    participants: int


@dataclass(slots=True)
class PlacementRow(FromRow):
    id: int
    host_hospital: str
    home_hospital: str
    trainee_name: str
    profession: str
    department: str
    supervisor: str | None
    starts_on: date
    ends_on: date
    fee_waived: bool
    evaluation: str | None
    created_at: datetime
    updated_at: datetime
    version: int


@dataclass(slots=True)
class ResultRow(FromRow):
    id: int
    patient_pseudonym: str
    item_code: str
    item_name: str
    loinc: str | None
    category: str
    value: str
    unit: str | None
    reference_range: str | None
    performed_at: datetime
    updated_at: datetime
    version: int


@dataclass(slots=True)
class QualityControlRow(FromRow):
    loinc: str
    scheme: str
    valid_from: date
    valid_until: date


@dataclass(slots=True)
class DecisionRow(FromRow):
    id: int
    result_member: str
    result_id: int
    patient_pseudonym: str
    loinc: str | None
    decided_by: str
    decision: str
    reason: str | None
    note: str | None
    retest_cost_fen: int | None
    decided_at: datetime
    version: int


@dataclass(frozen=True, slots=True)
class Bound:
    """Rows strictly after (sort value, id) in descending order: `(sort, id) < (value, id)`."""

    value: Any
    id: int


@dataclass(frozen=True, slots=True)
class ListQuery:
    """What every list pushes down: the parties the reader may see, a time window, a page."""

    parties: tuple[str, ...] | None  # None: every row (alliance office); else rows naming one
    with_party: str | None = None  # and, if set, rows that also name this hospital
    since: datetime | date | None = None
    until: datetime | date | None = None
    bound: Bound | None = None
    limit: int = 20


@dataclass(frozen=True, slots=True)
class ReferralFilter:
    directions: tuple[str, ...] | None = None
    statuses: tuple[str, ...] | None = None
    green_channel: bool | None = None


@dataclass(frozen=True, slots=True)
class ConsultationFilter:
    kinds: tuple[str, ...] | None = None
    statuses: tuple[str, ...] | None = None


@dataclass(frozen=True, slots=True)
class TrainingFilter:
    kinds: tuple[str, ...] | None = None
    modes: tuple[str, ...] | None = None


@dataclass(frozen=True, slots=True)
class ResultQuery:
    patient_pseudonym: str
    performed_since: datetime
    item_codes: tuple[str, ...] | None = None
    bound: Bound | None = None
    limit: int = 50


@dataclass(frozen=True, slots=True)
class RecognitionTally:
    """Decisions taken at one hospital in one year."""

    recognized: int = 0
    declined_by_reason: dict[str, int] = field(default_factory=dict)
    retests_avoided_cost_fen: int = 0


@dataclass(frozen=True, slots=True)
class ChangeRow:
    """A row of a watched table as change capture sees it: which row, which version, when, and the
    hospitals it concerns. Nothing of its content."""

    table: str
    id: int
    version: int
    updated_at: datetime
    parties: tuple[str, ...]
