"""Metrics, and the explanation of a request's member calls.

One MeterProvider per process (OpenTelemetry allows only one global provider, and Prometheus one
collector per registry): a Prometheus reader behind `/metrics`, plus an OTLP exporter when the
standard `OTEL_*` variables ask for one. Every app built in the process registers what it can
observe (its members' circuit breakers, its pools) for the life of its lifespan, so tests that
build several apps each see their own; where two live apps name the same member, the newer wins.

Instruments (OpenTelemetry names; Prometheus translates dots to underscores and adds the unit):
- alliance.graphql.requests, alliance.graphql.request.duration (ms): by operation name (at most
  MAX_OPERATION_NAMES of them, each cut to MAX_LABEL_CHARS and a hash), type and
  outcome (success | partial | error | refused), recorded by `OperationMetrics`; requests refused
  before an operation starts (401, 403, 406, 413, 415, ...) by `count_refusals`.
- alliance.member.call.duration (ms), alliance.member.call.errors: recorded by adapters/observe.py.
- alliance.member.circuit.state: 0 closed, 1 half-open, 2 open, per member.
- db.client.connection.count (state used | idle) and db.client.connection.max, per pool: the
  registry's and each member's (0 until a member's pool has been created).

Not yet: open subscriptions and event lag (the gateway has no subscriptions yet).

`ExplainFederation` adds `extensions.federation` for OPS principals who asked for it (header
`X-Alliance-Explain: 1`): each member call of the operation, and per DataLoader its loads, cache
hits, batches and keys."""

from __future__ import annotations

import hashlib
import logging
import os
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

import asyncpg
from graphql import GraphQLError, OperationDefinitionNode
from opentelemetry import metrics
from opentelemetry.metrics import CallbackOptions, Observation
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import MetricReader
from prometheus_client import REGISTRY
from prometheus_client.exposition import choose_encoder
from starlette.requests import Request
from starlette.responses import Response
from strawberry.exceptions import MissingQueryError
from strawberry.extensions import SchemaExtension
from strawberry.schema.exceptions import CannotGetOperationTypeError, InvalidOperationTypeError
from strawberry.types.execution import ExecutionContext, PreExecutionError

from adapters import observe
from adapters.resilience import CircuitState
from adapters.sources.port import PoolStats
from gateway.tracing import gateway_version, tracing_resource
from resolvers.context import RequestContext
from resolvers.federation import Federation
from resolvers.principal import Role

log = logging.getLogger("alliance_gateway.metrics")

_meter = metrics.get_meter("alliance_gateway.graphql")
requests = _meter.create_counter(
    "alliance.graphql.requests", description="GraphQL requests, by operation and outcome."
)
request_duration = _meter.create_histogram(
    "alliance.graphql.request.duration",
    unit="ms",
    description="Time from parsing a GraphQL request to its result, by operation and outcome.",
)

CIRCUIT_VALUES = {CircuitState.CLOSED: 0, CircuitState.HALF_OPEN: 1, CircuitState.OPEN: 2}
ANONYMOUS = "(anonymous)"
NOT_PARSED = "(unparsed)"
UNKNOWN = "(unknown)"
OTHER = "(other)"
# Operation names come from clients: past this many distinct names, the rest count as OTHER,
# and a name longer than MAX_LABEL_CHARS is cut to that and a hash of the whole (`_label`).
MAX_OPERATION_NAMES = 200
MAX_LABEL_CHARS = 64
# Errors that say the client's request was refused rather than that the gateway failed it.
REFUSAL_CODES = frozenset(
    {
        "UNAUTHENTICATED",
        "FORBIDDEN",
        "BAD_USER_INPUT",
        "GRAPHQL_PARSE_FAILED",
        "GRAPHQL_VALIDATION_FAILED",
    }
)


# -- the provider, once per process -------------------------------------------------------------

_provider: MeterProvider | None = None


def _exporters() -> set[str]:
    raw = os.environ.get("OTEL_METRICS_EXPORTER", "")
    return {e.strip().lower() for e in raw.split(",") if e.strip()}


