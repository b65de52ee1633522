"""The demo's FHIR hospital gets the same kind of synthetic activity as the others, written as its
integration engine would publish it: FHIR R4 resources under the published mapping
(adapters/fhir/MAPPING.md), posted in transaction Bundles: the workflow pattern's Tasks and
Appointments beside the requests, each draw's results grouped by a DiagnosticReport. Training events and placements have no
mapping (the fhir adapter does not serve them), so they are not published; recognition decisions
start empty, as in every exchange database."""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator, Sequence
from datetime import date
from typing import Any

import httpx

from adapters.fhir import mapping, workflow
from gateway.demo.activity import (
    SyntheticHospital,
    SyntheticPatient,
    activity_rows,
)

# Entries per transaction: one Bundle stays well inside the server's request limits.
CHUNK = 400
FHIR_JSON = "application/fhir+json"

# Entries that reference each other by urn:uuid and so must share a transaction.
Unit = list[dict[str, Any]]


def _entry(resource: dict[str, Any]) -> dict[str, Any]:
    return {
        "fullUrl": f"urn:uuid:{uuid.uuid4()}",
        "resource": resource,
        "request": {"method": "POST", "url": resource["resourceType"]},
    }


def _consultations(rows: dict[str, list[dict[str, Any]]]) -> list[Unit]:
    """Each consultation with its Task, its Appointment when scheduled, and its report, which
    names it by the request entry's urn:uuid (the server rewrites it to the id it assigns)."""
    reports: dict[int, list[dict[str, Any]]] = {}
    for report in rows["consultation_report"]:
        reports.setdefault(report["consultation_id"], []).append(report)
    units = []
    for row in rows["consultation"]:
        unit = workflow.create_entries(workflow.CONSULTATION, row)
        for report in reports.get(row["id"], ()):
            resource = mapping.report_resource(
                report, {**row, "id": "placeholder"}, report["issued_at"]
            )
            resource["basedOn"] = [{"reference": unit[0]["fullUrl"]}]
            unit.append(_entry(resource))
        units.append(unit)
    return units


def activity_units(rows: dict[str, list[dict[str, Any]]], code: str) -> list[Unit]:
    """Transaction entries for a hospital's activity rows, as the workflow pattern has them: each
    referral and consultation with its Task (and Appointment), each draw's results grouped by a
    DiagnosticReport, the lab's quality control."""
    return [
        *(workflow.create_entries(workflow.REFERRAL, row) for row in rows["referral"]),
        *_consultations(rows),
        *(workflow.draw_entries(draw, code) for draw in workflow.draws(rows["test_result"])),
        *([_entry(mapping.quality_control_resource(row, code))] for row in rows["quality_control"]),
    ]


def _chunks(units: list[Unit]) -> Iterator[list[dict[str, Any]]]:
    """Consecutive chunks of whole units."""
    chunk: list[dict[str, Any]] = []
    for unit in units:
        if chunk and len(chunk) + len(unit) > CHUNK:
            yield chunk
            chunk = []
        chunk.extend(unit)
    if chunk:
        yield chunk


async def has_activity(http: httpx.AsyncClient, base_url: str) -> bool:
    answer = await http.get(
        f"{base_url}/ServiceRequest", params={"_count": "1", "_summary": "count"}
    )
    answer.raise_for_status()
    return int(answer.json().get("total", 0)) > 0


async def seed_activity_fhir(
    base_url: str,
    hospital: SyntheticHospital,
    hospitals: Sequence[SyntheticHospital],
    patients: Sequence[SyntheticPatient],
    linkage_key: bytes,
    today: date,
    seed: int,
) -> dict[str, int]:
    """Publish the hospital's activity at its FHIR server: counts per resource type, {} when the
    server holds activity already (a re-run)."""
    rows = activity_rows(hospital, hospitals, patients, linkage_key, today, random.Random(seed))
    async with httpx.AsyncClient(timeout=120, headers={"Content-Type": FHIR_JSON}) as http:
        if await has_activity(http, base_url):
            return {}
        units = activity_units(rows, hospital.code)
        for chunk in _chunks(units):
            bundle = {"resourceType": "Bundle", "type": "transaction", "entry": chunk}
            answer = await http.post(base_url, json=bundle)
            if answer.status_code != 200:
                raise RuntimeError(
                    f"the demo's FHIR server refused its activity: HTTP {answer.status_code}"
                )
    counts: dict[str, int] = {}
    for entry in (e for unit in units for e in unit):
        kind = entry["resource"]["resourceType"]
        counts[kind] = counts.get(kind, 0) + 1
    return counts
