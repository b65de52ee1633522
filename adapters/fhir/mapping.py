"""Our records as FHIR R4 resources and back: the published mapping (MAPPING.md) in code.

A referral is a ServiceRequest (category: referral), a test result an Observation. The patient is
only ever the alliance pseudonym, as a logical reference `subject.identifier` with the alliance's
system: never a resident ID, never a name. Hospitals are Organization identifiers with the
alliance's hospital-code system. Searchable facts FHIR has no search parameter for (the alliance
workflow status, direction, green channel, the hospitals a referral concerns) are `meta.tag`
codings, so that `_tag` pushes them down."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from adapters.sources.records import (
    ConsultationRow,
    DecisionRow,
    QualityControlRow,
    ReferralRow,
    ReportRow,
    ResultRow,
)

SYSTEM = "https://alliance-gateway.org/fhir"
HOSPITAL = f"{SYSTEM}/hospital-code"
PSEUDONYM = f"{SYSTEM}/patient-pseudonym"
REFERRAL_NO = f"{SYSTEM}/referral-number"
IDEMPOTENCY = f"{SYSTEM}/idempotency-key"
STATUS = f"{SYSTEM}/referral-status"
DIRECTION = f"{SYSTEM}/referral-direction"
GREEN = f"{SYSTEM}/green-channel"
PARTY = f"{SYSTEM}/party"
ITEM = f"{SYSTEM}/item-code"
RESULT_CATEGORY = f"{SYSTEM}/result-category"
QUALITY_CONTROL = f"{SYSTEM}/quality-control"
TASK_TYPE = f"{SYSTEM}/task-type"  # a recognition decision's Task: code "recognition-decision"
DECISION = f"{SYSTEM}/recognition-decision"  # RECOGNIZED | DECLINED
DECLINE_REASON = f"{SYSTEM}/decline-reason"  # CONDITION_CHANGED, EMERGENCY, …
# The FHIR workflow pattern's Task that fulfils a referral or consultation ServiceRequest.
TASK_CODE = "http://hl7.org/fhir/CodeSystem/task-code"
FULFIL = {"system": TASK_CODE, "code": "fulfill", "display": "Fulfill the focal request"}
PARTICIPATION = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"
SECTION = "http://terminology.hl7.org/CodeSystem/v2-0074"  # DiagnosticReport.category
LOINC = "http://loinc.org"
ICD10 = "http://hl7.org/fhir/sid/icd-10"
SNOMED = "http://snomed.info/sct"
REFERRAL_CATEGORY = {"system": SNOMED, "code": "3457005", "display": "Patient referral"}
CONSULTATION_CATEGORY = {"system": SNOMED, "code": "11429006", "display": "Consultation"}
CONSULTATION_STATUS = f"{SYSTEM}/consultation-status"
CONSULTATION_KIND = f"{SYSTEM}/consultation-kind"
REPORT_TYPE = f"{SYSTEM}/report-type"  # a consultation's signed opinion: "consultation-opinion"
CONSULTATION_STATUSES = (
    "REQUESTED",
    "ACCEPTED",
    "DECLINED",
    "SCHEDULED",
    "IN_PROGRESS",
    "REPORTED",
    "CLOSED",
    "CANCELLED",
)
CONSULTATION_KINDS = (
    "REMOTE_CONSULTATION",
    "MDT",
    "REMOTE_IMAGING",
    "REMOTE_ECG",
    "REMOTE_PATHOLOGY",
    "ON_SITE",
)

STATUSES = ("INITIATED", "ACCEPTED", "REJECTED", "ARRIVED", "COMPLETED", "CANCELLED")
DIRECTIONS = ("UP", "DOWN")
URGENCIES = {"ROUTINE": "routine", "URGENT": "urgent", "EMERGENCY": "stat"}
SEXES = {"MALE": "male", "FEMALE": "female", "UNKNOWN": "unknown"}
_FHIR_STATUS = {"COMPLETED": "completed", "REJECTED": "revoked", "CANCELLED": "revoked"}

# Referral fields kept as extensions (no ServiceRequest element holds them as they are).
_TEXT_EXTENSIONS = (
    "from_department",
    "to_department",
    "condition_summary",
    "status_reason",
    "treatment_result",
    "discharge_summary",
    "rehab_advice",
    "created_by",
)
_INSTANT_EXTENSIONS = ("arrived_at", "completed_at")


def ext(name: str) -> str:
    return f"{SYSTEM}/StructureDefinition/{name.replace('_', '-')}"


def instant(at: datetime) -> str:
    """A dateTime to the microsecond, in UTC (the instant survives the trip)."""
    return at.astimezone(UTC).isoformat()


def parse_instant(text: str) -> datetime:
    at = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)


def hospital(code: str) -> dict[str, Any]:
    return {"type": "Organization", "identifier": {"system": HOSPITAL, "value": code}}


def patient(pseudonym: str) -> dict[str, Any]:
    return {"type": "Patient", "identifier": {"system": PSEUDONYM, "value": pseudonym}}


def tag(system: str, code: str) -> dict[str, str]:
    return {"system": system, "code": code}


def version_of(resource: Mapping[str, Any]) -> tuple[int, datetime]:
    meta = resource.get("meta") or {}
    return int(meta.get("versionId", "1")), parse_instant(str(meta["lastUpdated"]))


# -- referral ↔ ServiceRequest --------------------------------------------------------------------


def referral_resource(row: Mapping[str, Any], *, key: str | None = None) -> dict[str, Any]:
    """`row` holds every field of a ReferralRow but the version and update time."""
    identifiers = [{"system": REFERRAL_NO, "value": row["referral_no"]}]
    if row.get("idempotency_key"):
        identifiers.append({"system": IDEMPOTENCY, "value": row["idempotency_key"]})
    extensions: list[dict[str, Any]] = [
        {"url": ext("patient_sex"), "valueCode": row["patient_sex"]},
        {"url": ext("urgency"), "valueCode": row["urgency"]},
    ]
    if row.get("patient_age") is not None:
        extensions.append({"url": ext("patient_age"), "valueInteger": int(row["patient_age"])})
    for name in _TEXT_EXTENSIONS:
        if row.get(name) is not None:
            extensions.append({"url": ext(name), "valueString": str(row[name])})
    for name in _INSTANT_EXTENSIONS:
        if row.get(name) is not None:
            extensions.append({"url": ext(name), "valueDateTime": instant(row[name])})
    parties = sorted({row["from_hospital"], row["to_hospital"]})
    resource: dict[str, Any] = {
        "resourceType": "ServiceRequest",
        "meta": {
            "tag": [
                tag(STATUS, row["status"]),
                tag(DIRECTION, row["direction"]),
                tag(GREEN, "true" if row["green_channel"] else "false"),
                *(tag(PARTY, p) for p in parties),
            ]
        },
        "extension": extensions,
        "identifier": identifiers,
        "status": _FHIR_STATUS.get(row["status"], "active"),
        "intent": "order",
        "category": [{"coding": [REFERRAL_CATEGORY]}],
        "priority": URGENCIES[row["urgency"]],
        "subject": patient(row["patient_pseudonym"]),
        "authoredOn": instant(row["created_at"]),
        "requester": hospital(row["from_hospital"]),
        "performer": [hospital(row["to_hospital"])],
        "reasonCode": [
            {
                "coding": [
                    {
                        "system": ICD10,
                        "code": row["diagnosis_code"],
                        "display": row["diagnosis_name"],
                    }
                ],
                "text": row["reason"],
            }
        ],
    }
    if row.get("requested_date") is not None:
        resource["occurrenceDateTime"] = row["requested_date"].isoformat()
    if row.get("notes") is not None:
        resource["note"] = [{"text": row["notes"]}]
    if key is not None:
        resource["id"] = key
    return resource


class Malformed(ValueError):
    """A resource that does not follow the published mapping."""


def _extensions(resource: Mapping[str, Any]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for e in resource.get("extension") or ():
        url = e.get("url", "")
        if not url.startswith(f"{SYSTEM}/StructureDefinition/"):
            continue
        name = url.rsplit("/", 1)[1].replace("-", "_")
        value = next((v for k, v in e.items() if k.startswith("value")), None)
        found[name] = value
    return found


def _tags(resource: Mapping[str, Any]) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for t in (resource.get("meta") or {}).get("tag") or ():
        found.setdefault(t.get("system", ""), []).append(t.get("code", ""))
    return found


def _identifier(identifiers: Any, system: str) -> str | None:
    for i in identifiers or ():
        if i.get("system") == system:
            return str(i.get("value"))
    return None


def _org(reference: Any) -> str:
    value = ((reference or {}).get("identifier") or {}).get("value")
    if not isinstance(value, str):
        raise Malformed("organisation")
    return value


def referral_row(resource: Mapping[str, Any]) -> ReferralRow:
    try:
        e, tags = _extensions(resource), _tags(resource)
        version, updated_at = version_of(resource)
        reason = (resource.get("reasonCode") or [{}])[0]
        diagnosis = (reason.get("coding") or [{}])[0]
        performers = resource.get("performer") or [{}]
        notes = resource.get("note") or []
        requested = resource.get("occurrenceDateTime")
        age = e.get("patient_age")
        return ReferralRow(
            id=str(resource["id"]),
            referral_no=str(_identifier(resource.get("identifier"), REFERRAL_NO)),
            direction=tags[DIRECTION][0],
            from_hospital=_org(resource.get("requester")),
            from_department=e.get("from_department"),
            to_hospital=_org(performers[0]),
            to_department=e.get("to_department"),
            patient_pseudonym=str(resource["subject"]["identifier"]["value"]),
            patient_sex=str(e.get("patient_sex", "UNKNOWN")),
            patient_age=int(age) if age is not None else None,
            diagnosis_code=str(diagnosis["code"]),
            diagnosis_name=str(diagnosis.get("display", "")),
            reason=str(reason.get("text", "")),
            condition_summary=e.get("condition_summary"),
            notes=notes[0].get("text") if notes else None,
            urgency=str(e.get("urgency", "ROUTINE")),
            green_channel=tags.get(GREEN, ["false"])[0] == "true",
            status=tags[STATUS][0],
            status_reason=e.get("status_reason"),
            requested_date=date.fromisoformat(requested[:10]) if requested else None,
            arrived_at=parse_instant(e["arrived_at"]) if e.get("arrived_at") else None,
            completed_at=parse_instant(e["completed_at"]) if e.get("completed_at") else None,
            treatment_result=e.get("treatment_result"),
            discharge_summary=e.get("discharge_summary"),
            rehab_advice=e.get("rehab_advice"),
            idempotency_key=_identifier(resource.get("identifier"), IDEMPOTENCY),
            created_by=e.get("created_by"),
            created_at=parse_instant(str(resource["authoredOn"])),
            updated_at=updated_at,
            version=version,
        )
    except (KeyError, IndexError, TypeError, ValueError, AttributeError) as error:
        raise Malformed("ServiceRequest") from error


def row_values(row: ReferralRow | ConsultationRow) -> dict[str, Any]:
    """A request's record as the mapping's writers take it: its fields by name."""
    return {name: getattr(row, name) for name in row.__dataclass_fields__}


# -- test result ↔ Observation ---------------------------------------------------------------------


def _number(text: str) -> Decimal | None:
    """The value as a JSON number when it reads back as the same text, else None."""
    try:
        number = Decimal(text)
    except InvalidOperation:
        return None
    if not number.is_finite() or str(number) != text:
        return None
    return number


def result_resource(row: Mapping[str, Any], performer: str) -> dict[str, Any]:
    coding = [{"system": ITEM, "code": row["item_code"], "display": row["item_name"]}]
    if row.get("loinc"):
        coding.insert(0, {"system": LOINC, "code": row["loinc"]})
    resource: dict[str, Any] = {
        "resourceType": "Observation",
        "status": "final",
        "category": [{"coding": [{"system": RESULT_CATEGORY, "code": row["category"]}]}],
        "code": {"coding": coding, "text": row["item_name"]},
        "subject": patient(row["patient_pseudonym"]),
        "effectiveDateTime": instant(row["performed_at"]),
        "performer": [hospital(performer)],
    }
    number = _number(str(row["value"]))
    if number is not None and row.get("unit"):
        resource["valueQuantity"] = {"value": float(number), "unit": row["unit"]}
        resource["extension"] = [{"url": ext("value_text"), "valueString": str(row["value"])}]
    else:
        resource["valueString"] = str(row["value"])
        if row.get("unit"):
            resource["extension"] = [{"url": ext("unit"), "valueString": row["unit"]}]
    if row.get("reference_range"):
        resource["referenceRange"] = [{"text": row["reference_range"]}]
    return resource


def result_row(resource: Mapping[str, Any]) -> ResultRow:
    try:
        e = _extensions(resource)
        version, updated_at = version_of(resource)
        codings = resource["code"]["coding"]
        item = next(c for c in codings if c.get("system") == ITEM)
        loinc = next((c["code"] for c in codings if c.get("system") == LOINC), None)
        category = resource["category"][0]["coding"][0]["code"]
        quantity = resource.get("valueQuantity")
        if quantity is not None:
            value = str(e.get("value_text") or quantity["value"])
            unit = quantity.get("unit")
        else:
            value = str(resource["valueString"])
            unit = e.get("unit")
        ranges = resource.get("referenceRange") or []
        return ResultRow(
            id=str(resource["id"]),
            patient_pseudonym=str(resource["subject"]["identifier"]["value"]),
            item_code=str(item["code"]),
            item_name=str(item.get("display") or resource["code"].get("text", "")),
            loinc=loinc,
            category=str(category),
            value=value,
            unit=unit,
            reference_range=ranges[0].get("text") if ranges else None,
            performed_at=parse_instant(str(resource["effectiveDateTime"])),
            updated_at=updated_at,
            version=version,
        )
    except (KeyError, IndexError, TypeError, ValueError, StopIteration) as error:
        raise Malformed("Observation") from error


# -- quality control ↔ Observation (category A/quality-control EQA) ---------------------------------


def quality_control_resource(row: Mapping[str, Any], lab: str) -> dict[str, Any]:
    """The lab's valid external quality assessment (室间质评) for one LOINC item: an Observation
    about the lab (no subject), what was assessed in `code`, the scheme in `method`, the validity
    in `effectivePeriod` (dates, inclusive), the outcome `valueCodeableConcept` passed."""
    return {
        "resourceType": "Observation",
        "status": "final",
        "category": [{"coding": [{"system": QUALITY_CONTROL, "code": "EQA"}]}],
        "code": {"coding": [{"system": LOINC, "code": row["loinc"]}]},
        "method": {"text": row["scheme"]},
        "effectivePeriod": {
            "start": row["valid_from"].isoformat(),
            "end": row["valid_until"].isoformat(),
        },
        "performer": [hospital(lab)],
        "valueCodeableConcept": {"coding": [{"system": QUALITY_CONTROL, "code": "passed"}]},
    }


def quality_control_row(resource: Mapping[str, Any]) -> QualityControlRow:
    try:
        loinc = next(c["code"] for c in resource["code"]["coding"] if c.get("system") == LOINC)
        period = resource["effectivePeriod"]
        return QualityControlRow(
            loinc=str(loinc),
            scheme=str(resource["method"]["text"]),
            valid_from=date.fromisoformat(str(period["start"])[:10]),
            valid_until=date.fromisoformat(str(period["end"])[:10]),
        )
    except (KeyError, IndexError, TypeError, ValueError, StopIteration) as error:
        raise Malformed("Observation") from error


# -- recognition decision ↔ Task (code A/task-type recognition-decision) ----------------------------


def result_system(member: str) -> str:
    """The identifier system of the results held by `member` (its logical ids, as the gateway
    knows them): a decision names the result it is about by this, whatever kind of source holds
    it."""
    return f"{SYSTEM}/result/{member}"


def decision_resource(row: Mapping[str, Any], decider: str) -> dict[str, Any]:
    extensions: list[dict[str, Any]] = [
        {"url": ext("decided_by"), "valueString": str(row["decided_by"])}
    ]
    if row.get("loinc"):
        extensions.append({"url": ext("loinc"), "valueCode": str(row["loinc"])})
    if row.get("retest_cost_fen") is not None:
        extensions.append(
            {"url": ext("retest_cost_fen"), "valueInteger": int(row["retest_cost_fen"])}
        )
    resource: dict[str, Any] = {
        "resourceType": "Task",
        "extension": extensions,
        "status": "completed",
        "intent": "order",
        "code": {"coding": [{"system": TASK_TYPE, "code": "recognition-decision"}]},
        "focus": {
            "type": "Observation",
            "identifier": {
                "system": result_system(row["result_member"]),
                "value": row["result_id"],
            },
        },
        "for": patient(row["patient_pseudonym"]),
        "authoredOn": instant(row["decided_at"]),
        "owner": hospital(decider),
        "businessStatus": {"coding": [{"system": DECISION, "code": row["decision"]}]},
    }
    if row.get("reason"):
        resource["statusReason"] = {"coding": [{"system": DECLINE_REASON, "code": row["reason"]}]}
    if row.get("note"):
        resource["note"] = [{"text": row["note"]}]
    return resource


def decision_row(resource: Mapping[str, Any]) -> DecisionRow:
    try:
        e = _extensions(resource)
        version, _ = version_of(resource)
        focus = resource["focus"]["identifier"]
        system = str(focus["system"])
        if not system.startswith(f"{SYSTEM}/result/"):
            raise Malformed("Task.focus")
        reason = resource.get("statusReason")
        notes = resource.get("note") or []
        cost = e.get("retest_cost_fen")
        return DecisionRow(
            id=str(resource["id"]),
            result_member=system.rsplit("/", 1)[1],
            result_id=str(focus["value"]),
            patient_pseudonym=str(resource["for"]["identifier"]["value"]),
            loinc=e.get("loinc"),
            decided_by=str(e["decided_by"]),
            decision=str(resource["businessStatus"]["coding"][0]["code"]),
            reason=str(reason["coding"][0]["code"]) if reason else None,
            note=notes[0].get("text") if notes else None,
            retest_cost_fen=int(cost) if cost is not None else None,
            decided_at=parse_instant(str(resource["authoredOn"])),
            version=version,
        )
    except (KeyError, IndexError, TypeError, ValueError) as error:
        raise Malformed("Task") from error


# -- consultation ↔ ServiceRequest (category consultation); its report ↔ DiagnosticReport -----------

_CONSULTATION_TEXT = (
    "requesting_doctor",
    "department",
    "case_summary",
    "desired_specialty",
    "desired_title",
    "status_reason",
    "expert_name",
    "expert_title",
    "created_by",
)
_CONSULTATION_FHIR_STATUS = {
    "REPORTED": "completed",
    "CLOSED": "completed",
    "DECLINED": "revoked",
    "CANCELLED": "revoked",
}


def consultation_resource(row: Mapping[str, Any], *, key: str | None = None) -> dict[str, Any]:
    extensions: list[dict[str, Any]] = [
        {"url": ext("patient_sex"), "valueCode": row["patient_sex"]},
        {"url": ext("urgency"), "valueCode": row["urgency"]},
        {"url": ext("consent_obtained"), "valueBoolean": bool(row["consent_obtained"])},
    ]
    if row.get("patient_age") is not None:
        extensions.append({"url": ext("patient_age"), "valueInteger": int(row["patient_age"])})
    if row.get("fee_fen") is not None:
        extensions.append({"url": ext("fee_fen"), "valueInteger": int(row["fee_fen"])})
    for name in _CONSULTATION_TEXT:
        if row.get(name) is not None:
            extensions.append({"url": ext(name), "valueString": str(row[name])})
    if row.get("proposed_at") is not None:
        extensions.append({"url": ext("proposed_at"), "valueDateTime": instant(row["proposed_at"])})
    for study in row.get("attached_studies") or ():
        extensions.append({"url": ext("attached_study"), "valueString": str(study)})
    parties = sorted({row["requesting_hospital"], row["invited_hospital"]})
    resource: dict[str, Any] = {
        "resourceType": "ServiceRequest",
        "meta": {
            "tag": [
                tag(CONSULTATION_STATUS, row["status"]),
                tag(CONSULTATION_KIND, row["kind"]),
                *(tag(PARTY, p) for p in parties),
            ]
        },
        "extension": extensions,
        "status": _CONSULTATION_FHIR_STATUS.get(row["status"], "active"),
        "intent": "order",
        "category": [{"coding": [CONSULTATION_CATEGORY]}],
        "priority": URGENCIES[row["urgency"]],
        "subject": patient(row["patient_pseudonym"]),
        "authoredOn": instant(row["created_at"]),
        "requester": hospital(row["requesting_hospital"]),
        "performer": [hospital(row["invited_hospital"])],
        "reasonCode": [{"text": row["purpose"]}],
    }
    if row.get("idempotency_key"):
        resource["identifier"] = [{"system": IDEMPOTENCY, "value": row["idempotency_key"]}]
    if row.get("scheduled_at") is not None:
        resource["occurrenceDateTime"] = instant(row["scheduled_at"])
    if key is not None:
        resource["id"] = key
    return resource


def consultation_row(resource: Mapping[str, Any]) -> ConsultationRow:
    try:
        e, tags = _extensions(resource), _tags(resource)
        version, updated_at = version_of(resource)
        studies = [
            str(x.get("valueString"))
            for x in resource.get("extension") or ()
            if x.get("url") == ext("attached_study")
        ]
        scheduled = resource.get("occurrenceDateTime")
        age, fee = e.get("patient_age"), e.get("fee_fen")
        return ConsultationRow(
            id=str(resource["id"]),
            kind=tags[CONSULTATION_KIND][0],
            requesting_hospital=_org(resource.get("requester")),
            requesting_doctor=str(e["requesting_doctor"]),
            invited_hospital=_org((resource.get("performer") or [{}])[0]),
            department=e.get("department"),
            patient_pseudonym=str(resource["subject"]["identifier"]["value"]),
            patient_sex=str(e.get("patient_sex", "UNKNOWN")),
            patient_age=int(age) if age is not None else None,
            urgency=str(e.get("urgency", "ROUTINE")),
            purpose=str(resource["reasonCode"][0]["text"]),
            case_summary=e.get("case_summary"),
            attached_studies=studies,
            desired_specialty=e.get("desired_specialty"),
            desired_title=e.get("desired_title"),
            proposed_at=parse_instant(e["proposed_at"]) if e.get("proposed_at") else None,
            consent_obtained=bool(e.get("consent_obtained")),
            status=tags[CONSULTATION_STATUS][0],
            status_reason=e.get("status_reason"),
            expert_name=e.get("expert_name"),
            expert_title=e.get("expert_title"),
            scheduled_at=parse_instant(scheduled) if scheduled else None,
            fee_fen=int(fee) if fee is not None else None,
            idempotency_key=_identifier(resource.get("identifier"), IDEMPOTENCY),
            created_by=e.get("created_by"),
            created_at=parse_instant(str(resource["authoredOn"])),
            updated_at=updated_at,
            version=version,
        )
    except (KeyError, IndexError, TypeError, ValueError, AttributeError) as error:
        raise Malformed("ServiceRequest") from error


def report_resource(
    row: Mapping[str, Any], consultation: Mapping[str, Any], issued: datetime
) -> dict[str, Any]:
    """The signed opinion of a consultation, based on its ServiceRequest; tagged with the
    consultation's hospitals (change capture names them)."""
    parties = sorted({consultation["requesting_hospital"], consultation["invited_hospital"]})
    return {
        "resourceType": "DiagnosticReport",
        "meta": {"tag": [tag(PARTY, p) for p in parties]},
        "extension": [{"url": ext("signed"), "valueBoolean": bool(row.get("signed", True))}],
        "basedOn": [{"reference": f"ServiceRequest/{consultation['id']}"}],
        "status": "final",
        "code": {"coding": [{"system": REPORT_TYPE, "code": "consultation-opinion"}]},
        "subject": patient(consultation["patient_pseudonym"]),
        "issued": instant(row.get("issued_at") or issued),
        "performer": [hospital(consultation["invited_hospital"])],
        "resultsInterpreter": [{"display": row["expert_name"]}],
        "conclusion": row["opinion"],
    }