def _push_readers() -> list[MetricReader]:
    """Readers that push, as OTEL_METRICS_EXPORTER (or else an OTLP endpoint) asks."""
    from opentelemetry.sdk.metrics.export import (
        ConsoleMetricExporter,
        PeriodicExportingMetricReader,
    )

    wanted = _exporters()
    if not wanted and (
        os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
        or os.environ.get("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT")
    ):
        wanted = {"otlp"}
    readers: list[MetricReader] = []
    if "otlp" in wanted:
        readers.append(PeriodicExportingMetricReader(_otlp_exporter()))
    if "console" in wanted:
        readers.append(PeriodicExportingMetricReader(ConsoleMetricExporter()))
    return readers


def _otlp_exporter() -> Any:
    protocol = (
        os.environ.get("OTEL_EXPORTER_OTLP_METRICS_PROTOCOL")
        or os.environ.get("OTEL_EXPORTER_OTLP_PROTOCOL")
        or "http/protobuf"
    )
    if protocol == "grpc":
        try:
            from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import (
                OTLPMetricExporter as GrpcExporter,
            )

            return GrpcExporter()
        except ImportError:
            log.warning("OTLP over gRPC needs the `grpc` extra; exporting over http/protobuf")
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter

    return OTLPMetricExporter()


def setup_metrics(alliance_id: str) -> None:
    """Install the process's MeterProvider, once; later calls (more apps) change nothing."""
    global _provider
    if _provider is not None:
        return
    if os.environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return
    from opentelemetry.exporter.prometheus import PrometheusMetricReader

    readers: list[MetricReader] = [PrometheusMetricReader(), *_push_readers()]
    # The same resource as the traces: service.name, service.version, alliance.id.
    resource = tracing_resource(gateway_version(), alliance_id)
    _provider = MeterProvider(metric_readers=readers, resource=resource)
    metrics.set_meter_provider(_provider)
    meter = _provider.get_meter("alliance_gateway.state")
    meter.create_observable_gauge(
        "alliance.member.circuit.state",
        callbacks=[_observe_circuits],
        description="Circuit breaker per member: 0 closed, 1 half-open, 2 open.",
    )
    meter.create_observable_up_down_counter(
        "db.client.connection.count",
        callbacks=[_observe_pool_connections],
        unit="{connection}",
        description="Open connections per pool, by state (used, idle).",
    )
    meter.create_observable_up_down_counter(
        "db.client.connection.max",
        callbacks=[_observe_pool_max],
        unit="{connection}",
        description="The most connections a pool may open.",
    )


async def metrics_endpoint(request: Request) -> Response:
    """Prometheus text exposition (or OpenMetrics, when the scraper asks for it)."""
    encoder, content_type = choose_encoder(request.headers.get("accept", ""))
    return Response(encoder(REGISTRY), headers={"Content-Type": content_type})


# -- what each app lets the callbacks observe ---------------------------------------------------


@dataclass(eq=False)
class Watched:
    federation: Federation
    registry_pool: asyncpg.Pool | None = None

    def close(self) -> None:
        if self in _watched:
            _watched.remove(self)


_watched: list[Watched] = []


def watch(federation: Federation, registry_pool: asyncpg.Pool | None = None) -> Watched:
    """Report this app's circuits and pools until `.close()` (the end of its lifespan)."""
    watched = Watched(federation, registry_pool)
    _watched.append(watched)
    return watched


def _pools() -> dict[str, PoolStats | None]:
    pools: dict[str, PoolStats | None] = {}
    # A snapshot: an OTLP reader collects from its own thread while apps come and go.
    for watched in list(_watched):
        registry = watched.registry_pool
        if registry is not None:
            pools["registry"] = PoolStats(
                registry.get_size(), registry.get_idle_size(), registry.get_max_size()
            )
        for code, member in watched.federation.members.items():
            # A source opens its pool on first use; until then there is nothing to report.
            pools[code] = member.source.pool_stats()
    return pools


def _pool_attributes(name: str) -> dict[str, str]:
    attributes = {"db.client.connection.pool.name": name}
    if name != "registry":
        attributes["alliance.member"] = name
    return attributes


