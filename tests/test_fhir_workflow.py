"""The FHIR workflow pattern around the adapter's records, against a real FHIR R4 server
(sekmet-fhir, started by the test): a referral's or consultation's ServiceRequest has exactly one
Task carrying its workflow status, written in the same transaction as every change of it; a
scheduled consultation has one Appointment that follows its status; a stale version is still a
clean None that leaves them as they were; a retried create makes none of them twice; one draw's
results are grouped by a DiagnosticReport while the adapter reads results from the Observations;
and none of these writes is a change event of its own."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from adapters.fhir import mapping, workflow
from adapters.fhir.changes import FhirChangeFeed
from adapters.fhir.source import FhirSource
from adapters.sources import port
from adapters.sources.errors import SourceError, SourceErrorCode
from adapters.sources.port import Children, CreateRequest, PageRequest, UpdateRequest
from adapters.sources.records import ChangeRow, ListQuery, ResultFilter
from tests.fhir_server import FhirServer
from tests.fhir_server import fhir_server as fhir_server

MEMBER = "SITE"
PSEUDONYM = "ab" * 32


def referral(number: str, **values: Any) -> dict[str, Any]:
    return {
        "referral_no": number,
        "direction": "UP",
        "from_hospital": MEMBER,
        "to_hospital": "LYZG",
        "patient_pseudonym": PSEUDONYM,
        "patient_sex": "FEMALE",
        "patient_age": 70,
        "diagnosis_code": "S72.001",
        "diagnosis_name": "股骨颈骨折",
        "reason": "需手术治疗",
        **values,
    }


def consultation(**values: Any) -> dict[str, Any]:
    return {
        "kind": "REMOTE_IMAGING",
        "requesting_hospital": MEMBER,
        "requesting_doctor": "王医生",
        "invited_hospital": "LYZG",
        "patient_pseudonym": PSEUDONYM,
        "patient_sex": "MALE",
        "patient_age": 55,
        "purpose": "明确诊断",
        "attached_studies": ["CT-1"],
        "consent_obtained": True,
        **values,
    }


@pytest.fixture
async def source(fhir_server: FhirServer) -> AsyncIterator[FhirSource]:
    adapter = FhirSource(MEMBER, fhir_server.base_url, timeout_seconds=5.0)
    yield adapter
    await adapter.close()


@pytest.fixture
async def feed(source: FhirSource) -> AsyncIterator[FhirChangeFeed]:
    changes = source.change_feed()
    await changes.connect(lambda: None)
    yield changes
    await changes.close()


async def search(server: FhirServer, resource: str, **params: str) -> list[dict[str, Any]]:
    """What the hospital's own systems see on their server."""
    async with httpx.AsyncClient(timeout=10) as http:
        answer = await http.get(f"{server.base_url}/{resource}", params=params)
    assert answer.status_code == 200, answer.text
    return [e["resource"] for e in answer.json().get("entry") or ()]


async def task_of(server: FhirServer, request_id: str) -> dict[str, Any]:
    """The one Task fulfilling the ServiceRequest (asserted: exactly one on the whole server)."""
    tasks = await search(server, "Task", focus=f"ServiceRequest/{request_id}")
    assert len(tasks) == 1, tasks
    assert len(await search(server, "Task", _count="100")) == 1, "no Task of another request"
    return tasks[0]


async def appointments_of(server: FhirServer, request_id: str) -> list[dict[str, Any]]:
    return await search(server, "Appointment", **{"based-on": f"ServiceRequest/{request_id}"})


def assert_no_patient_but_the_pseudonym(resource: dict[str, Any]) -> None:
    text = json.dumps(resource, ensure_ascii=False)
    assert '"name"' not in text and "birthDate" not in text and "王医生" not in text
    patients = text.count('"Patient"')
    assert patients == text.count(PSEUDONYM), "a patient only as the pseudonym identifier"


