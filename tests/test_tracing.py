"""Traces and structured logs, seen through the real app served over HTTP: one trace per request
from the client's span down to a span per member and the database spans beneath them, with no raw
identifier anywhere; the sqlcommenter comment reaching PostgreSQL; JSON log lines with trace ids.

The OpenTelemetry API allows one global TracerProvider per process: this module installs it once,
with an in-memory exporter, and stops collecting when its tests are done."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import secrets
import time
from collections.abc import Iterator, Sequence
from typing import Any

import httpx
import pytest
from httpx_ws import AsyncWebSocketSession, aconnect_ws
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from adapters.exchange.postgres import PostgresExchange
from adapters.sources import port
from adapters.sources.port import PageRequest
from adapters.sources.records import ListQuery, ReferralFilter
from gateway import tracing
from gateway.app import create_app
from gateway.logs import JsonFormatter
from gateway.settings import MemberSourceSettings, load_settings
from tests.conftest import Demo, error_codes, serving

RESULTS = """query PatientResults($id: String!) {
  testResults(patient: {residentId: $id}, withinDays: 3650, first: 20) {
    patientPseudonym edges { node { id value unit item { code } performer { code } } } } }"""
REFERRALS = """query Referrals { referrals(first: 10) { edges { node { id } } } }"""
READER = "LYZG"
FAILING = "LHZX"


@pytest.fixture(scope="module")
def spans(demo_env: Demo) -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    settings = load_settings(demo_env.root / "alliance.toml")
    provider = tracing.configure_tracing("test", settings.alliance_id, exporter=exporter)
    assert provider is not None and trace.get_tracer_provider() is provider
    yield exporter
    exporter.shutdown()  # later modules' spans are not kept


@pytest.fixture(scope="module")
async def traced_base(spans: InMemorySpanExporter, demo_env: Demo) -> Any:
    async with serving(create_app(load_settings(demo_env.root / "alliance.toml"))) as base:
        yield base


def _traceparent() -> tuple[int, int, str]:
    trace_id, span_id = secrets.randbits(128) or 1, secrets.randbits(64) or 1
    return trace_id, span_id, f"00-{trace_id:032x}-{span_id:016x}-01"


async def _trace(
    exporter: InMemorySpanExporter, trace_id: int, *, wait_seconds: float = 3.0
) -> list[ReadableSpan]:
    """The trace's spans, once its server span has ended (it ends after the response is sent)."""
    deadline = time.monotonic() + wait_seconds
    while True:
        found = [s for s in exporter.get_finished_spans() if s.context.trace_id == trace_id]
        if any(s.kind is SpanKind.SERVER for s in found) or time.monotonic() > deadline:
            return found
        await asyncio.sleep(0.02)


def _attr(span: ReadableSpan, *names: str) -> Any:
    """The first of `names` the span has: the asyncpg spans use the old or the stable semantic
    conventions, as OTEL_SEMCONV_STABILITY_OPT_IN says."""
    attributes = span.attributes or {}
    return next((attributes[n] for n in names if n in attributes), None)


def _children(spans: Sequence[ReadableSpan], parent: ReadableSpan) -> list[ReadableSpan]:
    return [s for s in spans if s.parent is not None and s.parent.span_id == parent.context.span_id]


def _descends(spans: Sequence[ReadableSpan], span: ReadableSpan, ancestor: ReadableSpan) -> bool:
    by_id = {s.context.span_id: s for s in spans}
    current: ReadableSpan | None = span
    while current is not None and current.parent is not None:
        if current.parent.span_id == ancestor.context.span_id:
            return True
        current = by_id.get(current.parent.span_id)
    return False


def _everything_said(span: ReadableSpan) -> str:
    """All the text a span exports: name, attributes, events, links, status, resource."""
    parts: list[Any] = [span.name, span.status.description, dict(span.attributes or {})]
    parts += [(e.name, dict(e.attributes or {})) for e in span.events]
    parts += [dict(link.attributes or {}) for link in span.links]
    parts.append(dict(span.resource.attributes))
    return repr(parts)


def _comment(trace_id: int, span_id: int, flags: int = 1) -> str:
    return f"/*traceparent='00-{trace_id:032x}-{span_id:016x}-{flags:02x}'*/"


