"""The FHIR adapter against a real FHIR R4 server (sekmet-fhir, started by the test), beyond the
shared contract (tests/test_source_contract.py runs that against it too): change capture by
`_lastUpdated`, failures translated to SOURCE_* codes, `traceparent` on every request, paging by
the server's own `next` links, and the mapping's privacy (no resident ID, no name)."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from opentelemetry import trace
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

from adapters.fhir import mapping
from adapters.fhir.source import FhirSource
from adapters.sources import port
from adapters.sources.errors import SourceError, SourceErrorCode
from adapters.sources.port import CreateRequest, LookupRequest, PageRequest, UpdateRequest
from adapters.sources.records import Bound, ListQuery, ResultFilter
from tests.fhir_server import FhirServer, free_port
from tests.fhir_server import fhir_server as fhir_server

MEMBER = "SITE"


def referral(n: int, at: datetime, **values: Any) -> dict[str, Any]:
    return {
        "referral_no": f"F-{n}",
        "direction": "UP",
        "from_hospital": MEMBER,
        "to_hospital": "LYZG",
        "patient_pseudonym": f"{n:064x}",
        "patient_sex": "FEMALE",
        "patient_age": 70,
        "diagnosis_code": "S72.001",
        "diagnosis_name": "股骨颈骨折",
        "reason": "需手术治疗",
        "urgency": "ROUTINE",
        "green_channel": False,
        "status": "INITIATED",
        "created_at": at,
        **values,
    }


async def post(server: FhirServer, resource: dict[str, Any]) -> dict[str, Any]:
    """As the hospital's own systems: straight to its FHIR server."""
    async with httpx.AsyncClient(timeout=10) as http:
        answer = await http.post(
            f"{server.base_url}/{resource['resourceType']}",
            json=resource,
            headers={"Content-Type": "application/fhir+json"},
        )
    assert answer.status_code == 201, answer.text
    created: dict[str, Any] = answer.json()
    return created


@pytest.fixture
async def source(fhir_server: FhirServer) -> AsyncIterator[FhirSource]:
    adapter = FhirSource(MEMBER, fhir_server.base_url, timeout_seconds=2.0)
    yield adapter
    await adapter.close()


async def test_changes_made_on_the_server_come_in_watermark_order(
    fhir_server: FhirServer,
    source: FhirSource,
) -> None:
    feed = source.change_feed()
    assert await feed.connect(lambda: None) is False, "polled: the server is not asked to push"
    try:
        assert set(feed.kinds) == {
            "referral",
            "consultation",
            "consultation_report",
            "test_result",
            "recognition_decision",
        }
        start = await feed.now_or_latest("referral")
        assert abs(start - datetime.now(UTC)) < timedelta(minutes=1), "the server's own present"
        now = datetime.now(UTC)
        made = [
            await post(fhir_server, mapping.referral_resource(referral(i, now))) for i in range(5)
        ]
        changes = await feed.changes("referral", (start, ""), 10)
        assert sorted(c.id for c in changes) == sorted(r["id"] for r in made)
        keys = [(c.updated_at, c.id) for c in changes]
        assert keys == sorted(keys), "oldest first, ties by id"
        assert all(c.version == 1 and c.parties == (MEMBER, "LYZG") for c in changes)
        # Resuming after any change gives exactly the ones after it, across the server's pages.
        for i, change in enumerate(changes):
            after = await feed.changes("referral", (change.updated_at, change.id), 2)
            assert [c.id for c in after] == [c.id for c in changes[i + 1 : i + 3]]
        moved = await source.update(
            UpdateRequest(port.REFERRAL, changes[0].id, 1, {"status": "ACCEPTED"})
        )
        assert moved is not None
        again = await feed.changes("referral", (changes[-1].updated_at, changes[-1].id), 10)
        assert [(c.id, c.version) for c in again] == [(changes[0].id, 2)]
        assert await feed.changes("test_result", (start, ""), 10) == []
    finally:
        await feed.close()
    assert not feed.connected


