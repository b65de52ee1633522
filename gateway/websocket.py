"""GraphQL over WebSocket (graphql-transport-ws), authenticated like HTTP: a bearer token in the
upgrade request's Authorization header or in connection_init's payload. A connection lives no
longer than its token: it is closed with 4401 "Token expired" when the token expires."""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, fields
from typing import Any

import strawberry
from starlette.requests import Request
from starlette.websockets import WebSocket, WebSocketState
from strawberry.asgi import GraphQL
from strawberry.exceptions import ConnectionRejectionError
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL

from gateway.auth import AuthenticationError, NoGatewayRoleError, TokenVerifier
from gateway.graphql_http import ContextFactory
from resolvers.context import RequestContext

TOKEN_EXPIRED_CLOSE = 4401


@dataclass(eq=False)
class WebSocketContext(RequestContext):
    websocket: WebSocket | None = None
    expiry: asyncio.Task[None] | None = None


def _open(websocket: WebSocket) -> bool:
    return (
        websocket.client_state is WebSocketState.CONNECTED
        and websocket.application_state is WebSocketState.CONNECTED
    )


async def _close_when_expired(websocket: WebSocket, expires_at: float) -> None:
    # Wakes now and then to end with a connection closed earlier, rather than sleep for hours.
    while _open(websocket):
        left = expires_at - time.time()
        if left <= 0:
            with contextlib.suppress(RuntimeError, OSError):
                await websocket.close(TOKEN_EXPIRED_CLOSE, "Token expired")
            return
        await asyncio.sleep(min(left, 30.0))


class GraphQLWebSocket(GraphQL[RequestContext, None]):
    def __init__(
        self,
        schema: strawberry.Schema,
        verifier: TokenVerifier,
        make_context: ContextFactory,
        *,
        keep_alive_seconds: float = 15.0,
    ) -> None:
        super().__init__(
            schema,
            graphql_ide=None,
            subscription_protocols=(GRAPHQL_TRANSPORT_WS_PROTOCOL,),
            keep_alive=True,
            keep_alive_interval=keep_alive_seconds,
        )
        self._verifier = verifier
        self._make_context = make_context

    async def get_context(self, request: Request | WebSocket, response: Any) -> RequestContext:
        base = self._make_context(None)
        context = WebSocketContext(
            **{f.name: getattr(base, f.name) for f in fields(RequestContext) if f.init},
            websocket=request if isinstance(request, WebSocket) else None,
        )
        header = request.headers.get("authorization")
        if header:
            try:
                context.principal = await self._verifier.verify_header(header)
            except (AuthenticationError, NoGatewayRoleError):
                context.principal = None
        return context

    async def on_ws_connect(self, context: RequestContext) -> dict[str, object] | None:
        supplied = context.connection_params.get("authorization") or context.connection_params.get(
            "Authorization"
        )
        if isinstance(supplied, str):
            try:
                context.principal = await self._verifier.verify_header(supplied)
            except (AuthenticationError, NoGatewayRoleError) as e:
                raise ConnectionRejectionError(
                    {"code": "UNAUTHENTICATED", "message": str(e)}
                ) from None
        if context.principal is None:
            raise ConnectionRejectionError(
                {"code": "UNAUTHENTICATED", "message": "Send a bearer token in connection_init."}
            )
        expires_at = context.principal.expires_at
        if isinstance(context, WebSocketContext) and context.websocket and expires_at:
            context.expiry = asyncio.create_task(_close_when_expired(context.websocket, expires_at))
        return None