async def test_one_trace_from_the_clients_span_to_each_members_database(
    traced_base: str, spans: InMemorySpanExporter, demo_env: Demo
) -> None:
    patient = demo_env.info["sample_patients"][0]["resident_id"]
    members = {m["code"]: m.get("database") for m in demo_env.info["members"]}
    kinds = {m["code"]: m["kind"] for m in demo_env.info["members"]}
    # The database each adapter reports, and how its statements mark their values.
    systems = {"postgres": ("postgresql", "$1"), "mysql": ("mysql", "%s")}
    trace_id, client_span_id, traceparent = _traceparent()
    async with httpx.AsyncClient(timeout=10) as client:
        response = await client.post(
            f"{traced_base}/graphql?debug=yes",
            json={"query": RESULTS, "variables": {"id": patient}},
            headers={
                "authorization": f"Bearer {demo_env.token('CLINICIAN', READER)}",
                "traceparent": traceparent,
            },
        )
    body = response.json()
    assert response.status_code == 200 and "errors" not in body, body
    pseudonym = body["data"]["testResults"]["patientPseudonym"]
    assert body["data"]["testResults"]["edges"], "the sample patient has results"

    found = await _trace(spans, trace_id)
    servers = [s for s in found if s.kind is SpanKind.SERVER]
    assert len(servers) == 1, [s.name for s in found]
    server = servers[0]
    assert server.name == "POST /graphql"
    assert server.parent is not None and server.parent.span_id == client_span_id
    assert server.parent.is_remote
    assert server.attributes is not None
    assert server.attributes["http.request.method"] == "POST"
    assert server.attributes["url.path"] == "/graphql"
    assert server.attributes["http.route"] == "/graphql"
    assert server.attributes["http.response.status_code"] == 200
    assert "debug=yes" not in _everything_said(server)
    assert not any("authorization" in k or "header" in k for k in server.attributes)
    assert server.resource.attributes["service.version"] == "test"
    assert (
        server.resource.attributes["alliance.id"]
        == load_settings(demo_env.root / "alliance.toml").alliance_id
    )
    assert server.resource.attributes["service.name"]

    operations = [s for s in found if s.name.startswith("graphql")]
    assert len(operations) == 1, [s.name for s in operations]
    operation = operations[0]
    assert operation.name == "graphql query PatientResults"
    assert operation.parent is not None and operation.parent.span_id == server.context.span_id
    assert operation.attributes is not None
    assert operation.attributes["graphql.operation.type"] == "query"
    assert operation.attributes["graphql.operation.name"] == "PatientResults"
    assert operation.attributes["graphql.document.hash"] == tracing.document_hash(RESULTS)
    assert not any(
        k.startswith("graphql.document") and k != "graphql.document.hash"
        for k in operation.attributes
    )

    resolvers = [s for s in found if s.name == "Query.testResults"]
    assert len(resolvers) == 1
    fan_out = resolvers[0]
    assert fan_out.parent is not None and fan_out.parent.span_id == operation.context.span_id
    # Scalar and nested fields get no span of their own.
    assert not [s for s in found if s.name.startswith(("TestResult.", "Query.")) and s != fan_out]

    calls = [s for s in found if s.kind is SpanKind.CLIENT and _attr(s, "alliance.member")]
    assert all(_descends(found, c, operation) for c in calls)
    reads = [c for c in calls if _attr(c, "alliance.operation") == "page test_result"]
    # A member whose records could still reach the page is read a second time (page_in_rounds):
    # each read is a call of its own, traced alike.
    read = [_attr(c, "alliance.member") for c in reads]
    assert sorted(set(read)) == sorted(members), [c.name for c in reads]
    assert all(read.count(member) <= 2 for member in members), [c.name for c in reads]
    for call in reads:
        member = _attr(call, "alliance.member")
        assert call.name == f"{member} page test_result"
        assert call.parent is not None and call.parent.span_id == fan_out.context.span_id
        assert _attr(call, "alliance.adapter") == kinds[member]
        assert _attr(call, "alliance.outcome") == "ok"
        assert isinstance(_attr(call, "alliance.rows"), int)
        assert _attr(call, "alliance.error.code") is None
        if kinds[member] == "fhir":
            # The demo's FHIR hospital: HTTP client spans under the member call, no statements.
            requests = [d for d in _children(found, call) if _attr(d, "http.request.method")]
            assert requests, "the FHIR search is traced"
            for request in requests:
                assert request.kind is SpanKind.CLIENT
                assert _attr(request, "http.request.method") == "GET"
                assert _attr(request, "http.response.status_code") == 200
            continue
        system, placeholder = systems[kinds[member]]

        statements = [d for d in _children(found, call) if _attr(d, "db.system", "db.system.name")]
        for db in statements:
            assert db.kind is SpanKind.CLIENT
            assert _attr(db, "db.system", "db.system.name") == system
            assert _attr(db, "db.name", "db.namespace") == members[member]
            assert not _attr(db, "db.statement.parameters")
        # The adapter's one query (the pool's reset of the connection is not traced), with
        # placeholders for its values and the sqlcommenter comment naming the member call's span.
        (text,) = [_attr(db, "db.statement", "db.query.text") for db in statements]
        assert text.startswith("SELECT") and "test_result" in text and placeholder in text
        assert text.endswith(_comment(trace_id, call.context.span_id)), text

    # Not the raw resident ID, not the pseudonym: in no span of any trace.
    for span in spans.get_finished_spans():
        said = _everything_said(span)
        assert patient not in said, span.name
        assert pseudonym not in said, span.name


