"""A referral's or consultation's ServiceRequest with the FHIR workflow pattern around it, as the
entries of one transaction Bundle: the Task fulfilling it and, for a scheduled consultation, its
Appointment. The adapter, the demo's seed and its simulated hospital all write them this way, so
that the request and its Task (and Appointment) change together or not at all.

The ServiceRequest stays what the adapter reads; the Task and the Appointment are written beside
it and never read back. Neither multiplies: a create makes them conditionally on the request's
business identifier (a retry finds all three), an update replaces them conditionally on the
request they are about (`focus`, `based-on`), inside the transaction whose `ifMatch` on the
request's version guards the whole change."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from adapters.fhir import mapping

REFERRAL = "referral"
CONSULTATION = "consultation"
_TASK_CODE = f"{mapping.TASK_CODE}|{mapping.FULFIL['code']}"


def request_resource(kind: str, row: Mapping[str, Any], key: str | None = None) -> dict[str, Any]:
    if kind == REFERRAL:
        return mapping.referral_resource(row, key=key)
    return mapping.consultation_resource(row, key=key)


def _scheduled(kind: str, row: Mapping[str, Any]) -> bool:
    return kind == CONSULTATION and row.get("scheduled_at") is not None


def _post(
    resource: dict[str, Any], condition: str | None, full_url: str | None = None
) -> dict[str, Any]:
    request: dict[str, str] = {"method": "POST", "url": resource["resourceType"]}
    if condition:
        request["ifNoneExist"] = condition
    return {
        "fullUrl": full_url or f"urn:uuid:{uuid.uuid4()}",
        "resource": resource,
        "request": request,
    }


def _put(resource: dict[str, Any], url: str, if_match: str | None = None) -> dict[str, Any]:
    request = {"method": "PUT", "url": url}
    if if_match:
        request["ifMatch"] = if_match
    return {"resource": resource, "request": request}


def create_entries(
    kind: str, row: Mapping[str, Any], condition: str | None = None
) -> list[dict[str, Any]]:
    """A new request (the first entry; its fullUrl a urn:uuid later entries may reference), its
    Task and, when scheduled, its Appointment. `condition` (an identifier search the request
    and its companions all answer, as they carry its identifiers) makes each a conditional
    create, so that a retry makes none of them twice."""
    request = request_resource(kind, row)
    full_url = f"urn:uuid:{uuid.uuid4()}"
    identifiers: Sequence[Mapping[str, str]] = request.get("identifier") or ()
    modified = row.get("updated_at") or row["created_at"]
    task = mapping.workflow_task_resource(kind, row, full_url, modified, identifiers)
    entries = [_post(request, condition, full_url), _post(task, condition)]
    if _scheduled(kind, row):
        appointment = mapping.appointment_resource(row, full_url, identifiers)
        entries.append(_post(appointment, condition))
    return entries


def update_entries(
    kind: str, values: Mapping[str, Any], key: str, version: int | None, modified: datetime
) -> list[dict[str, Any]]:
    """The request `key` replaced by `values` at `version` (its ifMatch; None: unguarded), its
    Task and, when scheduled, its Appointment replaced with it: conditional updates on the
    request, so that one written before this mapping had them is given them now."""
    request = request_resource(kind, values, key=key)
    focus = f"ServiceRequest/{key}"
    identifiers: Sequence[Mapping[str, str]] = request.get("identifier") or ()
    if_match = f'W/"{version}"' if version is not None else None
    task = mapping.workflow_task_resource(kind, values, focus, modified, identifiers)
    entries = [
        _put(request, focus, if_match),
        _put(task, "Task?" + urlencode({"focus": focus, "code": _TASK_CODE})),
    ]
    if _scheduled(kind, values):
        appointment = mapping.appointment_resource(values, focus, identifiers)
        entries.append(_put(appointment, "Appointment?" + urlencode({"based-on": focus})))
    return entries


def transaction(entries: list[dict[str, Any]]) -> dict[str, Any]:
    return {"resourceType": "Bundle", "type": "transaction", "entry": entries}


def draws(rows: Sequence[Mapping[str, Any]]) -> list[list[Mapping[str, Any]]]:
    """Results grouped by draw (mapping.draw_key), in the order of each draw's first result."""
    groups: dict[tuple[str, datetime, str], list[Mapping[str, Any]]] = {}
    for row in rows:
        groups.setdefault(mapping.draw_key(row), []).append(row)
    return list(groups.values())


def draw_entries(rows: Sequence[Mapping[str, Any]], performer: str) -> list[dict[str, Any]]:
    """One draw's Observations and the DiagnosticReport grouping them, to be created together."""
    observations = [_post(mapping.result_resource(row, performer), None) for row in rows]
    report = mapping.results_report_resource(rows, [e["fullUrl"] for e in observations], performer)
    return [*observations, _post(report, None)]
