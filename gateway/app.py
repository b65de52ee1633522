"""The Starlette application: GraphQL over HTTP and WebSocket, health endpoints, start-up."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route, WebSocketRoute

from adapters.exchange.columns import ColumnMap
from adapters.exchange.postgres import ExchangeDatabase
from adapters.registry.audit import AuditStore
from adapters.registry.migrate import apply_migrations
from adapters.registry.store import RegistryStore
from adapters.resilience import CircuitBreaker, Guard
from gateway.audit_flush import AuditFlush
from gateway.auth import TokenVerifier
from gateway.graphql_http import GraphQLHTTPEndpoint
from gateway.settings import Settings
from gateway.websocket import GraphQLWebSocket
from resolvers.context import RequestContext
from resolvers.federation import Federation, MemberSource
from resolvers.loaders import RegistryLoaders
from resolvers.principal import Principal
from schema import build_schema

log = logging.getLogger("alliance_gateway")


async def open_registry_pool(settings: Settings) -> asyncpg.Pool:
    if not settings.registry.dsn:
        raise RuntimeError("No registry DSN: set [registry] dsn or ALLIANCE_REGISTRY__DSN.")
    pool = await asyncpg.create_pool(
        settings.registry.dsn,
        min_size=settings.registry.pool_min_size,
        max_size=settings.registry.pool_max_size,
        command_timeout=settings.registry.command_timeout_seconds,
    )
    assert pool is not None
    return pool


def build_federation(settings: Settings) -> Federation:
    members = []
    for m in settings.members:
        source = ExchangeDatabase(
            m.code,
            m.resolved_dsn(),
            columns=ColumnMap(m.columns),
            read_only=m.read_only,
            pool_max_size=m.pool_max_size,
            connect_timeout_seconds=m.timeout_seconds,
        )
        guard = Guard(
            m.code,
            timeout_seconds=m.timeout_seconds,
            max_concurrency=m.max_concurrency,
            breaker=CircuitBreaker(m.circuit_failure_threshold, m.circuit_reset_seconds),
        )
        members.append(MemberSource(m.code, source, guard))
    return Federation(members)


def create_app(settings: Settings) -> Starlette:
    state: dict[str, Any] = {}
    schema = build_schema(introspection=settings.introspection, extensions_before=[AuditFlush])
    verifier = TokenVerifier(settings.auth)
    federation = build_federation(settings)
    linkage_key = settings.linkage_key.get_secret_value().encode() if settings.linkage_key else None

    def make_context(principal: Principal | None) -> RequestContext:
        store = state["registry"]
        return RequestContext(
            registry=store,
            alliance_id=settings.alliance_id,
            rules=settings.rules,
            loaders=RegistryLoaders(store, settings.alliance_id),
            federation=federation,
            audit_store=state["audit"],
            linkage_key=linkage_key,
            principal=principal,
        )

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        pool = await open_registry_pool(settings)
        async with pool.acquire() as conn:
            applied = await apply_migrations(conn)
        if applied:
            log.info("registry migrated to %s", applied[-1])
        state["registry"] = RegistryStore(pool)
        state["audit"] = AuditStore(pool)
        try:
            yield
        finally:
            await federation.close()
            await pool.close()

    async def healthz(request: Request) -> JSONResponse:
        return JSONResponse({"status": "alive"})

    async def readyz(request: Request) -> JSONResponse:
        try:
            await state["registry"].ping()
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, KeyError, TimeoutError):
            return JSONResponse({"status": "unavailable", "registry": "unreachable"}, 503)
        return JSONResponse({"status": "ready", "registry": "reachable"})

    http = GraphQLHTTPEndpoint(schema, verifier, make_context, graphiql=settings.graphiql)
    ws = GraphQLWebSocket(schema, verifier, make_context)
    return Starlette(
        routes=[
            Route("/graphql", http.__call__, methods=["GET", "POST", "PUT", "PATCH", "DELETE"]),
            WebSocketRoute("/graphql", ws),
            Route("/healthz", healthz),
            Route("/readyz", readyz),
        ],
        lifespan=lifespan,
    )