async def test_a_resident_id_in_a_get_requests_document_stays_out_of_spans(
    traced_base: str, spans: InMemorySpanExporter, demo_env: Demo
) -> None:
    patient = demo_env.info["sample_patients"][1]["resident_id"]
    trace_id, _, traceparent = _traceparent()
    document = (
        f'{{ testResults(patient: {{residentId: "{patient}"}}) {{ edges {{ node {{ id }} }} }} }}'
    )
    async with httpx.AsyncClient(timeout=10) as client:
        response = await client.get(
            f"{traced_base}/graphql",
            params={"query": document},
            headers={
                "authorization": f"Bearer {demo_env.token('CLINICIAN', READER)}",
                "traceparent": traceparent,
                "accept": "application/json",
            },
        )
    assert response.status_code == 200 and "errors" not in response.json(), response.text
    found = await _trace(spans, trace_id)
    server = next(s for s in found if s.kind is SpanKind.SERVER)
    assert server.name == "GET /graphql"
    operation = next(s for s in found if s.name.startswith("graphql"))
    assert operation.name == "graphql query"
    assert operation.attributes is not None
    assert operation.attributes["graphql.document.hash"] == tracing.document_hash(document)
    for span in found:
        assert patient not in _everything_said(span), span.name


async def test_a_websocket_connection_is_a_server_span_over_its_operations(
    traced_base: str, spans: InMemorySpanExporter, demo_env: Demo
) -> None:
    trace_id, client_span_id, traceparent = _traceparent()
    ws: AsyncWebSocketSession  # aconnect_ws's session type is left unsolved by its default
    async with (
        httpx.AsyncClient(base_url=traced_base, timeout=10) as client,
        aconnect_ws(
            "/graphql",
            client,
            subprotocols=["graphql-transport-ws"],
            headers={"traceparent": traceparent},
        ) as ws,
    ):
        token = demo_env.token("SECRETARIAT")
        await ws.send_json(
            {"type": "connection_init", "payload": {"authorization": f"Bearer {token}"}}
        )
        assert (await ws.receive_json())["type"] == "connection_ack"
        await ws.send_json({"id": "1", "type": "subscribe", "payload": {"query": REFERRALS}})
        assert (await ws.receive_json())["type"] == "next"
        assert (await ws.receive_json())["type"] == "complete"
    found = await _trace(spans, trace_id)
    (server,) = [s for s in found if s.kind is SpanKind.SERVER]
    assert server.name == "WEBSOCKET /graphql"
    assert server.parent is not None and server.parent.span_id == client_span_id
    operation = next(s for s in found if s.name == "graphql query Referrals")
    assert _descends(found, operation, server)
    assert any(_attr(s, "alliance.member") for s in found if _descends(found, s, operation))