async def test_pages_follow_the_servers_next_links(
    fhir_server: FhirServer,
    source: FhirSource,
) -> None:
    # Twelve referrals in one instant: the page of 5 must read on through the server's pages
    # (of limit + 1) until the tie group is whole, then order it by id itself.
    at = datetime.now(UTC) - timedelta(minutes=5)
    for i in range(12):
        await post(fhir_server, mapping.referral_resource(referral(i, at)))
    seen: list[str] = []
    bound = None
    while True:
        page = await source.page(
            PageRequest(port.REFERRAL, ListQuery(parties=(MEMBER,), bound=bound, limit=5))
        )
        seen += [r.id for r in page.records]
        if len(page.records) < 5:
            break
        bound = Bound(page.records[-1].created_at, page.records[-1].id)
    assert seen == sorted(seen, reverse=True) and len(set(seen)) == 12


async def test_the_patient_is_only_the_alliance_pseudonym() -> None:
    resource = mapping.referral_resource(referral(1, datetime.now(UTC)))
    assert resource["subject"] == {
        "type": "Patient",
        "identifier": {"system": mapping.PSEUDONYM, "value": f"{1:064x}"},
    }
    text = json.dumps(resource)
    assert '"name"' not in text and "birthDate" not in text


async def test_a_resource_off_the_mapping_is_a_schema_mismatch(
    fhir_server: FhirServer,
    source: FhirSource,
) -> None:
    broken = mapping.referral_resource(referral(1, datetime.now(UTC)))
    del broken["requester"]
    await post(fhir_server, broken)
    with pytest.raises(SourceError) as failed:
        await source.page(PageRequest(port.REFERRAL, ListQuery(parties=None)))
    assert failed.value.code is SourceErrorCode.SOURCE_SCHEMA_MISMATCH


async def test_kinds_it_does_not_serve_are_declared_and_refused_on_write(
    source: FhirSource,
) -> None:
    served = source.capabilities.serves
    assert served == {
        port.REFERRAL,
        port.CONSULTATION,
        port.CONSULTATION_REPORT,
        port.TEST_RESULT,
        port.QUALITY_CONTROL,
        port.RECOGNITION_DECISION,
    }
    with pytest.raises(SourceError) as refused:
        await source.create(CreateRequest(port.PLACEMENT, {}))
    assert refused.value.code is SourceErrorCode.SOURCE_NOT_SERVED


async def test_requests_carry_traceparent(
    fhir_server: FhirServer,
    source: FhirSource,
) -> None:
    parent = SpanContext(
        trace_id=0x0AF7651916CD43DD8448EB211C80319C,
        span_id=0xB7AD6B7169203331,
        is_remote=False,
        trace_flags=TraceFlags(TraceFlags.SAMPLED),
    )
    with trace.use_span(NonRecordingSpan(parent)):
        await source.page(PageRequest(port.REFERRAL, ListQuery(parties=None), with_total=True))
        await source.create(CreateRequest(port.REFERRAL, referral(1, datetime.now(UTC))))
    fhir_server.stop()  # its traffic log is written
    parents = [
        h.get("traceparent", "")
        for url, h in fhir_server.inbound_headers()
        if not url.startswith("/fhir/metadata")  # the fixture's start-up probe
    ]
    assert len(parents) >= 3 and all(
        p.startswith("00-0af7651916cd43dd8448eb211c80319c-") for p in parents
    ), parents


# -- failures ----------------------------------------------------------------------------------


async def _code(call: Callable[[], Awaitable[object]]) -> SourceErrorCode:
    with pytest.raises(SourceError) as failed:
        await call()
    assert "http" not in failed.value.message.lower()
    return failed.value.code


def _page(source: FhirSource) -> Callable[[], Awaitable[object]]:
    return lambda: source.page(PageRequest(port.REFERRAL, ListQuery(parties=None)))


