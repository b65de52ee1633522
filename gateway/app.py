"""The Starlette application: GraphQL over HTTP and WebSocket, health endpoints, start-up."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import asyncpg
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route, WebSocketRoute

from adapters.registry.audit import AuditStore
from adapters.registry.events import EventStore, listen
from adapters.registry.hospital_cache import HospitalCache
from adapters.registry.migrate import apply_migrations
from adapters.registry.store import RegistryStore
from adapters.resilience import CircuitBreaker, Guard
from adapters.sources.kinds import open_source
from gateway import fhir_hooks, metrics
from gateway.access_log import AccessLog
from gateway.audit_flush import AuditFlush
from gateway.auth import TokenVerifier
from gateway.exports.route import routes as export_routes
from gateway.graphiql_page import GraphiQLPage
from gateway.graphql_http import GraphQLHTTPEndpoint
from gateway.persisted import PersistedDocuments
from gateway.rate_limit import RateLimiter
from gateway.runtime.build import build_schema
from gateway.runtime.limits import QueryLimits
from gateway.settings import Settings
from gateway.tracing import (
    GraphQLTracing,
    ServerSpans,
    configure_tracing,
    gateway_version,
)
from gateway.websocket import GraphQLWebSocket
from gateway.workers.change_watch import ChangeWatcher, WatchSettings
from gateway.workers.event_hub import EventHub, prune_forever
from resolvers.context import RequestContext
from resolvers.federation import Federation, MemberSource
from resolvers.principal import Principal

log = logging.getLogger("alliance_gateway")


async def open_registry_pool(settings: Settings) -> asyncpg.Pool:
    if not settings.registry.dsn:
        raise RuntimeError("No registry DSN: set [registry] dsn or ALLIANCE_REGISTRY__DSN.")
    pool = await asyncpg.create_pool(
        settings.registry.dsn,
        min_size=settings.registry.pool_min_size,
        max_size=settings.registry.pool_max_size,
        command_timeout=settings.registry.command_timeout_seconds,
        reset=_session_left_as_found,
    )
    assert pool is not None
    return pool


async def _session_left_as_found(conn: asyncpg.Connection) -> None:
    """A pooled registry connection is given back as it was taken: what holds session state (the
    change watch's advisory locks, LISTEN for the event hub and the wake relay) has a connection
    of its own, and the migration lock is released in `finally`. So no reset query is sent on
    every release, a round trip per operation; asyncpg still rolls back a transaction left open."""


@contextlib.asynccontextmanager
async def offline_context(
    settings: Settings, principal: Principal
) -> AsyncIterator[RequestContext]:
    """A request context outside any request, acting as `principal`, over the settings' registry
    and members: for work done before the gateway serves (the demo's seeded reports). Closed
    with the block."""
    pool = await open_registry_pool(settings)
    federation = build_federation(settings)
    try:
        ctx = RequestContext(
            registry=RegistryStore(pool),
            alliance_id=settings.alliance_id,
            rules=settings.rules,
            assessment=settings.assessment,
            federation=federation,
            audit_store=AuditStore(pool),
            principal=principal,
        )
        ctx.next_operation()
        yield ctx
    finally:
        await federation.close()
        await pool.close()


def hospital_cache(settings: Settings, pool: asyncpg.Pool) -> HospitalCache:
    dsn = settings.registry.dsn
    assert dsn is not None
    return HospitalCache(
        RegistryStore(pool).hospitals,
        lambda: asyncpg.connect(
            dsn, timeout=5, server_settings={"application_name": "alliance-gateway hospitals"}
        ),
    )


def build_federation(settings: Settings) -> Federation:
    members = []
    for m in settings.members:
        source = open_source(m.source_config())
        guard = Guard(
            m.code,
            timeout_seconds=m.timeout_seconds,
            max_concurrency=m.max_concurrency,
            breaker=CircuitBreaker(m.circuit_failure_threshold, m.circuit_reset_seconds),
            adapter=source.adapter,
        )
        members.append(MemberSource(m.code, source, guard))
    return Federation(members)


@contextlib.asynccontextmanager
async def run_events(
    settings: Settings, pool: asyncpg.Pool, federation: Federation
) -> AsyncIterator[tuple[EventStore, EventHub, ChangeWatcher | None]]:
    """The replica's event hub, its share of the members' change watch, and log retention."""
    config, dsn = settings.events, settings.registry.dsn
    assert dsn is not None
    store = EventStore(pool, settings.alliance_id)
    hub = EventHub(
        store,
        lambda wake: listen(dsn, wake),
        fallback_poll_seconds=config.hub_fallback_poll_seconds,
        page_size=config.replay_page,
        queue_capacity=config.subscriber_queue,
    )
    await hub.start()
    watcher: ChangeWatcher | None = None
    if config.watch and federation.members:
        feeds = [m.source.change_feed() for m in federation.members.values()]
        fhir_hooks.attach(settings, feeds)
        watcher = ChangeWatcher(
            settings.alliance_id,
            lambda: asyncpg.connect(dsn, timeout=5),
            store,
            feeds,
            WatchSettings(
                poll_interval_seconds=config.poll_interval_seconds,
                notify_fallback_seconds=config.notify_fallback_seconds,
                overlap_seconds=config.overlap_seconds,
                claim_interval_seconds=config.claim_interval_seconds,
            ),
        )
        watcher.start()
    retention = timedelta(days=config.retention_days)
    pruning = asyncio.create_task(
        prune_forever(store, retention, min(retention / 10, timedelta(hours=1)))
    )
    try:
        yield store, hub, watcher
    finally:
        pruning.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await pruning
        if watcher is not None:
            await watcher.stop()
        await hub.stop()


def create_app(settings: Settings) -> Starlette:
    state: dict[str, Any] = {}
    metrics.setup_metrics(settings.alliance_id)
    # Off (None) unless the OTEL_* environment points somewhere: then no span work per request.
    tracing = configure_tracing(gateway_version(), settings.alliance_id) is not None
    schema = build_schema(
        introspection=settings.introspection,
        limits=QueryLimits(
            max_depth=settings.limits.max_depth,
            max_aliases=settings.limits.max_aliases,
            max_tokens=settings.limits.max_tokens,
            max_cost=settings.limits.max_cost,
        ),
        extensions_before=[
            AuditFlush,
            *([GraphQLTracing] if tracing else []),
            metrics.OperationMetrics,
            metrics.ExplainFederation,
        ],
    )
    verifier = TokenVerifier(settings.auth)
    federation = build_federation(settings)
    linkage_key = settings.linkage_key.get_secret_value().encode() if settings.linkage_key else None

    def make_context(principal: Principal | None, explain: bool = False) -> RequestContext:
        store = state["registry"]
        return RequestContext(
            registry=store,
            alliance_id=settings.alliance_id,
            rules=settings.rules,
            assessment=settings.assessment,
            federation=federation,
            audit_store=state["audit"],
            event_store=state["events"],
            event_hub=state["hub"],
            linkage_key=linkage_key,
            principal=principal,
            explain=explain,
        )

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        pool = await open_registry_pool(settings)
        async with pool.acquire() as conn:
            applied = await apply_migrations(conn)
        if applied:
            log.info("registry migrated to %s", applied[-1])
        hospitals = hospital_cache(settings, pool)
        await hospitals.start()
        state["registry"] = RegistryStore(pool, hospitals)
        state["audit"] = AuditStore(pool)
        async with run_events(settings, pool, federation) as (store, hub, watcher):
            state["events"], state["hub"], state["watcher"] = store, hub, watcher
            watched = metrics.watch(federation, pool)
            try:
                yield
            finally:
                watched.close()
                await hospitals.stop()
                await federation.close()
        await pool.close()

    async def healthz(request: Request) -> JSONResponse:
        return JSONResponse({"status": "alive"})

    async def readyz(request: Request) -> JSONResponse:
        try:
            await state["registry"].ping()
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, KeyError, TimeoutError):
            return JSONResponse({"status": "unavailable", "registry": "unreachable"}, 503)
        watcher = state.get("watcher")
        return JSONResponse(
            {
                "status": "ready",
                "registry": "reachable",
                # The members whose hospitals' own changes this replica is turning into events.
                "watching": sorted(watcher.held) if watcher else [],
                "subscriptions": state["hub"].subscriber_count,
            }
        )

    limit = settings.rate_limit
    graphiql = (
        GraphiQLPage(
            settings.graphiql_assets,
            demo_tokens=settings.graphiql_demo_tokens,
            gateway_version=gateway_version(),
        )
        if settings.graphiql
        else None
    )
    http = GraphQLHTTPEndpoint(
        schema,
        verifier,
        make_context,
        graphiql=graphiql,
        max_body_bytes=settings.limits.max_body_bytes,
        persisted=PersistedDocuments.load(
            settings.persisted_documents.manifest,
            settings.persisted_documents.required_for_roles,
        ),
        keep_alive_seconds=settings.events.keep_alive_seconds,
        max_in_flight=settings.limits.max_in_flight,
        rate_limiter=(
            RateLimiter(limit.requests_per_second, limit.burst) if limit.enabled else None
        ),
    )
    ws = GraphQLWebSocket(
        schema, verifier, make_context, keep_alive_seconds=settings.events.keep_alive_seconds
    )
    return Starlette(
        routes=[
            Route(
                "/graphql",
                metrics.count_refusals(http.__call__),
                methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
            ),
            WebSocketRoute("/graphql", ws),
            *(graphiql.routes() if graphiql is not None else []),
            Route("/healthz", healthz),
            Route("/readyz", readyz),
            Route("/metrics", metrics.metrics_endpoint),
            *fhir_hooks.routes(settings, state),
            *export_routes(verifier, make_context),
        ],
        lifespan=lifespan,
        # The access line inside the request's span, so that it names the trace.
        middleware=[*([Middleware(ServerSpans)] if tracing else []), Middleware(AccessLog)],
    )