def report_row(resource: Mapping[str, Any]) -> ReportRow:
    try:
        based_on = str(resource["basedOn"][0]["reference"])
        if not based_on.startswith("ServiceRequest/"):
            raise Malformed("DiagnosticReport.basedOn")
        return ReportRow(
            consultation_id=based_on.split("/", 1)[1],
            issued_at=parse_instant(str(resource["issued"])),
            expert_name=str(resource["resultsInterpreter"][0]["display"]),
            opinion=str(resource["conclusion"]),
            signed=bool(_extensions(resource).get("signed", True)),
        )
    except (KeyError, IndexError, TypeError, ValueError) as error:
        raise Malformed("DiagnosticReport") from error


# -- the workflow pattern: a Task fulfilling the ServiceRequest, an Appointment for its schedule ----


@dataclass(frozen=True, slots=True)
class _Workflow:
    """Where a referral's or a consultation's Task finds its facts."""

    status_system: str
    requester: str
    owner: str
    task_status: Mapping[str, str]


# The alliance's status as the workflow pattern's Task.status; the exact one is businessStatus.
_WORKFLOWS = {
    "referral": _Workflow(
        STATUS,
        "from_hospital",
        "to_hospital",
        {
            "INITIATED": "requested",
            "ACCEPTED": "accepted",
            "REJECTED": "rejected",
            "ARRIVED": "in-progress",
            "COMPLETED": "completed",
            "CANCELLED": "cancelled",
        },
    ),
    "consultation": _Workflow(
        CONSULTATION_STATUS,
        "requesting_hospital",
        "invited_hospital",
        {
            "REQUESTED": "requested",
            "ACCEPTED": "accepted",
            "DECLINED": "rejected",
            "SCHEDULED": "accepted",
            "IN_PROGRESS": "in-progress",
            "REPORTED": "completed",
            "CLOSED": "completed",
            "CANCELLED": "cancelled",
        },
    ),
}
_APPOINTMENT_STATUS = {
    "DECLINED": "cancelled",
    "CANCELLED": "cancelled",
    "IN_PROGRESS": "checked-in",
    "REPORTED": "fulfilled",
    "CLOSED": "fulfilled",
}
# R4 wants an end with a start (app-2, app-3); the alliance records no duration, so a booked
# consultation takes a nominal half hour.
SLOT = timedelta(minutes=30)