async def step(source: FhirSource, key: str, version: int, **changes: Any) -> Any:
    return await source.update(UpdateRequest(port.REFERRAL, key, version, changes))


async def test_a_referral_has_one_task_that_follows_each_step(
    fhir_server: FhirServer, source: FhirSource, feed: FhirChangeFeed
) -> None:
    start = await feed.now_or_latest("referral")
    made = await source.create(
        CreateRequest(port.REFERRAL, referral("W-1", idempotency_key="wf-1"))
    )
    sr = made.record
    task = await task_of(fhir_server, sr.id)
    focus = {"reference": f"ServiceRequest/{sr.id}"}
    assert task["status"] == "requested" and task["intent"] == "order"
    assert task["businessStatus"]["coding"] == [{"system": mapping.STATUS, "code": "INITIATED"}]
    assert task["code"]["coding"] == [mapping.FULFIL]
    assert (task["focus"], task["basedOn"]) == (focus, [focus])
    assert task["for"] == {
        "type": "Patient",
        "identifier": {"system": mapping.PSEUDONYM, "value": PSEUDONYM},
    }
    assert task["requester"] == mapping.hospital(MEMBER)
    assert task["owner"] == mapping.hospital("LYZG")
    assert mapping.parse_instant(task["authoredOn"]) == sr.created_at
    assert {"system": mapping.IDEMPOTENCY, "value": "wf-1"} in task["identifier"]
    assert_no_patient_but_the_pseudonym(task)

    steps: list[tuple[dict[str, Any], str]] = [
        ({"status": "ACCEPTED"}, "accepted"),
        ({"status": "ARRIVED", "arrived_at": datetime.now(UTC)}, "in-progress"),
        ({"status": "COMPLETED", "treatment_result": "好转"}, "completed"),
    ]
    seen = (sr.updated_at, sr.id)
    assert [(c.id, c.version) for c in await feed.changes("referral", (start, ""), 10)] == [
        (sr.id, 1)
    ]
    version, task_version = sr.version, int(task["meta"]["versionId"])
    for changes, status in steps:
        moved = await step(source, sr.id, version, **changes)
        assert moved is not None and moved.version == version + 1
        version = moved.version
        task = await task_of(fhir_server, sr.id)
        assert task["status"] == status, changes
        assert task["businessStatus"]["coding"][0]["code"] == changes["status"]
        assert int(task["meta"]["versionId"]) == task_version + 1, "the same Task, updated"
        task_version += 1
        assert mapping.parse_instant(task["lastModified"]) >= moved.created_at
        # One event's worth of change per step: the request's, never the Task's.
        changed = await feed.changes("referral", seen, 10)
        assert [(c.id, c.version) for c in changed] == [(sr.id, version)]
        seen = (changed[0].updated_at, changed[0].id)
    assert await feed.changes("recognition_decision", (start, ""), 10) == []

    # A stale version: a clean None, and the Task as it was.
    assert await step(source, sr.id, 2, status="CANCELLED") is None
    still = await task_of(fhir_server, sr.id)
    assert (still["status"], still["meta"]["versionId"]) == ("completed", str(task_version))


async def test_a_change_that_lost_the_race_leaves_request_and_task_as_they_were(
    fhir_server: FhirServer, source: FhirSource
) -> None:
    # The adapter read version 1, someone else wrote version 2 meanwhile: its transaction's
    # ifMatch fails, and neither the ServiceRequest nor the Task moves.
    made = await source.create(CreateRequest(port.REFERRAL, referral("W-2")))
    sr = made.record
    assert await step(source, sr.id, 1, status="ACCEPTED") is not None
    values = {**mapping.row_values(sr), "status": "CANCELLED"}
    entries = workflow.update_entries(workflow.REFERRAL, values, sr.id, 1, datetime.now(UTC))
    async with httpx.AsyncClient(timeout=10) as http:
        answer = await http.post(fhir_server.base_url, json=workflow.transaction(entries))
    assert answer.status_code == 412, answer.text
    task = await task_of(fhir_server, sr.id)
    assert (task["status"], task["meta"]["versionId"]) == ("accepted", "2")
    (stored,) = await search(fhir_server, "ServiceRequest", _id=sr.id)
    assert mapping.referral_row(stored).status == "ACCEPTED"


