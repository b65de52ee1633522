"""Traces: the OpenTelemetry SDK set up from the standard OTEL_* environment variables, the HTTP
server span of every request and the GraphQL operation span; the root fields that fan out to members
declare a span of their own (schema/fan_out.py). The member calls beneath them (adapters/observe.py)
and the asyncpg database spans beneath those complete one trace per request.

Environment (the OpenTelemetry SDK's own names):
- OTEL_SDK_DISABLED=true: no tracing at all.
- OTEL_TRACES_EXPORTER: `otlp`, `console` or `none`, or a comma-separated list. Unset: `otlp` when
  an OTLP endpoint is set (OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT),
  otherwise tracing is off.
- OTEL_EXPORTER_OTLP_TRACES_PROTOCOL / OTEL_EXPORTER_OTLP_PROTOCOL: `http/protobuf` (default) or
  `grpc` (the optional `grpc` extra). Endpoint, headers, timeout, compression and certificate are
  read by the exporter itself (OTEL_EXPORTER_OTLP_[TRACES_]*), batching by the batch span processor
  (OTEL_BSP_*), sampling by the SDK (OTEL_TRACES_SAMPLER, OTEL_TRACES_SAMPLER_ARG), propagation by
  the API (OTEL_PROPAGATORS; W3C trace context and baggage by default).
- OTEL_SERVICE_NAME (default "alliance-gateway") and OTEL_RESOURCE_ATTRIBUTES, which win over the
  gateway's own resource attributes service.version and alliance.id.
- OTEL_SEMCONV_STABILITY_OPT_IN=database: the asyncpg spans use the stable attribute names.

Privacy: no span carries a variable value, a resolver argument, a query string, a request header
or a SQL parameter. What is exported also passes a filter that drops exception messages and stack
traces, in which a library may quote a value (asyncpg quotes a parameter it cannot encode)."""

from __future__ import annotations

import hashlib
import importlib.metadata
import logging
import os
import threading
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import wrapt
from opentelemetry import propagate, trace
from opentelemetry.propagators.textmap import Getter
from opentelemetry.sdk.resources import OTELResourceDetector, Resource
from opentelemetry.sdk.trace import Event, ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SimpleSpanProcessor,
    SpanExporter,
    SpanExportResult,
)
from opentelemetry.trace import SpanKind, Status, StatusCode
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from strawberry.extensions import SchemaExtension
from strawberry.types.execution import PreExecutionError

from schema.fan_out import error_label

log = logging.getLogger("alliance_gateway.tracing")

SERVICE_NAME = "alliance-gateway"
tracer = trace.get_tracer("alliance_gateway")


class TracingConfigError(ValueError):
    """The OTEL_* environment asks for something the gateway cannot do."""


def gateway_version() -> str:
    try:
        return importlib.metadata.version("alliance-gateway")
    except importlib.metadata.PackageNotFoundError:
        return "0.0.0+unknown"


# -- set-up -------------------------------------------------------------------------------------

_lock = threading.Lock()
_provider: TracerProvider | None = None
_asyncpg_instrumented = False


def _env(environ: Mapping[str, str], name: str) -> str:
    return environ.get(name, "").strip()


def span_exporters(environ: Mapping[str, str] | None = None) -> list[SpanExporter]:
    """The exporters the environment asks for; empty when tracing is off."""
    environ = os.environ if environ is None else environ
    if _env(environ, "OTEL_SDK_DISABLED").lower() == "true":
        return []
    names = [n.strip().lower() for n in _env(environ, "OTEL_TRACES_EXPORTER").split(",")]
    names = [n for n in names if n]
    if not names:
        # Unlike the SDK's default (otlp to localhost), tracing is off until it is pointed somewhere.
        endpoint = _env(environ, "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or _env(
            environ, "OTEL_EXPORTER_OTLP_ENDPOINT"
        )
        names = ["otlp"] if endpoint else []
    if "none" in names:
        return []
    exporters: list[SpanExporter] = []
    for name in dict.fromkeys(names):
        if name == "otlp":
            exporters.append(_otlp_exporter(environ))
        elif name == "console":
            exporters.append(ConsoleSpanExporter())
        else:
            raise TracingConfigError(
                f"OTEL_TRACES_EXPORTER={name!r} is not supported: use otlp, console or none."
            )
    return exporters