async def test_a_failing_members_client_span_carries_its_code(
    spans: InMemorySpanExporter, demo_env: Demo, tmp_path: Any
) -> None:
    settings = load_settings(demo_env.root / "alliance.toml")
    members = [
        MemberSourceSettings(
            **{
                **m.model_dump(),
                # A socket directory with no server in it: the connection is refused at once.
                "dsn": f"postgresql://nobody@/exchange?host={tmp_path}",
                "dsn_env": None,
                "timeout_seconds": 0.5,
            }
        )
        if m.code == FAILING
        else m
        for m in settings.members
    ]
    app = create_app(settings.model_copy(update={"members": members}))
    trace_id, _, traceparent = _traceparent()
    async with serving(app) as base, httpx.AsyncClient(timeout=10) as client:
        response = await client.post(
            f"{base}/graphql",
            json={"query": REFERRALS},
            headers={
                "authorization": f"Bearer {demo_env.token('SECRETARIAT')}",
                "traceparent": traceparent,
            },
        )
        found = await _trace(spans, trace_id)
    assert error_codes(response.json()) == ["SOURCE_UNAVAILABLE"]

    failed = [
        s for s in found if s.kind is SpanKind.CLIENT and _attr(s, "alliance.member") == FAILING
    ]
    assert failed, [s.name for s in found]
    for span in failed:
        assert _attr(span, "alliance.error.code") == "SOURCE_UNAVAILABLE"
        assert _attr(span, "alliance.outcome") == "error"
        assert span.status.status_code is StatusCode.ERROR
        assert span.status.description == "SOURCE_UNAVAILABLE"
        # The exception is named, its message and stack are not exported.
        for event in span.events:
            assert set(event.attributes or {}) <= {"exception.type", "exception.escaped"}
    others = [
        s
        for s in found
        if s.kind is SpanKind.CLIENT and _attr(s, "alliance.member") not in (None, FAILING)
    ]
    assert others and all(_attr(s, "alliance.outcome") == "ok" for s in others)
    operation = next(s for s in found if s.name == "graphql query Referrals")
    assert operation.attributes is not None
    codes = operation.attributes["alliance.error.codes"]
    assert isinstance(codes, Sequence) and list(codes) == ["SOURCE_UNAVAILABLE"]
    assert operation.status.status_code is not StatusCode.ERROR, "partial success"


async def test_the_sqlcommenter_comment_reaches_postgresql(
    spans: InMemorySpanExporter, demo_env: Demo
) -> None:
    """What the member's server receives, seen by asyncpg's query logger on the one connection."""
    member = next(m for m in demo_env.info["members"] if m["code"] == READER)
    db = PostgresExchange(member["code"], member["dsn"], pool_max_size=1)
    logged: list[Any] = []
    try:
        pool = await db._pool_or_open()
        async with pool.acquire() as conn:
            conn.add_query_logger(logged.append)
        page = PageRequest(port.REFERRAL, ListQuery(parties=None, limit=1), ReferralFilter())
        counted = PageRequest(port.REFERRAL, ListQuery(parties=None, limit=1), with_total=True)

        await db.page(page)
        with tracing.tracer.start_as_current_span("asks a member") as span:
            await db.page(counted)
        await asyncio.sleep(0)  # query loggers are called soon after the query
    finally:
        await db.close()
    # The pool's own statements (resetting a released connection) are logged too: keep ours.
    sent = [entry.query for entry in logged if "referral" in entry.query]
    assert len(sent) == 3, sent
    untraced, *traced = sent
    assert "traceparent" not in untraced, "no comment without a recorded span"
    ctx = span.get_span_context()
    for text in traced:
        # The flags are the span's: sampled, and random when the SDK made the trace id.
        assert text.endswith(f" {_comment(ctx.trace_id, ctx.span_id, ctx.trace_flags)}"), text