async def test_a_retried_create_makes_one_request_and_one_task(
    fhir_server: FhirServer, source: FhirSource
) -> None:
    request = CreateRequest(port.REFERRAL, referral("W-3", idempotency_key="wf-3"))
    made = [await source.create(request) for _ in range(3)]
    assert [m.created for m in made] == [True, False, False]
    assert len({m.record.id for m in made}) == 1
    assert len(await search(fhir_server, "ServiceRequest")) == 1
    await task_of(fhir_server, made[0].record.id)
    # Without a key, on the number: a second one is refused, and still makes no second Task.
    plain = await source.create(CreateRequest(port.REFERRAL, referral("W-4")))
    with pytest.raises(SourceError) as refused:
        await source.create(CreateRequest(port.REFERRAL, referral("W-4", reason="另一个")))
    assert refused.value.code is SourceErrorCode.SOURCE_REJECTED
    tasks = await search(fhir_server, "Task", focus=f"ServiceRequest/{plain.record.id}")
    assert len(tasks) == 1 and len(await search(fhir_server, "Task")) == 2


async def move(source: FhirSource, key: str, version: int, **changes: Any) -> Any:
    moved = await source.update(UpdateRequest(port.CONSULTATION, key, version, changes))
    assert moved is not None and moved.version == version + 1, changes
    return moved


async def test_a_scheduled_consultation_has_one_appointment_that_follows_it(
    fhir_server: FhirServer, source: FhirSource, feed: FhirChangeFeed
) -> None:
    start = await feed.now_or_latest("consultation")
    made = await source.create(
        CreateRequest(port.CONSULTATION, consultation(idempotency_key="wf-c1"))
    )
    again = await source.create(
        CreateRequest(port.CONSULTATION, consultation(idempotency_key="wf-c1"))
    )
    c = made.record
    assert (made.created, again.created, again.record.id) == (True, False, c.id)
    assert (await task_of(fhir_server, c.id))["status"] == "requested"
    assert await appointments_of(fhir_server, c.id) == [], "no schedule, no Appointment"

    c = await move(source, c.id, c.version, status="ACCEPTED")
    at = (datetime.now(UTC) + timedelta(days=2)).replace(microsecond=0)
    c = await move(source, c.id, c.version, status="SCHEDULED", scheduled_at=at)
    (booked,) = await appointments_of(fhir_server, c.id)
    assert booked["status"] == "booked"
    assert mapping.parse_instant(booked["start"]) == at
    assert mapping.parse_instant(booked["end"]) == at + mapping.SLOT
    assert booked["basedOn"] == [{"reference": f"ServiceRequest/{c.id}"}]
    actors = [p["actor"] for p in booked["participant"]]
    assert actors == [
        {"identifier": {"system": mapping.HOSPITAL, "value": MEMBER}},
        {"identifier": {"system": mapping.HOSPITAL, "value": "LYZG"}},
    ]
    assert PSEUDONYM not in json.dumps(booked) and '"name"' not in json.dumps(booked)
    assert (await task_of(fhir_server, c.id))["status"] == "accepted"

    later = at + timedelta(hours=3)
    c = await move(source, c.id, c.version, scheduled_at=later)
    c = await move(source, c.id, c.version, status="IN_PROGRESS")
    (moved,) = await appointments_of(fhir_server, c.id)
    assert moved["id"] == booked["id"], "the same Appointment"
    assert (moved["status"], mapping.parse_instant(moved["start"])) == ("checked-in", later)

    report = {"expert_name": "李主任", "opinion": "考虑良性病变", "signed": True}
    reported = await source.update(
        UpdateRequest(
            port.CONSULTATION,
            c.id,
            c.version,
            {"status": "REPORTED", "expert_name": "李主任"},
            Children(port.CONSULTATION_REPORT, "consultation_id", ({**report},)),
        )
    )
    assert reported is not None and reported.status == "REPORTED"
    (done,) = await appointments_of(fhir_server, c.id)
    assert (done["id"], done["status"]) == (booked["id"], "fulfilled")
    task = await task_of(fhir_server, c.id)
    assert (task["status"], task["businessStatus"]["coding"][0]["code"]) == (
        "completed",
        "REPORTED",
    )
    assert task["businessStatus"]["coding"][0]["system"] == mapping.CONSULTATION_STATUS
    assert_no_patient_but_the_pseudonym(task)

    # Change capture: the consultation at its latest version and its report, once each.
    changes = await feed.changes("consultation", (start, ""), 10)
    assert [(x.id, x.version) for x in changes] == [(c.id, reported.version)]
    reports = await feed.changes("consultation_report", (start, ""), 10)
    assert [x.id for x in reports] == [c.id]
    assert await feed.changes("recognition_decision", (start, ""), 10) == []