def task_status(kind: str, status: str) -> str:
    return _WORKFLOWS[kind].task_status[status]


def workflow_task_resource(
    kind: str,
    row: Mapping[str, Any],
    focus: str,
    modified: datetime,
    identifiers: Sequence[Mapping[str, str]] = (),
) -> dict[str, Any]:
    """The Task fulfilling a referral's or consultation's ServiceRequest (`focus`, a reference):
    its status per the workflow pattern, the alliance's own in businessStatus. It carries the
    request's business identifiers, so that a retried create finds it as it finds the request."""
    w = _WORKFLOWS[kind]
    resource: dict[str, Any] = {
        "resourceType": "Task",
        "status": w.task_status[row["status"]],
        "businessStatus": {"coding": [{"system": w.status_system, "code": row["status"]}]},
        "intent": "order",
        "code": {"coding": [FULFIL]},
        "focus": {"reference": focus},
        "basedOn": [{"reference": focus}],
        "for": patient(row["patient_pseudonym"]),
        "authoredOn": instant(row["created_at"]),
        "lastModified": instant(modified),
        "requester": hospital(row[w.requester]),
        "owner": hospital(row[w.owner]),
    }
    if identifiers:
        resource["identifier"] = [dict(i) for i in identifiers]
    if row.get("status_reason"):
        resource["statusReason"] = {"text": str(row["status_reason"])}
    return resource


