"""GraphQL over WebSocket (graphql-transport-ws), authenticated like HTTP: a bearer token in the
upgrade request's Authorization header or in connection_init's payload."""

from __future__ import annotations

from typing import Any

import strawberry
from starlette.requests import Request
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.exceptions import ConnectionRejectionError
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL

from gateway.auth import AuthenticationError, NoGatewayRoleError, TokenVerifier
from gateway.graphql_http import ContextFactory
from resolvers.context import RequestContext


class GraphQLWebSocket(GraphQL):
    def __init__(
        self, schema: strawberry.Schema, verifier: TokenVerifier, make_context: ContextFactory
    ) -> None:
        super().__init__(
            schema,
            graphql_ide=None,
            subscription_protocols=(GRAPHQL_TRANSPORT_WS_PROTOCOL,),
            keep_alive=True,
            keep_alive_interval=15,
        )
        self._verifier = verifier
        self._make_context = make_context

    async def get_context(self, request: Request | WebSocket, response: Any) -> RequestContext:
        context = self._make_context(None)
        header = request.headers.get("authorization")
        if header:
            try:
                context.principal = await self._verifier.verify_header(header)
            except (AuthenticationError, NoGatewayRoleError):
                context.principal = None
        return context

    async def on_ws_connect(self, context: RequestContext) -> dict[str, object] | None:  # type: ignore[override]
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
        return None
