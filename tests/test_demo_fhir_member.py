"""The demo's FHIR hospital (FHIR_MEMBER, served by the fhir adapter from the demo's own sekmet-fhir
server, seeded with the same kind of synthetic activity) is one member like the others: its
referrals, consultations and test results are merged with the PostgreSQL hospitals' in one stable
order across pages; a clinician elsewhere records a recognition decision on one of its results; a
referral created through the gateway is stored there once however often it is retried; and
`--simulate-activity` writes to it as its integration engine would, each write becoming an event.

Run: uv run pytest tests/test_demo_fhir_member.py -s"""

from __future__ import annotations

import logging
import random
import time
from typing import Any

import asyncpg
import httpx
import pytest

from adapters.fhir import mapping
from gateway.app import create_app
from gateway.demo.provision import FHIR_MEMBER
from gateway.demo.simulate import Kind, Simulation, simulate_once
from gateway.logs import configure_logging
from gateway.settings import Settings, load_settings
from resolvers import global_ids
from tests.conftest import Api, Demo, serving
from tests.events_client import next_event, subscribed, watching
from tests.member_lists import assert_merged_in_one_order, member_of
from tests.test_events import latest_cursor
from tests.test_referrals import new_referral, resident_id


@pytest.fixture(scope="module")
def fhir_member(demo_env: Demo) -> dict[str, Any]:
    member = next(m for m in demo_env.info["members"] if m["code"] == FHIR_MEMBER)
    assert member["kind"] == "fhir" and member["base_url"].startswith("http://127.0.0.1:")
    assert "dsn" not in member, "a FHIR hospital has a base URL, not a database"
    return member


@pytest.fixture(scope="module")
def settings(demo_env: Demo) -> Settings:
    return load_settings(demo_env.root / "alliance.toml")


async def _search(member: dict[str, Any], resource: str, **params: str) -> dict[str, Any]:
    """The server, read as the hospital's own systems read it."""
    async with httpx.AsyncClient(timeout=10) as http:
        answer = await http.get(f"{member['base_url']}/{resource}", params=params)
    assert answer.status_code == 200, answer.text
    bundle: dict[str, Any] = answer.json()
    return bundle


# Placements are not served from FHIR (MAPPING.md).
@pytest.mark.parametrize("field", ["consultations", "referrals"])
async def test_its_records_are_merged_in_one_stable_order(
    api: Api, field: str, fhir_member: dict[str, Any]
) -> None:
    await assert_merged_in_one_order(api, field, FHIR_MEMBER)