def _observe_circuits(options: CallbackOptions) -> Iterable[Observation]:
    states: dict[str, int] = {}
    for watched in list(_watched):
        for code, member in watched.federation.members.items():
            states[code] = CIRCUIT_VALUES[member.guard.breaker.state]
    return [Observation(v, {"alliance.member": code}) for code, v in sorted(states.items())]


def _observe_pool_connections(options: CallbackOptions) -> Iterable[Observation]:
    observations = []
    for name, pool in sorted(_pools().items()):
        size = pool.size if pool is not None else 0
        idle = pool.idle if pool is not None else 0
        attributes = _pool_attributes(name)
        observations.append(
            Observation(size - idle, {**attributes, "db.client.connection.state": "used"})
        )
        observations.append(Observation(idle, {**attributes, "db.client.connection.state": "idle"}))
    return observations


def _observe_pool_max(options: CallbackOptions) -> Iterable[Observation]:
    return [
        Observation(pool.max_size if pool is not None else 0, _pool_attributes(name))
        for name, pool in sorted(_pools().items())
    ]


# -- requests -----------------------------------------------------------------------------------

_operation_names: set[str] = set()
# Set by `count_refusals` for one request: whether an operation was recorded for it.
_recorded: ContextVar[list[bool] | None] = ContextVar("alliance_request_recorded", default=None)


def _label(name: str) -> str:
    """A client's name as a label of bounded length: its first MAX_LABEL_CHARS characters and
    8 hex digits of its SHA-256 if it is longer (two long names rarely share a label)."""
    if len(name) <= MAX_LABEL_CHARS:
        return name
    digest = hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()[:8]
    return f"{name[:MAX_LABEL_CHARS]}~{digest}"


def _bounded_name(name: str | None) -> str:
    if not name:
        return ANONYMOUS
    name = _label(name)
    if name in _operation_names:
        return name
    if len(_operation_names) >= MAX_OPERATION_NAMES:
        return OTHER
    _operation_names.add(name)
    return name


def record_request(name: str, operation_type: str, outcome: str, duration_ms: float) -> None:
    attributes = {
        "graphql.operation.name": name,
        "graphql.operation.type": operation_type,
        "alliance.outcome": outcome,
    }
    requests.add(1, attributes)
    request_duration.record(duration_ms, attributes)
    seen = _recorded.get()
    if seen is not None:
        seen[0] = True


def outcome_of(result: object, failure: BaseException | None) -> str:
    """success, partial (some data and some errors), refused (the request was not acceptable),
    or error."""
    if failure is not None:
        refused = (
            GraphQLError,
            MissingQueryError,
            CannotGetOperationTypeError,
            InvalidOperationTypeError,
        )
        return "refused" if isinstance(failure, refused) else "error"
    if result is None:
        return "error"
    if isinstance(result, PreExecutionError):
        return "refused"
    errors = getattr(result, "errors", None) or []
    if not errors:
        return "success"
    data = getattr(result, "data", None)
    if isinstance(data, dict) and any(v is not None for v in data.values()):
        return "partial"
    codes = {(e.extensions or {}).get("code") for e in errors}
    return "refused" if codes <= REFUSAL_CODES else "error"


def _operation(ec: ExecutionContext) -> tuple[str, str]:
    """The executed operation's name and type, as labels: only names the document defines."""
    document = ec.graphql_document
    if document is None:
        return NOT_PARSED, NOT_PARSED
    name = ec.operation_name
    defined = {
        d.name.value if d.name else None
        for d in document.definitions
        if isinstance(d, OperationDefinitionNode)
    }
    if name not in defined:
        return UNKNOWN, UNKNOWN
    try:
        operation_type = ec.operation_type.value
    except RuntimeError:
        operation_type = UNKNOWN
    return _bounded_name(name), operation_type


class OperationMetrics(SchemaExtension):
    """Counts and times each operation by name, type and outcome."""

    def on_operation(self) -> Iterator[None]:
        started = time.perf_counter()
        failure: BaseException | None = None
        try:
            yield
        except BaseException as e:
            failure = e
            raise
        finally:
            name, operation_type = _operation(self.execution_context)
            record_request(
                name,
                operation_type,
                outcome_of(self.execution_context.result, failure),
                _since(started),
            )


