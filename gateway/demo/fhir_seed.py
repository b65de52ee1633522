"""The demo's FHIR hospital gets the same kind of synthetic activity as the others, written as its
integration engine would publish it: FHIR R4 resources under the published mapping
(adapters/fhir/MAPPING.md), posted in transaction Bundles. Training events and placements have no
mapping (the fhir adapter does not serve them), so they are not published; recognition decisions
start empty, as in every exchange database."""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator, Sequence
from datetime import date
from typing import Any

import httpx

from adapters.fhir import mapping
from gateway.demo.activity import (
    SyntheticHospital,
    SyntheticPatient,
    activity_rows,
)

# Entries per transaction: one Bundle stays well inside the server's request limits.
CHUNK = 400
FHIR_JSON = "application/fhir+json"


def _entry(resource: dict[str, Any], full_url: str | None = None) -> dict[str, Any]:
    return {
        "fullUrl": full_url or f"urn:uuid:{uuid.uuid4()}",
        "resource": resource,
        "request": {"method": "POST", "url": resource["resourceType"]},
    }


def activity_entries(rows: dict[str, list[dict[str, Any]]], code: str) -> list[dict[str, Any]]:
    """Transaction entries for a hospital's activity rows. A report names its consultation by the
    consultation entry's urn:uuid, which the server rewrites to the id it assigns."""
    entries = [_entry(mapping.referral_resource(row)) for row in rows["referral"]]
    consultations: dict[int, tuple[str, dict[str, Any]]] = {}
    for row in rows["consultation"]:
        full_url = f"urn:uuid:{uuid.uuid4()}"
        consultations[row["id"]] = (full_url, row)
        entries.append(_entry(mapping.consultation_resource(row), full_url))
    for report in rows["consultation_report"]:
        full_url, consultation = consultations[report["consultation_id"]]
        resource = mapping.report_resource(
            report, {**consultation, "id": "placeholder"}, report["issued_at"]
        )
        resource["basedOn"] = [{"reference": full_url}]
        entries.append(_entry(resource))
    entries.extend(_entry(mapping.result_resource(row, code)) for row in rows["test_result"])
    entries.extend(
        _entry(mapping.quality_control_resource(row, code)) for row in rows["quality_control"]
    )
    return entries


def _chunks(entries: list[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
    """Consecutive chunks, never parting a report from the consultation it is based on."""
    chunk: list[dict[str, Any]] = []
    in_chunk: set[str] = set()
    for entry in entries:
        based_on = [b["reference"] for b in entry["resource"].get("basedOn") or ()]
        if len(chunk) >= CHUNK and not any(ref in in_chunk for ref in based_on):
            yield chunk
            chunk, in_chunk = [], set()
        chunk.append(entry)
        in_chunk.add(entry["fullUrl"])
    if chunk:
        yield chunk


def _ordered(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each report right after its consultation, so that a chunk holds both."""
    reports: dict[str, list[dict[str, Any]]] = {}
    rest: list[dict[str, Any]] = []
    for entry in entries:
        based_on = entry["resource"].get("basedOn")
        if entry["resource"]["resourceType"] == "DiagnosticReport" and based_on:
            reports.setdefault(based_on[0]["reference"], []).append(entry)
        else:
            rest.append(entry)
    ordered: list[dict[str, Any]] = []
    for entry in rest:
        ordered.append(entry)
        ordered.extend(reports.pop(entry["fullUrl"], ()))
    return ordered


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
        entries = _ordered(activity_entries(rows, hospital.code))
        for chunk in _chunks(entries):
            bundle = {"resourceType": "Bundle", "type": "transaction", "entry": chunk}
            answer = await http.post(base_url, json=bundle)
            if answer.status_code != 200:
                raise RuntimeError(
                    f"the demo's FHIR server refused its activity: HTTP {answer.status_code}"
                )
    counts: dict[str, int] = {}
    for entry in entries:
        kind = entry["resource"]["resourceType"]
        counts[kind] = counts.get(kind, 0) + 1
    return counts
