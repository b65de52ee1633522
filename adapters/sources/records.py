"""The records a member's source holds, as the gateway sees them whatever the kind of source, and
the queries the gateway pushes down. Plain data, no driver types.

Record keys are strings (`id`, and every reference to another record's key): a database row id,
a FHIR logical id or a composite key all fit. Each adapter says which keys it can have issued
(`Capabilities.key_pattern`).

Records are read-only by convention but not frozen: a frozen dataclass's __init__ costs about ten
times as much, and a page builds hundreds of records from every member."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any


@dataclass(slots=True)
class ReferralRow:
    id: str
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
class ConsultationRow:
    id: str
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
class ReportRow:
    consultation_id: str
    issued_at: datetime
    expert_name: str
    opinion: str
    signed: bool


@dataclass(slots=True)
class TrainingEventRow:
    id: str
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
class ParticipationRow:
    event_id: str
    hospital: str
    participants: int


@dataclass(slots=True)
class PlacementRow:
    id: str
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
class ResultRow:
    id: str
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
class QualityControlRow:
    loinc: str
    scheme: str
    valid_from: date
    valid_until: date


@dataclass(slots=True)
class DecisionRow:
    id: str
    result_member: str
    result_id: str
    patient_pseudonym: str
    loinc: str | None
    decided_by: str
    decision: str
    reason: str | None
    note: str | None
    retest_cost_fen: int | None
    decided_at: datetime
    version: int


@dataclass(slots=True)
class SpecialtyVolumeRow:
    """One month of the alliance's specialty at one hospital, as its HIS totals it: counts and
    totals only, no patient. `month` is the month's first day; costs are totals in fen."""

    id: str
    hospital: str
    month: date
    outpatient_visits: int
    admissions: int
    discharges: int
    discharged_bed_days: int  # 出院者占用总床日
    occupied_bed_days: int  # 实际占用总床日
    open_bed_days: int  # 实际开放总床日
    operations: int
    grade34_operations: int  # 三、四级手术
    complex_critical_cases: int  # 疑难危重病例
    outpatient_cost_fen: int
    inpatient_cost_fen: int


@dataclass(slots=True)
class SatisfactionSurveyRow:
    """A satisfaction survey's result at one hospital: how many answered, how many satisfied."""

    id: str
    hospital: str
    month: date
    population: str  # OUTPATIENT | INPATIENT | STAFF
    respondents: int
    satisfied: int


@dataclass(slots=True)
class CapacityActivityRow:
    """帮扶: capacity building one hospital gives another (staff dispatched, mentoring, a new
    technique, an on-site tour), held by the hospital that records it. Staff and titles only."""

    id: str
    kind: str  # DISPATCH | MENTORING | NEW_TECHNIQUE | ON_SITE_TOUR
    helping_hospital: str
    helped_hospital: str
    title: str
    started_on: date
    ended_on: date | None
    people: int
    created_by: str | None
    created_at: datetime
    updated_at: datetime
    version: int


@dataclass(frozen=True, slots=True)
class Bound:
    """Where a page resumes, newest first. With a key: the records strictly after (value, key) in
    the source's own order. Without one: every record at `value` too (`ties_after`), or none."""

    value: Any
    key: str | None = None
    ties_after: bool = False


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
class CapacityFilter:
    kinds: tuple[str, ...] | None = None


@dataclass(frozen=True, slots=True)
class ResultFilter:
    """One patient's results; `ListQuery.since` is the earliest `performed_at`."""

    patient_pseudonym: str
    item_codes: tuple[str, ...] | None = None


@dataclass(frozen=True, slots=True)
class ChangeRow:
    """A row of a watched table as change capture sees it: which row, which version, when, and the
    hospitals it concerns. Nothing of its content."""

    table: str
    id: str
    version: int
    updated_at: datetime
    parties: tuple[str, ...]