def count_refusals(
    endpoint: Callable[[Request], Awaitable[Response]],
) -> Callable[[Request], Awaitable[Response]]:
    """Counts the requests answered with 4xx before any operation ran (authentication, media
    type, body size, ...) as refused, so every request shows up in alliance.graphql.requests."""

    async def counted(request: Request) -> Response:
        seen = [False]
        token = _recorded.set(seen)
        started = time.perf_counter()
        try:
            response = await endpoint(request)
        except BaseException:
            if not seen[0]:
                record_request(NOT_PARSED, NOT_PARSED, "error", _since(started))
            raise
        finally:
            _recorded.reset(token)
        if not seen[0] and 400 <= response.status_code < 500:
            record_request(NOT_PARSED, NOT_PARSED, "refused", _since(started))
        return response

    return counted


def _since(started: float) -> float:
    return (time.perf_counter() - started) * 1000


# -- explain ------------------------------------------------------------------------------------


@dataclass
class LoaderStats:
    loads: int = 0
    cache_hits: int = 0
    batches: int = 0
    keys: int = 0


@dataclass
class _Explanation:
    calls: list[observe.MemberCall] = field(default_factory=list)
    loaders: dict[str, LoaderStats] = field(default_factory=dict)


def explaining(context: object) -> bool:
    """Only an OPS principal who asked for it gets an explanation."""
    return (
        isinstance(context, RequestContext)
        and context.explain
        and context.principal is not None
        and context.principal.has_any(Role.OPS)
    )


def _count_loader(loader: Any, stats: LoaderStats) -> None:
    """Counts this request's loads, cache hits and batches by wrapping the instance's methods;
    only for an explained request, so no other request pays for it."""
    load, batch = loader.load, loader.batch_load_fn

    def counting_load(key: Any) -> Any:
        stats.loads += 1
        if loader.cache and loader.get_cache_key(key) in loader._cache:
            stats.cache_hits += 1
        return load(key)

    async def counting_batch(keys: Any) -> Any:
        stats.batches += 1
        stats.keys += len(keys)
        return await batch(keys)

    loader.load = counting_load
    loader.batch_load_fn = counting_batch


def _loaders(context: RequestContext) -> Iterator[tuple[str, Any]]:
    from aiodataloader import DataLoader

    for prefix, holder in (("member", context.member_loaders), ("registry", context.loaders)):
        for name, value in vars(holder).items():
            if isinstance(value, DataLoader):
                yield f"{prefix}.{name}", value


class ExplainFederation(SchemaExtension):
    """`extensions.federation`: every member call the operation made (member, adapter,
    operation, direct or by a DataLoader batch, duration, rows, outcome, SOURCE_* code), and per
    DataLoader its loads, cache hits, batches and keys."""

    _explanation: _Explanation | None = None

    def on_operation(self) -> Iterator[None]:
        context = self.execution_context.context
        if not explaining(context):
            yield
            return
        assert isinstance(context, RequestContext)
        explanation = _Explanation()
        for name, loader in _loaders(context):
            explanation.loaders[name] = stats = LoaderStats()
            _count_loader(loader, stats)
        self._explanation = explanation
        # Set inside the operation: every member call it makes, in whatever task, sees the list.
        token = observe.explained_calls.set(explanation.calls)
        try:
            yield
        finally:
            observe.explained_calls.reset(token)

    def get_results(self) -> dict[str, Any]:
        explanation = self._explanation
        if explanation is None:
            return {}
        return {
            "federation": {
                "calls": [
                    {
                        "member": c.member,
                        "adapter": c.adapter,
                        "operation": c.operation,
                        "asked": c.asked,
                        "via": c.via,
                        "durationMs": round(c.duration_ms, 2),
                        "rows": c.rows,
                        "outcome": c.outcome,
                        "code": c.code,
                    }
                    for c in explanation.calls
                ],
                "dataLoaders": [
                    {
                        "loader": name,
                        "loads": s.loads,
                        "cacheHits": s.cache_hits,
                        "batches": s.batches,
                        "keys": s.keys,
                    }
                    for name, s in explanation.loaders.items()
                    if s.loads
                ],
            }
        }