def _participant(role: str, code: str, status: str) -> dict[str, Any]:
    # R4 allows no Organization as Appointment.participant.actor: the hospital is named by its
    # Organization identifier alone, with no `type` a validator would refuse.
    return {
        "type": [{"coding": [{"system": PARTICIPATION, "code": role}]}],
        "actor": {"identifier": {"system": HOSPITAL, "value": code}},
        "required": "required",
        "status": status,
    }


def appointment_resource(
    row: Mapping[str, Any], focus: str, identifiers: Sequence[Mapping[str, str]] = ()
) -> dict[str, Any]:
    """A scheduled consultation's Appointment, based on its ServiceRequest: the two hospitals
    take part (the requester refers, the invited one consults); the patient is not named."""
    start: datetime = row["scheduled_at"]
    invited = "declined" if row["status"] == "DECLINED" else "accepted"
    resource: dict[str, Any] = {
        "resourceType": "Appointment",
        "status": _APPOINTMENT_STATUS.get(row["status"], "booked"),
        "basedOn": [{"reference": focus}],
        "start": instant(start),
        "end": instant(start + SLOT),
        "minutesDuration": int(SLOT.total_seconds() // 60),
        "participant": [
            _participant("REF", row["requesting_hospital"], "accepted"),
            _participant("CON", row["invited_hospital"], invited),
        ],
    }
    if identifiers:
        resource["identifier"] = [dict(i) for i in identifiers]
    return resource


# -- results of one draw grouped by a DiagnosticReport --------------------------------------------

_ECG = "11524-6"  # an examination that is not imaging


def draw_key(row: Mapping[str, Any]) -> tuple[str, datetime, str]:
    """Results drawn or performed together: the same patient, the same time, the same category."""
    return (str(row["patient_pseudonym"]), row["performed_at"], str(row["category"]))


def results_report_resource(
    rows: Sequence[Mapping[str, Any]], results: Sequence[str], performer: str
) -> dict[str, Any]:
    """The DiagnosticReport grouping one draw's Observations (`results`, references): laboratory
    (v2-0074 LAB) or an examination (RAD, EC for an ECG). The results are read from their
    Observations; the report only groups them."""
    first = rows[0]
    lab = first["category"] == "LAB"
    section = "LAB" if lab else ("EC" if first.get("loinc") == _ECG else "RAD")
    return {
        "resourceType": "DiagnosticReport",
        "status": "final",
        "category": [
            {
                "coding": [
                    {"system": SECTION, "code": section},
                    {"system": RESULT_CATEGORY, "code": first["category"]},
                ]
            }
        ],
        "code": {
            "coding": [{"system": REPORT_TYPE, "code": "lab-results" if lab else "exam-results"}],
            "text": "检验报告" if lab else "检查报告",
        },
        "subject": patient(first["patient_pseudonym"]),
        "effectiveDateTime": instant(first["performed_at"]),
        "performer": [hospital(performer)],
        "result": [{"reference": r} for r in results],
    }
