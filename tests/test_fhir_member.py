"""A member hospital whose source is a FHIR R4 server, through the real gateway: VICTIM (as in the
fault matrix) is served by the fhir adapter from a sekmet-fhir server of this module's own, the
other members from the demo's PostgreSQL exchange databases. Its referrals are merged with theirs
in one stable order across pages; a referral created through the gateway is stored there once
however often it is retried; a ServiceRequest posted straight to the server becomes an event; the
server stopped costs only its part (SOURCE_UNAVAILABLE, then SOURCE_CIRCUIT_OPEN) and it is read
again when it returns, without a restart; the server sees `traceparent` on the gateway's requests.

Run: uv run pytest tests/test_fhir_member.py -s"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from adapters.fhir import mapping
from gateway import tracing
from gateway.app import create_app
from gateway.settings import Settings, load_settings
from resolvers import global_ids
from resolvers.patients import pseudonym
from tests.conftest import Demo, serving
from tests.events_client import next_event, subscribed, watching
from tests.fhir_server import FhirServer
from tests.test_events import latest_cursor
from tests.test_fault_matrix import (
    DEADLINE,
    FAST,
    RESET,
    THRESHOLD,
    VICTIM,
    Answer,
    assert_partial,
    gateway,
    without_victim,  # noqa: F401  (a fixture: the others' answer alone)
)
from tests.test_referrals import new_referral, resident_id

ROWS = 6


def referral(i: int, at: datetime) -> dict[str, Any]:
    return {
        "referral_no": f"FHIR-{i}",
        "direction": "UP",
        "from_hospital": VICTIM,
        "to_hospital": "LYZG",
        "patient_pseudonym": f"{i + 7:064x}",
        "patient_sex": "FEMALE",
        "patient_age": 70,
        "diagnosis_code": "S72.001",
        "diagnosis_name": "股骨颈骨折",
        "reason": "需手术治疗",
        "urgency": "ROUTINE",
        "green_channel": False,
        "status": "INITIATED",
        "created_at": at,
    }


def consultation(i: int, at: datetime) -> dict[str, Any]:
    return {
        "kind": "REMOTE_IMAGING",
        "requesting_hospital": VICTIM,
        "requesting_doctor": "王医生",
        "invited_hospital": "LYZG",
        "patient_pseudonym": f"{i + 70:064x}",
        "patient_sex": "MALE",
        "patient_age": 55,
        "urgency": "ROUTINE",
        "purpose": "明确诊断",
        "attached_studies": ["CT-1"],
        "consent_obtained": True,
        "status": "REQUESTED",
        "created_at": at,
    }


async def post(server: FhirServer, resource: dict[str, Any]) -> dict[str, Any]:
    """As the hospital's own systems would: straight to its FHIR server."""
    async with httpx.AsyncClient(timeout=10) as http:
        answer = await http.post(
            f"{server.base_url}/{resource['resourceType']}",
            json=resource,
            headers={"Content-Type": "application/fhir+json"},
        )
    assert answer.status_code == 201, answer.text
    created: dict[str, Any] = answer.json()
    return created