def _otlp_exporter(environ: Mapping[str, str]) -> SpanExporter:
    protocol = (
        _env(environ, "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
        or _env(environ, "OTEL_EXPORTER_OTLP_PROTOCOL")
        or "http/protobuf"
    ).lower()
    if protocol == "http/protobuf":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        return OTLPSpanExporter()
    if protocol == "grpc":
        try:
            from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (
                OTLPSpanExporter as GrpcSpanExporter,
            )
        except ImportError:
            raise TracingConfigError(
                "OTEL_EXPORTER_OTLP_PROTOCOL=grpc needs the optional `grpc` extra "
                "(opentelemetry-exporter-otlp-proto-grpc): install alliance-gateway[grpc], "
                "e.g. `uv sync --extra grpc`, or use http/protobuf."
            ) from None
        return GrpcSpanExporter()
    raise TracingConfigError(
        f"OTLP protocol {protocol!r} is not supported: use http/protobuf (default) or grpc."
    )


def tracing_resource(service_version: str, alliance_id: str) -> Resource:
    """service.name, service.version and alliance.id; OTEL_SERVICE_NAME and
    OTEL_RESOURCE_ATTRIBUTES win over them."""
    own = Resource.create(
        {
            "service.name": SERVICE_NAME,
            "service.version": service_version,
            "alliance.id": alliance_id,
        }
    )
    return own.merge(OTELResourceDetector().detect())


def configure_tracing(
    service_version: str, alliance_id: str, *, exporter: SpanExporter | None = None
) -> TracerProvider | None:
    """Sets up the SDK once per process from the environment; None when tracing is off.

    Calling it again returns the provider already set up (every app of a process shares it: the
    OpenTelemetry API allows one global provider). `exporter` adds that exporter, unbatched, to
    the provider, creating it if need be, whatever the environment says: for tests (an
    InMemorySpanExporter) and for embedding."""
    global _provider
    with _lock:
        if _provider is None:
            exporters = span_exporters()
            if not exporters and exporter is None:
                return None
            _provider = _install_provider(tracing_resource(service_version, alliance_id))
            for each in exporters:
                _provider.add_span_processor(BatchSpanProcessor(PrivacyFilter(each)))
            if exporters:
                log.info(
                    "tracing on",
                    extra={"exporters": [type(e).__name__ for e in exporters]},
                )
        if exporter is not None:
            _provider.add_span_processor(SimpleSpanProcessor(PrivacyFilter(exporter)))
        instrument_asyncpg()
        return _provider


def _install_provider(resource: Resource) -> TracerProvider:
    current = trace.get_tracer_provider()
    if isinstance(current, TracerProvider):
        # Someone set the SDK up before us (e.g. `opentelemetry-instrument`): use theirs, since
        # the API would ignore a second global provider.
        log.info("tracing: using the TracerProvider already installed in this process")
        return current
    provider = TracerProvider(resource=resource)
    trace.set_tracer_provider(provider)
    return provider


def instrument_asyncpg() -> None:
    """Database spans for every asyncpg query of the process: db.system postgresql, the database
    name and the statement text. Parameter values are never captured (capture_parameters=False:
    the statements use $n placeholders, the values stay out of the span)."""
    global _asyncpg_instrumented
    if _asyncpg_instrumented:
        return
    from opentelemetry.instrumentation.asyncpg import AsyncPGInstrumentor

    instrumentor = AsyncPGInstrumentor(capture_parameters=False)
    if not instrumentor.is_instrumented_by_opentelemetry:
        instrumentor.instrument()
        # A pool resets every connection it takes back (`SELECT pg_advisory_unlock_all(); ...`):
        # a span for each would double the database spans of every member call and say nothing.
        wrapt.wrap_function_wrapper("asyncpg.connection", "Connection.reset", _quiet)
    _asyncpg_instrumented = True


async def _quiet(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
    from opentelemetry.instrumentation.utils import suppress_instrumentation

    with suppress_instrumentation():
        return await wrapped(*args, **kwargs)


class PrivacyFilter(SpanExporter):
    """Exports spans without exception messages or stack traces, and with status descriptions cut
    to the error's type or code: a library may quote a value in an exception message."""

    def __init__(self, inner: SpanExporter) -> None:
        self.inner = inner

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return self.inner.export([_scrubbed(s) for s in spans])

    def shutdown(self) -> None:
        self.inner.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self.inner.force_flush(timeout_millis)


_EXCEPTION_KEPT = ("exception.type", "exception.escaped")


def _scrubbed(span: ReadableSpan) -> ReadableSpan:
    description = span.status.description
    exceptions = any(e.name == "exception" for e in span.events)
    if not exceptions and (description is None or ":" not in description):
        return span
    events = [
        Event(
            "exception",
            {k: v for k, v in (e.attributes or {}).items() if k in _EXCEPTION_KEPT},
            e.timestamp,
        )
        if e.name == "exception"
        else e
        for e in span.events
    ]
    status = span.status
    if description is not None and ":" in description:
        # "Type: message", as the SDK describes an exception leaving a span: the member call's
        # SOURCE_* code where it has one (the SDK overwrote the code the guard set), else the type.
        code = (span.attributes or {}).get("alliance.error.code")
        status = Status(status.status_code, str(code or description.split(":", 1)[0]))
    return ReadableSpan(
        name=span.name,
        context=span.context,
        parent=span.parent,
        resource=span.resource,
        attributes=span.attributes,
        events=events,
        links=span.links,
        kind=span.kind,
        status=status,
        start_time=span.start_time,
        end_time=span.end_time,
        instrumentation_scope=span.instrumentation_scope,
    )


# -- the HTTP server span -----------------------------------------------------------------------


class _HeaderGetter(Getter[list[tuple[bytes, bytes]]]):
    def get(self, carrier: list[tuple[bytes, bytes]], key: str) -> list[str] | None:
        name = key.lower().encode("latin-1")
        values = [v.decode("latin-1") for k, v in carrier if k.lower() == name]
        return values or None

    def keys(self, carrier: list[tuple[bytes, bytes]]) -> list[str]:
        return [k.decode("latin-1") for k, _ in carrier]


_headers = _HeaderGetter()


class ServerSpans:
    """ASGI middleware: one SERVER span per HTTP request and per WebSocket connection, continuing
    the client's trace context (W3C traceparent by default). It records the method, path, route
    and status, never the query string or a header."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        http = scope["type"] == "http"
        method = scope.get("method", "GET") if http else "WEBSOCKET"
        attributes: dict[str, Any] = {
            "url.path": scope.get("path", ""),
            "url.scheme": scope.get("scheme", "http" if http else "ws"),
            "network.protocol.version": scope.get("http_version", "1.1"),
        }
        if http:
            attributes["http.request.method"] = method
        parent = propagate.extract(scope.get("headers") or [], getter=_headers)
        with tracer.start_as_current_span(
            method,
            context=parent,
            kind=SpanKind.SERVER,
            attributes=attributes,
            record_exception=False,
            set_status_on_exception=False,
        ) as span:
            status: list[int] = []

            async def send_observed(message: Message) -> None:
                if message["type"] == "http.response.start":
                    status.append(message["status"])
                    _name_by_route(span, scope, method)
                elif message["type"] == "websocket.accept":
                    _name_by_route(span, scope, method)
                await send(message)

            try:
                await self.app(scope, receive, send_observed)
            except BaseException as e:
                span.set_attribute("error.type", type(e).__name__)
                span.set_status(Status(StatusCode.ERROR, type(e).__name__))
                if http and not status:
                    span.set_attribute("http.response.status_code", 500)
                raise
            if status:
                span.set_attribute("http.response.status_code", status[0])
                if status[0] >= 500:
                    span.set_status(Status(StatusCode.ERROR))


def _name_by_route(span: trace.Span, scope: Scope, method: str) -> None:
    # Starlette's router puts the matched route in the scope: `POST /graphql`, whatever the path's
    # spelling; an unmatched path leaves the span named by the method alone (bounded cardinality).
    route = getattr(scope.get("route"), "path", None)
    if route:
        span.set_attribute("http.route", route)
        span.update_name(f"{method} {route}")


# -- the GraphQL operation ----------------------------------------------------------------------


def document_hash(document: str) -> str:
    """SHA-256 of the document text, hex: the hash persisted-query manifests use."""
    return hashlib.sha256(document.encode()).hexdigest()


class GraphQLTracing(SchemaExtension):
    """The operation span ("graphql query Name": graphql.operation.name, graphql.operation.type,
    graphql.document.hash; never the document itself or a variable)."""

    def on_operation(self) -> Iterator[None]:
        with tracer.start_as_current_span(
            "graphql", record_exception=False, set_status_on_exception=False
        ) as span:
            try:
                yield
            except BaseException as e:
                span.set_status(Status(StatusCode.ERROR, error_label(e)))
                raise
            finally:
                if span.is_recording():
                    self._describe(span)

    def _describe(self, span: trace.Span) -> None:
        ctx = self.execution_context
        operation_type = None
        if ctx.graphql_document is not None:
            try:
                operation_type = ctx.operation_type.value
            except Exception:  # no such operation: the result's errors say so
                operation_type = None
        name = (ctx.operation_name or "")[:100] or None
        span.update_name(" ".join(p for p in ("graphql", operation_type, name) if p))
        if operation_type:
            span.set_attribute("graphql.operation.type", operation_type)
        if name:
            span.set_attribute("graphql.operation.name", name)
        if ctx.query:
            span.set_attribute("graphql.document.hash", document_hash(ctx.query))
        result = ctx.result
        errors = getattr(result, "errors", None) or []
        if errors:
            codes = sorted({str((e.extensions or {}).get("code", "UNKNOWN")) for e in errors})
            span.set_attribute("alliance.error.codes", codes)
            if isinstance(result, PreExecutionError) or getattr(result, "data", None) is None:
                span.set_status(Status(StatusCode.ERROR, codes[0]))