def test_json_log_lines_carry_trace_and_span_ids(spans: InMemorySpanExporter) -> None:
    secret = "110105194912310021"
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("alliance_gateway.test_tracing")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    provider = trace.get_tracer_provider()
    try:
        logger.info("outside any span")
        tracer = provider.get_tracer("test")
        with tracer.start_as_current_span("logged") as span:
            logger.warning(
                "member source unavailable",
                extra={"member": "LHZX", "error": "ConnectionRefusedError"},
            )
            try:
                raise ValueError(f"{secret} is not valid")
            except ValueError:
                logger.exception("unexpected error in a resolver", extra={"graphql_path": ["a", 0]})
        access = logging.getLogger("uvicorn.access")
        record = access.makeRecord(
            "uvicorn.access",
            logging.INFO,
            __file__,
            1,
            '%s - "%s %s HTTP/%s" %d',
            ("127.0.0.1:5000", "GET", "/graphql?query=%7BresidentId%7D", "1.1", 200),
            None,
        )
        handler.handle(record)
    finally:
        logger.removeHandler(handler)
    outside, inside, failed, access_line = (
        json.loads(line) for line in stream.getvalue().splitlines()
    )

    assert outside["message"] == "outside any span" and outside["level"] == "INFO"
    assert "trace_id" not in outside and "span_id" not in outside
    ctx = span.get_span_context()
    assert (
        inside["trace_id"] == f"{ctx.trace_id:032x}" and inside["span_id"] == f"{ctx.span_id:016x}"
    )
    assert inside["logger"] == "alliance_gateway.test_tracing"
    assert inside["level"] == "WARNING" and inside["message"] == "member source unavailable"
    assert inside["member"] == "LHZX" and inside["error"] == "ConnectionRefusedError"
    assert inside["time"].endswith("Z")
    assert failed["exception"]["type"] == "builtins.ValueError"
    assert failed["graphql_path"] == ["a", 0] and failed["trace_id"] == inside["trace_id"]
    assert "test_json_log_lines_carry_trace_and_span_ids" in failed["exception"]["stack"]
    assert secret not in stream.getvalue(), "exception messages are not logged"
    assert access_line["message"] == '127.0.0.1:5000 - "GET /graphql HTTP/1.1" 200'


def test_tracing_follows_the_otel_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    assert tracing.span_exporters({}) == []
    assert tracing.span_exporters({"OTEL_TRACES_EXPORTER": "none"}) == []
    endpoint = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}
    (otlp,) = tracing.span_exporters(endpoint)
    assert type(otlp).__module__.startswith("opentelemetry.exporter.otlp.proto.http")
    assert tracing.span_exporters({**endpoint, "OTEL_SDK_DISABLED": "true"}) == []
    both = tracing.span_exporters({"OTEL_TRACES_EXPORTER": "console,otlp"})
    assert [type(e).__name__ for e in both] == ["ConsoleSpanExporter", "OTLPSpanExporter"]
    with pytest.raises(tracing.TracingConfigError, match="jaeger"):
        tracing.span_exporters({"OTEL_TRACES_EXPORTER": "jaeger"})
    with pytest.raises(tracing.TracingConfigError, match="http/json"):
        tracing.span_exporters({**endpoint, "OTEL_EXPORTER_OTLP_PROTOCOL": "http/json"})
    try:
        import opentelemetry.exporter.otlp.proto.grpc  # noqa: F401
    except ImportError:
        with pytest.raises(tracing.TracingConfigError, match="grpc"):
            tracing.span_exporters({**endpoint, "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"})

    monkeypatch.delenv("OTEL_SERVICE_NAME", raising=False)
    monkeypatch.delenv("OTEL_RESOURCE_ATTRIBUTES", raising=False)
    resource = tracing.tracing_resource("1.2.3", "alliance-7").attributes
    assert resource["service.name"] == "alliance-gateway"
    assert resource["service.version"] == "1.2.3" and resource["alliance.id"] == "alliance-7"
    monkeypatch.setenv("OTEL_SERVICE_NAME", "gateway-eu")
    monkeypatch.setenv("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment=test,alliance.id=x")
    resource = tracing.tracing_resource("1.2.3", "alliance-7").attributes
    assert resource["service.name"] == "gateway-eu"
    assert resource["deployment.environment"] == "test" and resource["alliance.id"] == "x"


def test_setting_up_twice_keeps_one_provider(spans: InMemorySpanExporter) -> None:
    first = tracing.configure_tracing("test", "a")
    assert first is not None and tracing.configure_tracing("test", "a") is first
    tracing.instrument_asyncpg()  # a second time: no double instrumentation