async def test_a_cancelled_consultation_cancels_its_appointment(
    fhir_server: FhirServer, source: FhirSource
) -> None:
    at = (datetime.now(UTC) + timedelta(days=1)).replace(microsecond=0)
    made = await source.create(CreateRequest(port.CONSULTATION, consultation()))
    c = await move(source, made.record.id, 1, status="SCHEDULED", scheduled_at=at)
    c = await move(source, c.id, c.version, status="CANCELLED", status_reason="患者转院")
    (cancelled,) = await appointments_of(fhir_server, c.id)
    assert cancelled["status"] == "cancelled"
    task = await task_of(fhir_server, c.id)
    assert (task["status"], task["statusReason"]) == ("cancelled", {"text": "患者转院"})


async def test_one_draws_results_are_grouped_and_read_from_their_observations(
    fhir_server: FhirServer, source: FhirSource, feed: FhirChangeFeed
) -> None:
    start = await feed.now_or_latest("test_result")
    drawn = datetime.now(UTC) - timedelta(hours=3)
    rows = [
        {
            "patient_pseudonym": PSEUDONYM,
            "item_code": code,
            "item_name": name,
            "loinc": loinc,
            "category": "LAB",
            "value": value,
            "unit": unit,
            "reference_range": None,
            "performed_at": drawn,
        }
        for code, name, loinc, value, unit in (
            ("HB", "血红蛋白", "718-7", "132", "g/L"),
            ("K", "钾", "2823-3", "4.10", "mmol/L"),
        )
    ]
    async with httpx.AsyncClient(timeout=10) as http:
        answer = await http.post(
            fhir_server.base_url,
            json=workflow.transaction(workflow.draw_entries(rows, MEMBER)),
        )
    assert answer.status_code == 200, answer.text
    observations = await search(fhir_server, "Observation")
    (report,) = await search(fhir_server, "DiagnosticReport")
    assert sorted(r["reference"] for r in report["result"]) == sorted(
        f"Observation/{o['id']}" for o in observations
    )
    assert report["subject"] == mapping.patient(PSEUDONYM)
    assert mapping.parse_instant(report["effectiveDateTime"]) == drawn
    assert report["performer"] == [mapping.hospital(MEMBER)]
    assert report["category"][0]["coding"][0] == {"system": mapping.SECTION, "code": "LAB"}
    # The adapter's results are the Observations, as before; the report is no event.
    page = await source.page(
        PageRequest(port.TEST_RESULT, ListQuery(parties=None), ResultFilter(PSEUDONYM))
    )
    assert sorted(r.value for r in page.records) == ["132", "4.10"]
    changes: list[ChangeRow] = await feed.changes("test_result", (start, ""), 10)
    assert len(changes) == 2
    assert await feed.changes("consultation_report", (start, ""), 10) == []