async def test_a_server_that_is_not_there_is_unavailable() -> None:
    source = FhirSource(MEMBER, f"http://127.0.0.1:{free_port()}/fhir", timeout_seconds=1.0)
    try:
        assert await _code(_page(source)) is SourceErrorCode.SOURCE_UNAVAILABLE
        assert await _code(source.ping) is SourceErrorCode.SOURCE_UNAVAILABLE
    finally:
        await source.close()


async def test_a_server_that_wants_credentials(tmp_path: Path, monkeypatch: Any) -> None:
    server = FhirServer(
        tmp_path / "fhir",
        settings={"server_auth": {"types": ["bearer"], "tokens": ["s3cret-token"]}},
    )
    await server.start()
    try:
        anonymous = FhirSource(MEMBER, server.base_url)
        assert await _code(_page(anonymous)) is SourceErrorCode.SOURCE_ACCESS_DENIED
        await anonymous.close()
        monkeypatch.setenv("SITE_FHIR_TOKEN", "s3cret-token")
        config = port.SourceConfig(
            member=MEMBER, kind="fhir", base_url=server.base_url, token_env="SITE_FHIR_TOKEN"
        )
        with_token = FhirSource.from_config(config)
        assert (await _page(with_token)()) == port.Page([])
        await with_token.close()
    finally:
        server.stop()