@pytest.fixture(scope="module")
async def server(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[FhirServer]:
    fhir = FhirServer(tmp_path_factory.mktemp("fhir-member") / "fhir")
    await fhir.start()
    try:
        now = datetime.now(UTC)
        # Newer than the demo's, so on the first page; two in one instant.
        for i in range(ROWS):
            at = now - timedelta(seconds=max(i, 1))
            await post(fhir, mapping.referral_resource(referral(i, at)))
            await post(fhir, mapping.consultation_resource(consultation(i, at)))
        yield fhir
    finally:
        fhir.stop()


def fhir_settings(demo: Demo, base_url: str, **events: Any) -> Settings:
    settings = load_settings(demo.root / "alliance.toml", events={"watch": False, **events})
    members = [
        m
        if m.code != VICTIM
        else m.model_copy(
            update={
                "kind": "fhir",
                "base_url": base_url,
                "dsn": None,
                "dsn_env": None,
                "columns": {},
                "timeout_seconds": DEADLINE,
                "circuit_failure_threshold": THRESHOLD,
                "circuit_reset_seconds": RESET,
            }
        )
        for m in settings.members
    ]
    return settings.model_copy(update={"members": members})


TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
TRACEPARENT = f"00-{TRACE_ID}-00f067aa0ba902b7-01"


async def run(
    http: httpx.AsyncClient, base: str, token: str, query: str, variables: Any = None
) -> dict[str, Any]:
    response = await http.post(
        f"{base}/graphql",
        json={"query": query, "variables": variables or {}},
        headers={
            "authorization": f"Bearer {token}",
            "accept": "application/graphql-response+json",
            # As a traced caller (a partner system, the frontend) would send it.
            "traceparent": TRACEPARENT,
        },
    )
    body: dict[str, Any] = response.json()
    return body


PAGES = {
    "referrals": """query($first: Int, $after: String) { referrals(first: $first, after: $after) {
  totalCount edges { node { id at: createdAt hospital: fromHospital { code } } }
  pageInfo { hasNextPage endCursor } } }""",
    "consultations": """query($first: Int, $after: String) {
  consultations(first: $first, after: $after) {
  totalCount edges { node { id at: requestedAt hospital: requestingHospital { code } } }
  pageInfo { hasNextPage endCursor } } }""",
}

CREATE = """mutation($input: CreateReferralInput!) { createReferral(input: $input) {
  referral { id status fromHospital { code } } } }"""


@pytest.mark.parametrize("field", sorted(PAGES))
async def test_its_records_merge_with_the_others_in_one_order_across_pages(
    demo_env: Demo, server: FhirServer, field: str
) -> None:
    query = PAGES[field]
    token = demo_env.token("SECRETARIAT")
    async with (
        serving(create_app(fhir_settings(demo_env, server.base_url))) as base,
        httpx.AsyncClient(timeout=30) as http,
    ):
        whole = await run(http, base, token, query, {"first": 60})
        assert "errors" not in whole, whole
        expected = [e["node"] for e in whole["data"][field]["edges"]]
        theirs = [n for n in expected if n["hospital"]["code"] == VICTIM]
        assert len(theirs) >= ROWS, "the FHIR hospital's records are on the first page"
        assert len({n["hospital"]["code"] for n in expected}) > 1
        for first in (1, 4, 7):
            seen: list[dict[str, Any]] = []
            after = None
            while len(seen) < len(expected):
                body = await run(http, base, token, query, {"first": first, "after": after})
                assert "errors" not in body, body
                page = body["data"][field]
                seen += [e["node"] for e in page["edges"]]
                after = page["pageInfo"]["endCursor"]
            assert [n["id"] for n in seen[: len(expected)]] == [n["id"] for n in expected], first
        times = [n["at"] for n in expected]
        assert times == sorted(times, reverse=True)


@pytest.fixture(scope="module")
def spans(demo_env: Demo) -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    settings = load_settings(demo_env.root / "alliance.toml")
    assert tracing.configure_tracing("test", settings.alliance_id, exporter=exporter) is not None
    yield exporter
    exporter.shutdown()  # later modules' spans are not kept


async def test_a_referral_created_through_the_gateway_is_stored_there_once(
    demo_env: Demo, server: FhirServer, spans: InMemorySpanExporter
) -> None:
    key = f"fhir-retry-{time.time_ns()}"
    referral_input = new_referral(
        idempotencyKey=key, patient={"residentId": resident_id(4343), "sex": "FEMALE", "age": 66}
    )
    token = demo_env.token("CLINICIAN", VICTIM)
    earlier = len(server.inbound_headers())
    async with (
        serving(create_app(fhir_settings(demo_env, server.base_url))) as base,
        httpx.AsyncClient(timeout=30) as http,
    ):
        answers = [
            await run(http, base, token, CREATE, {"input": referral_input}) for _ in range(3)
        ]
        assert all("errors" not in a for a in answers), answers
        ids = {a["data"]["createReferral"]["referral"]["id"] for a in answers}
        assert len(ids) == 1
        (referral_id,) = ids
        assert global_ids.decode_member_key(referral_id, "Referral")[0] == VICTIM
        stored = await http.get(
            f"{server.base_url}/ServiceRequest",
            params={"identifier": f"{mapping.IDEMPOTENCY}|{key}", "_summary": "count"},
        )
        assert stored.json()["total"] == 1
        accepted = await run(
            http,
            base,
            demo_env.token("CLINICIAN", "LYZG"),
            """mutation($id: ID!) { acceptReferral(id: $id) { referral { status version } } }""",
            {"id": referral_id},
        )
        assert accepted["data"]["acceptReferral"]["referral"] == {
            "status": "ACCEPTED",
            "version": 2,
        }, accepted
    # The gateway's requests carried their trace to the server.
    sent = [
        h.get("traceparent", "")
        for url, h in server.inbound_headers()[earlier:]
        # Searches of ServiceRequest, and the transactions (at the base) that write it with its Task.
        if (url.startswith("/fhir/ServiceRequest") or url.split("?")[0].rstrip("/") == "/fhir")
        and h.get("accept") == "application/fhir+json"
    ]
    assert len(sent) >= 5, "the three creates, the read and the conditional update"
    assert all(p.startswith(f"00-{TRACE_ID}-") for p in sent), sent
    # Its client spans follow the HTTP conventions and name no id, no value.
    fhir_spans = [
        s for s in spans.get_finished_spans() if s.name.startswith(("GET ", "POST ", "PUT "))
    ]
    assert {s.name for s in fhir_spans} >= {"POST transaction", "GET ServiceRequest?"}
    said = repr([(s.name, dict(s.attributes or {})) for s in fhir_spans])
    member_key = global_ids.decode_member_key(referral_id, "Referral")[1]
    assert key not in said and member_key not in said and "4343" not in said
    assert all((s.attributes or {}).get("http.response.status_code") for s in fhir_spans)


async def test_a_service_request_posted_to_the_server_becomes_an_event(
    demo_env: Demo, server: FhirServer, registry_db: asyncpg.Connection
) -> None:
    settings = fhir_settings(
        demo_env,
        server.base_url,
        watch=True,
        poll_interval_seconds=0.2,
        claim_interval_seconds=0.2,
    )
    token = demo_env.token("PARTNER_SYSTEM", "LYZG")
    async with serving(create_app(settings)) as url:
        await watching(url, VICTIM)
        after = await latest_cursor(registry_db)
        async with subscribed(url, token, after=after, members=[VICTIM]) as received:
            posted = await post(server, mapping.referral_resource(referral(99, datetime.now(UTC))))
            wanted = global_ids.encode("Referral", VICTIM, posted["id"])
            # Others may come first: rows the hospital wrote just before the watch began (its
            # first read looks back over the overlap window too).
            events: list[dict[str, Any]] = []
            deadline = time.monotonic() + 5
            while not any(e["entityId"] == wanted for e in events):
                events.append(await next_event(received, within=deadline - time.monotonic()))
            with contextlib.suppress(TimeoutError):
                while True:  # two more polls and their overlap: nothing of it again
                    events.append(await next_event(received, within=1.0))
    ours = [e for e in events if e["entityId"] == wanted]
    assert len(ours) == 1, "recorded once, though read again in the overlap"
    event = ours[0]
    assert event["type"] == "REFERRAL_CREATED" and event["entityVersion"] == 1
    assert event["detectedBy"] == "WATCHER"
    assert event["referral"]["fromHospital"] == {"code": VICTIM}


async def test_the_server_stopped_costs_only_its_part_and_it_comes_back(
    demo_env: Demo,
    server: FhirServer,
    without_victim: Answer,  # noqa: F811  (the fixture imported above)
) -> None:
    async with gateway(
        fhir_settings(demo_env, server.base_url), demo_env.token("ALLIANCE_ADMIN")
    ) as ask:
        healthy = await ask()
        assert healthy.status == 200 and not healthy.errors, healthy.summary()
        assert healthy.ids != without_victim.ids, f"{VICTIM}'s FHIR referrals are on the page"
        server.stop()
        try:
            seen = [await ask()]
            assert_partial(seen[0], without_victim, healthy)
            assert seen[0].codes == ["SOURCE_UNAVAILABLE"], seen[0].summary()
            for _ in range(4):
                answer = await ask()
                seen.append(answer)
                assert_partial(answer, without_victim, healthy)
                if answer.codes == ["SOURCE_CIRCUIT_OPEN"]:
                    break
            print(f"\n[fhir stopped] {[f'{a.codes[0]} {a.elapsed:.3f}s' for a in seen]}")
            assert seen[-1].codes == ["SOURCE_CIRCUIT_OPEN"], seen[-1].summary()
            assert seen[-1].elapsed < FAST
        finally:
            await server.start()  # the same port and store
        restarted = time.perf_counter()
        recovered = None
        while time.perf_counter() - restarted < RESET + 4.0:
            await asyncio.sleep(RESET / 2)
            answer = await ask()
            if not answer.errors and answer.referrals is not None:
                recovered = answer
                break
        assert recovered is not None, "the FHIR member did not come back"
        assert recovered.ids == healthy.ids and recovered.total == healthy.total


RESULTS = """query($patient: PatientLookupInput!, $days: Int = 30) {
  testResults(patient: $patient, withinDays: $days, first: 50) { edges { node {
    id item { code loinc } value unit referenceRange performer { code }
    recognition { recognizable reason } decisions { id decision reason } } } } }"""

DECIDE = """mutation($input: RecordRecognitionDecisionInput!) {
  recordRecognitionDecision(input: $input) {
    decision { id decision reason hospital { code } result { id } } } }"""


async def test_a_clinician_records_a_decision_on_a_result_held_in_fhir(
    demo_env: Demo, server: FhirServer
) -> None:
    settings = fhir_settings(demo_env, server.base_url)
    assert settings.linkage_key is not None
    resident = resident_id(4545)
    who = pseudonym(resident, settings.linkage_key.get_secret_value().encode())
    observation = await post(
        server,
        mapping.result_resource(
            {
                "patient_pseudonym": who,
                "item_code": "K",
                "item_name": "钾",
                "loinc": "2823-3",
                "category": "LAB",
                "value": "4.10",
                "unit": "mmol/L",
                "reference_range": "3.5-5.3",
                "performed_at": datetime.now(UTC) - timedelta(days=1),
            },
            VICTIM,
        ),
    )
    # Its lab's valid external quality assessment for the item, as the lab publishes it.
    today = datetime.now(UTC).date()
    await post(
        server,
        mapping.quality_control_resource(
            {
                "loinc": "2823-3",
                "scheme": "国家卫健委临检中心室间质评",
                "valid_from": today - timedelta(days=90),
                "valid_until": today + timedelta(days=90),
            },
            VICTIM,
        ),
    )
    reader = "LHZY"  # of VICTIM's level: accepts its results
    token = demo_env.token("CLINICIAN", reader)
    async with serving(create_app(settings)) as base, httpx.AsyncClient(timeout=30) as http:
        body = await run(http, base, token, RESULTS, {"patient": {"residentId": resident}})
        assert "errors" not in body, body
        held = [
            e["node"]
            for e in body["data"]["testResults"]["edges"]
            if e["node"]["performer"]["code"] == VICTIM
        ]
        assert len(held) == 1, body
        result = held[0]
        assert result["id"] == global_ids.encode("TestResult", VICTIM, observation["id"])
        assert (result["item"], result["value"], result["unit"], result["referenceRange"]) == (
            {"code": "K", "loinc": "2823-3"},
            "4.10",
            "mmol/L",
            "3.5-5.3",
        )
        # Catalogued, its lab's quality control valid (from FHIR too), within 7 days, same level.
        assert result["recognition"] == {"recognizable": True, "reason": None}
        decided = await run(
            http,
            base,
            token,
            DECIDE,
            {"input": {"resultId": result["id"], "decision": "RECOGNIZED"}},
        )
        assert "errors" not in decided, decided
        decision = decided["data"]["recordRecognitionDecision"]["decision"]
        assert decision["hospital"] == {"code": reader}
        assert decision["result"] == {"id": result["id"]}
        again = await run(http, base, token, RESULTS, {"patient": {"residentId": resident}})
        [seen] = [
            e["node"]
            for e in again["data"]["testResults"]["edges"]
            if e["node"]["id"] == result["id"]
        ]
        assert [(d["decision"], d["reason"]) for d in seen["decisions"]] == [("RECOGNIZED", None)]


async def test_its_clinician_records_a_decision_there_as_a_task(
    demo_env: Demo, server: FhirServer
) -> None:
    sample = next(p for p in demo_env.info["sample_patients"] if VICTIM not in p["members"])
    resident = sample["resident_id"]
    token = demo_env.token("CLINICIAN", VICTIM)
    async with (
        serving(create_app(fhir_settings(demo_env, server.base_url))) as base,
        httpx.AsyncClient(timeout=30) as http,
    ):
        asked = {"patient": {"residentId": resident}, "days": 3650}
        body = await run(http, base, token, RESULTS, asked)
        assert "errors" not in body, body
        others = [
            e["node"]
            for e in body["data"]["testResults"]["edges"]
            if e["node"]["performer"]["code"] != VICTIM
        ]
        assert others, "the sample patient has results at other hospitals"
        result = others[0]
        decided = await run(
            http,
            base,
            token,
            DECIDE,
            {"input": {"resultId": result["id"], "decision": "DECLINED", "reason": "EMERGENCY"}},
        )
        assert "errors" not in decided, decided
        decision = decided["data"]["recordRecognitionDecision"]["decision"]
        assert decision["hospital"] == {"code": VICTIM} and decision["result"] == {
            "id": result["id"]
        }
        again = await run(http, base, token, RESULTS, {"patient": {"residentId": resident}})
        [seen] = [
            e["node"]
            for e in again["data"]["testResults"]["edges"]
            if e["node"]["id"] == result["id"]
        ]
        assert ("DECLINED", "EMERGENCY") in [
            (d["decision"], d["reason"]) for d in seen["decisions"]
        ]
    # Stored at the FHIR hospital, as a Task about that result (named by identifier).
    member, key = global_ids.decode_member_key(result["id"], "TestResult")
    tasks = await http_get(
        f"{server.base_url}/Task",
        {"focus:identifier": f"{mapping.result_system(member)}|{key}"},
    )
    assert [e["resource"]["businessStatus"]["coding"][0]["code"] for e in tasks["entry"]] == [
        "DECLINED"
    ]


async def http_get(url: str, params: dict[str, str]) -> dict[str, Any]:
    async with httpx.AsyncClient(timeout=10) as http:
        answer = await http.get(url, params=params)
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body