async def test_a_clinician_decides_on_a_result_that_came_from_fhir(
    api: Api, demo_env: Demo
) -> None:
    patient = next(
        p
        for p in demo_env.info["sample_patients"]
        if FHIR_MEMBER in p["members"] and len(p["members"]) >= 2
    )
    reader = next(m for m in patient["members"] if m != FHIR_MEMBER)
    query = """query($p: String!, $after: String) { testResults(patient: {residentId: $p},
        first: 9, after: $after) { edges { node { id performedAt item { loinc } performer { code } } }
        pageInfo { hasNextPage endCursor } } }"""
    nodes: list[dict[str, Any]] = []
    after = None
    while True:
        body = await api.run(
            query, {"p": patient["resident_id"], "after": after}, role="CLINICIAN", member=reader
        )
        assert "errors" not in body, body["errors"]
        page = body["data"]["testResults"]
        nodes += [e["node"] for e in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    performers = {n["performer"]["code"] for n in nodes}
    assert FHIR_MEMBER in performers and len(performers) >= 2
    assert len({n["id"] for n in nodes}) == len(nodes)
    times = [n["performedAt"] for n in nodes]
    assert times == sorted(times, reverse=True)

    from_fhir = next(
        n for n in nodes if n["performer"]["code"] == FHIR_MEMBER and n["item"]["loinc"]
    )
    decided = await api.run(
        """mutation($input: RecordRecognitionDecisionInput!) {
          recordRecognitionDecision(input: $input) { decision { decision result { id } } } }""",
        {
            "input": {
                "resultId": from_fhir["id"],
                "decision": "DECLINED",
                "reason": "CONDITION_CHANGED",
                "note": "病情变化，需复查",
            }
        },
        role="CLINICIAN",
        member=reader,
    )
    assert "errors" not in decided, decided["errors"]
    decision = decided["data"]["recordRecognitionDecision"]["decision"]
    assert decision == {"decision": "DECLINED", "result": {"id": from_fhir["id"]}}


CREATE = """mutation($input: CreateReferralInput!) { createReferral(input: $input) {
  referral { id status fromHospital { code } } } }"""


async def test_a_referral_through_the_gateway_is_stored_there_once_when_retried(
    api: Api, fhir_member: dict[str, Any]
) -> None:
    key = f"retry-{time.time_ns()}"
    referral = new_referral(
        idempotencyKey=key, patient={"residentId": resident_id(4343), "sex": "MALE", "age": 66}
    )
    answers = [
        await api.run(CREATE, {"input": referral}, role="CLINICIAN", member=FHIR_MEMBER)
        for _ in range(3)
    ]
    assert all("errors" not in a for a in answers), answers
    ids = {a["data"]["createReferral"]["referral"]["id"] for a in answers}
    assert len(ids) == 1 and member_of(ids.pop(), "Referral") == FHIR_MEMBER
    stored = await _search(fhir_member, "ServiceRequest", identifier=f"{mapping.IDEMPOTENCY}|{key}")
    assert len(stored.get("entry") or ()) == 1


async def test_the_simulated_hospital_writes_to_its_fhir_server(
    settings: Settings, fhir_member: dict[str, Any]
) -> None:
    sim = Simulation.from_settings(settings)
    member = sim.member(FHIR_MEMBER)
    assert (member.kind, member.base_url) == ("fhir", fhir_member["base_url"])
    made = await simulate_once(sim, random.Random(3), member=FHIR_MEMBER, kind=Kind.REFERRAL)
    assert made is not None and (made.version, made.status) == (1, "INITIATED")
    stored = await _search(fhir_member, "ServiceRequest", _id=str(made.row_id))
    row = mapping.referral_row(stored["entry"][0]["resource"])
    assert row.from_hospital == FHIR_MEMBER and row.status == "INITIATED"
    assert sim.patient_of(row.patient_pseudonym) is not None, "one of the demo's patients"

    rng = random.Random(5)
    statuses = []
    while (
        step := await simulate_once(sim, rng, kind=Kind.REFERRAL_STEP, target=made.ref)
    ) is not None:
        statuses.append(step.status)
        stored = await _search(fhir_member, "ServiceRequest", _id=str(made.row_id))
        assert mapping.referral_row(stored["entry"][0]["resource"]).version == step.version
    assert statuses in (["REJECTED"], ["ACCEPTED", "ARRIVED", "COMPLETED"])
    # Its Task followed every step, in the same transactions: one, at the last status.
    tasks = await _search(fhir_member, "Task", focus=f"ServiceRequest/{made.row_id}")
    assert len(tasks["entry"]) == 1
    task = tasks["entry"][0]["resource"]
    assert task["businessStatus"]["coding"][0]["code"] == statuses[-1]
    assert task["status"] == mapping.task_status("referral", statuses[-1])

    result = await simulate_once(sim, random.Random(7), member=FHIR_MEMBER, kind=Kind.RESULT)
    assert result is not None and result.status in ("LAB", "EXAM")
    stored = await _search(fhir_member, "Observation", _id=str(result.row_id))
    assert mapping.result_row(stored["entry"][0]["resource"]).id == result.row_id
    grouped = await _search(fhir_member, "DiagnosticReport", result=f"Observation/{result.row_id}")
    assert len(grouped["entry"]) == 1, "released with the report of its draw"


async def test_a_consultation_it_holds_is_reported_by_the_invited_hospital(
    settings: Settings, fhir_member: dict[str, Any]
) -> None:
    sim = Simulation.from_settings(settings)
    asked = await simulate_once(sim, random.Random(11), member=FHIR_MEMBER, kind=Kind.CONSULTATION)
    assert asked is not None and asked.status == "REQUESTED"
    report = await simulate_once(sim, random.Random(12), kind=Kind.REPORT, target=asked.ref)
    assert report is not None
    assert (report.member, report.row_id, report.status) == (
        FHIR_MEMBER,
        asked.row_id,
        "REPORTED",
    )
    assert report.by != FHIR_MEMBER, "the invited hospital's systems issue it"
    reports = await _search(
        fhir_member, "DiagnosticReport", **{"based-on": f"ServiceRequest/{asked.row_id}"}
    )
    assert len(reports["entry"]) == 1
    tasks = await _search(fhir_member, "Task", focus=f"ServiceRequest/{asked.row_id}")
    assert [e["resource"]["status"] for e in tasks["entry"]] == ["completed"]
    appointments = await _search(
        fhir_member, "Appointment", **{"based-on": f"ServiceRequest/{asked.row_id}"}
    )
    assert [e["resource"]["status"] for e in appointments["entry"]] == ["fulfilled"]
    again = await simulate_once(sim, random.Random(13), kind=Kind.REPORT, target=asked.ref)
    assert again is None, "a consultation is reported once"


async def test_a_simulated_write_there_becomes_an_event(
    demo_env: Demo, registry_db: asyncpg.Connection, fhir_member: dict[str, Any]
) -> None:
    settings = load_settings(
        demo_env.root / "alliance.toml",
        events={"poll_interval_seconds": 0.2, "claim_interval_seconds": 0.2},
    )
    sim = Simulation.from_settings(settings)
    # Its own partner system: a party to every referral it sends.
    token = demo_env.token("PARTNER_SYSTEM", FHIR_MEMBER)
    async with serving(create_app(settings)) as url:
        await watching(url, FHIR_MEMBER)
        after = await latest_cursor(registry_db)
        async with subscribed(url, token, after=after, members=[FHIR_MEMBER]) as received:
            made = await simulate_once(sim, member=FHIR_MEMBER, kind=Kind.REFERRAL)
            assert made is not None
            wanted = global_ids.encode("Referral", FHIR_MEMBER, str(made.row_id))
            # Earlier tests' writes there may come first: the watch reads from its watermark.
            event = await next_event(received, within=5)
            while event["entityId"] != wanted:
                event = await next_event(received, within=5)
    assert event["type"] == "REFERRAL_CREATED"
    assert event["detectedBy"] == "WATCHER"
    assert event["referral"]["fromHospital"] == {"code": FHIR_MEMBER}


def _included(bundle: dict[str, Any], resource: str) -> list[dict[str, Any]]:
    return [
        e["resource"]
        for e in bundle.get("entry") or ()
        if e["search"]["mode"] == "include" and e["resource"]["resourceType"] == resource
    ]


def _matched(bundle: dict[str, Any]) -> list[dict[str, Any]]:
    return [e["resource"] for e in bundle.get("entry") or () if e["search"]["mode"] == "match"]


async def test_its_referrals_and_consultations_show_the_workflow_pattern(
    fhir_member: dict[str, Any],
) -> None:
    fulfil = f"{mapping.TASK_CODE}|{mapping.FULFIL['code']}"
    requests = await _search(fhir_member, "ServiceRequest", _summary="count")
    tasks = await _search(fhir_member, "Task", code=fulfil, _summary="count")
    assert requests["total"] > 0 and tasks["total"] == requests["total"], "one Task each"
    for category, kind in (
        (mapping.REFERRAL_CATEGORY, "referral"),
        (mapping.CONSULTATION_CATEGORY, "consultation"),
    ):
        bundle = await _search(
            fhir_member,
            "ServiceRequest",
            category=f"{mapping.SNOMED}|{category['code']}",
            _count="200",
            _revinclude="Task:focus",
        )
        by_focus: dict[str, list[dict[str, Any]]] = {}
        for task in _included(bundle, "Task"):
            by_focus.setdefault(task["focus"]["reference"], []).append(task)
        for request in _matched(bundle):
            (task,) = by_focus[f"ServiceRequest/{request['id']}"]
            status = next(
                t["code"]
                for t in request["meta"]["tag"]
                if t["system"] in (mapping.STATUS, mapping.CONSULTATION_STATUS)
            )
            assert task["businessStatus"]["coding"][0]["code"] == status
            assert task["status"] == mapping.task_status(kind, status)
            assert task["for"] == request["subject"], "the pseudonym, nothing more"
    scheduled = await _search(
        fhir_member,
        "ServiceRequest",
        category=f"{mapping.SNOMED}|{mapping.CONSULTATION_CATEGORY['code']}",
        _count="200",
        _revinclude="Appointment:based-on",
    )
    appointments = _included(scheduled, "Appointment")
    with_schedule = [r for r in _matched(scheduled) if r.get("occurrenceDateTime")]
    assert with_schedule and len(appointments) == len(with_schedule)
    assert all(
        mapping.parse_instant(a["start"]) == mapping.parse_instant(r["occurrenceDateTime"])
        for r in with_schedule
        for a in appointments
        if a["basedOn"] == [{"reference": f"ServiceRequest/{r['id']}"}]
    )


async def test_its_results_are_grouped_by_diagnostic_reports(fhir_member: dict[str, Any]) -> None:
    results = f"{mapping.RESULT_CATEGORY}|LAB,{mapping.RESULT_CATEGORY}|EXAM"
    bundle = await _search(
        fhir_member,
        "Observation",
        category=results,
        _count="300",
        _revinclude="DiagnosticReport:result",
    )
    observations = _matched(bundle)
    reports = _included(bundle, "DiagnosticReport")
    assert observations and reports
    grouping: dict[str, list[dict[str, Any]]] = {}
    for report in reports:
        for ref in report["result"]:
            grouping.setdefault(ref["reference"], []).append(report)
    for observation in observations:
        (report,) = grouping[f"Observation/{observation['id']}"]
        assert report["subject"] == observation["subject"]
        assert report["effectiveDateTime"] == observation["effectiveDateTime"]
        assert report["performer"] == [mapping.hospital(FHIR_MEMBER)]
    sections = {r["category"][0]["coding"][0]["code"] for r in reports}
    assert "LAB" in sections and sections <= {"LAB", "RAD", "EC"}
    assert any(len(r["result"]) > 1 for r in reports), "a draw's results together"
    everything = await _search(fhir_member, "Observation", category=results, _summary="count")
    grouped = await _search(fhir_member, "DiagnosticReport", category=f"{mapping.SECTION}|LAB")
    assert grouped["total"] < everything["total"]


def test_request_urls_stay_out_of_the_logs() -> None:
    """httpx would log each request's URL at INFO, and a FHIR search's URL names a pseudonym."""
    root, httpx_logger = logging.getLogger(), logging.getLogger("httpx")
    handlers, levels = list(root.handlers), (root.level, httpx_logger.level)
    try:
        configure_logging(logging.INFO)
        assert not httpx_logger.isEnabledFor(logging.INFO)
        assert httpx_logger.isEnabledFor(logging.WARNING)
    finally:
        root.handlers[:] = handlers
        root.setLevel(levels[0])
        httpx_logger.setLevel(levels[1])