@contextlib.asynccontextmanager
async def misbehaving(answer: bytes | None) -> AsyncIterator[str]:
    """A TCP peer on loopback in front of nothing: it answers every request with `answer` (a
    broken proxy, an overloaded server), or with None never answers at all (a hung server)."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(Exception):
            await reader.readuntil(b"\r\n\r\n")
            if answer is None:
                await asyncio.sleep(30)
            else:
                writer.write(answer)
                await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port_ = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port_}/fhir"
    finally:
        server.close()


def _http(status: str, body: bytes, kind: str = "application/fhir+json") -> bytes:
    return (
        f"HTTP/1.1 {status}\r\nContent-Type: {kind}\r\nContent-Length: {len(body)}\r\n"
        "Connection: close\r\n\r\n"
    ).encode() + body


OUTCOME = json.dumps(
    {"resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": "invalid"}]}
).encode()


@pytest.mark.parametrize(
    ("answer", "code"),
    [
        (_http("503 Service Unavailable", OUTCOME), SourceErrorCode.SOURCE_UNAVAILABLE),
        (
            _http("502 Bad Gateway", b"<html>proxy</html>", "text/html"),
            SourceErrorCode.SOURCE_UNAVAILABLE,
        ),
        (_http("403 Forbidden", OUTCOME), SourceErrorCode.SOURCE_ACCESS_DENIED),
        (_http("400 Bad Request", OUTCOME), SourceErrorCode.SOURCE_REJECTED),
        (_http("200 OK", b"{not json"), SourceErrorCode.SOURCE_SCHEMA_MISMATCH),
        (_http("200 OK", OUTCOME), SourceErrorCode.SOURCE_SCHEMA_MISMATCH),
        (
            _http(
                "200 OK",
                json.dumps({"resourceType": "Bundle", "entry": [{"resource": {}}]}).encode(),
            ),
            SourceErrorCode.SOURCE_SCHEMA_MISMATCH,
        ),
    ],
    ids=["503", "502-html", "403", "400-outcome", "not-json", "not-a-bundle", "bad-entry"],
)
async def test_failures_become_source_codes(answer: bytes, code: SourceErrorCode) -> None:
    async with misbehaving(answer) as url:
        source = FhirSource(MEMBER, url, timeout_seconds=1.0)
        try:
            assert await _code(_page(source)) is code
        finally:
            await source.close()


async def test_a_server_that_does_not_answer_is_a_timeout() -> None:
    async with misbehaving(None) as url:
        source = FhirSource(MEMBER, url, timeout_seconds=0.3)
        try:
            with pytest.raises(TimeoutError):
                await _page(source)()
        finally:
            await source.close()


async def test_edges_at_microseconds_the_server_reads_early_are_exact(
    fhir_server: FhirServer,
    source: FhirSource,
) -> None:
    # sekmet reads .000249 as .000248 (through a float): the adapter must neither lose a record
    # at such an edge nor take one a microsecond outside it.
    edge = (datetime.now(UTC) - timedelta(hours=2)).replace(microsecond=249)
    times = {"before": edge - timedelta(microseconds=1), "at": edge, "after": edge + _us(1)}
    ids: dict[str, str] = {}
    for name, at in times.items():
        made = await post(fhir_server, mapping.referral_resource(referral(len(ids), at)))
        ids[name] = made["id"]

    async def listed(query: ListQuery) -> tuple[list[str], int | None]:
        page = await source.page(PageRequest(port.REFERRAL, query, with_total=True))
        names = {v: k for k, v in ids.items()}
        return [names[r.id] for r in page.records], page.total

    assert await listed(ListQuery(parties=None, since=edge)) == (["after", "at"], 2)
    assert await listed(ListQuery(parties=None, until=edge)) == (["before"], 1)
    assert (await listed(ListQuery(parties=None, bound=Bound(edge, ties_after=True))))[0] == [
        "at",
        "before",
    ]
    assert (await listed(ListQuery(parties=None, bound=Bound(edge))))[0] == ["before"]


def _us(n: int) -> timedelta:
    return timedelta(microseconds=n)


async def test_a_labs_quality_control_is_looked_up_by_loinc_apart_from_results(
    fhir_server: FhirServer,
    source: FhirSource,
) -> None:
    schemes = [("2823-3", "EQA-2026-1", 0, 180), ("2823-3", "EQA-2025-2", -200, -1)]
    for loinc, scheme, start, end in schemes:
        await post(
            fhir_server,
            mapping.quality_control_resource(
                {
                    "loinc": loinc,
                    "scheme": scheme,
                    "valid_from": date(2026, 1, 1) + timedelta(days=start),
                    "valid_until": date(2026, 1, 1) + timedelta(days=end),
                },
                MEMBER,
            ),
        )
    found = await source.lookup(LookupRequest(port.QUALITY_CONTROL, ("2823-3", "2345-7"), "loinc"))
    assert sorted((q.loinc, q.scheme, q.valid_from, q.valid_until) for q in found) == [
        ("2823-3", "EQA-2025-2", date(2025, 6, 15), date(2025, 12, 31)),
        ("2823-3", "EQA-2026-1", date(2026, 1, 1), date(2026, 6, 30)),
    ]
    # Not a result: neither listed with a patient's results nor a change of them.
    page = await source.page(
        PageRequest(port.TEST_RESULT, ListQuery(parties=None), ResultFilter("a" * 64))
    )
    assert page.records == []
    feed = source.change_feed()
    await feed.connect(lambda: None)
    try:
        assert await feed.changes("test_result", (datetime(2000, 1, 1, tzinfo=UTC), ""), 10) == []
    finally:
        await feed.close()


def test_a_fhir_member_is_configured_by_its_base_url() -> None:
    from pydantic import ValidationError

    from gateway.settings import MemberSourceSettings

    with pytest.raises(ValidationError, match="base_url"):
        MemberSourceSettings(code="LHRM6", kind="fhir")
    member = MemberSourceSettings(
        code="LHRM6", kind="fhir", base_url="https://fhir.example.cn/fhir", token_env="T"
    )
    config = member.source_config()
    assert (config.kind, config.dsn, config.base_url, config.token_env) == (
        "fhir",
        None,
        "https://fhir.example.cn/fhir",
        "T",
    )
    with pytest.raises(ValidationError, match="dsn"):
        MemberSourceSettings(code="LHRM6", kind="postgres")
