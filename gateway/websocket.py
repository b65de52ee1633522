"""GraphQL over WebSocket (graphql-transport-ws), authenticated like HTTP: a bearer token in the
upgrade request's Authorization header or in connection_init's payload. A connection lives no
longer than its token: it is closed with 4401 "Token expired" when the token expires.

Input is held to HTTP's rules (gateway/request_checks.py): a message that cannot be read (not
JSON, not an object, nested too deeply, a `subscribe` without an id or a query string) closes the
connection with 4400, as the protocol asks for invalid messages; a readable `subscribe` whose
strings or operation choice are refused gets an `error` message with code BAD_REQUEST, and the
connection stays open."""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, fields
from typing import Any, cast

import strawberry
from starlette.requests import Request
from starlette.websockets import WebSocket, WebSocketState
from strawberry.asgi import GraphQL
from strawberry.exceptions import ConnectionRejectionError
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import (
    BaseGraphQLTransportWSHandler,
)
from strawberry.subscriptions.protocols.graphql_transport_ws.types import ErrorMessage, Message

from gateway.auth import AuthenticationError, NoGatewayRoleError, TokenVerifier
from gateway.graphql_http import ContextFactory
from gateway.request_checks import (
    MAX_JSON_DEPTH,
    NestedTooDeeply,
    RequestRefused,
    check_operation_request,
    dumps_json,
    load_json,
)
from gateway.runtime.fanout import next_message_text
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


@dataclass(frozen=True, slots=True)
class _Unreadable:
    """What `decode_json` returns for a message it cannot read: the close reason (a close frame's
    reason has at most 123 bytes)."""

    reason: str


def _invalid_subscribe(message: dict[str, Any]) -> str | None:
    """Why a subscribe message cannot be run at all, or None."""
    payload = message.get("payload")
    if not isinstance(payload, dict):
        return "subscribe needs a payload object"
    if not isinstance(payload.get("query"), str):
        return "subscribe needs payload.query, a string"
    if not isinstance(payload.get("operationName"), str | None):
        return "payload.operationName must be a string"
    for name in ("variables", "extensions"):
        if not isinstance(payload.get(name), dict | None):
            return f"payload.{name} must be an object"
    return None


class _TransportWS(BaseGraphQLTransportWSHandler[RequestContext, None]):
    """Strawberry's graphql-transport-ws handler, with the gateway's checks on every message."""

    async def handle_message(self, message: Any) -> None:
        if isinstance(message, _Unreadable):
            await self.handle_invalid_message(message.reason)
            return
        if not isinstance(message, dict):
            await self.handle_invalid_message("A message must be a JSON object")
            return
        kind = message.get("type")
        if kind in ("subscribe", "complete"):
            ident = message.get("id")
            if not isinstance(ident, str) or not ident:
                await self.handle_invalid_message(f"{kind} needs an id, a non-empty string")
                return
        if kind == "subscribe":
            invalid = _invalid_subscribe(message)
            if invalid is not None:
                await self.handle_invalid_message(invalid)
                return
            if self.connection_acknowledged and message["id"] not in self.operations:
                payload = message["payload"]
                try:
                    check_operation_request(
                        payload["query"],
                        payload.get("operationName"),
                        payload.get("variables"),
                        payload.get("extensions"),
                    )
                except RequestRefused as e:
                    await self.send_message(
                        ErrorMessage(id=message["id"], type="error", payload=[e.formatted()])
                    )
                    return
        await super().handle_message(cast(Message, message))


class GraphQLWebSocket(GraphQL[RequestContext, None]):
    graphql_transport_ws_handler_class = _TransportWS

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

    def decode_json(self, data: str | bytes) -> object:
        try:
            # Strings are checked per subscribe message (_TransportWS), so that a refused one
            # gets an error and the connection stays.
            return load_json(data, "message", strings=False)
        except NestedTooDeeply:
            return _Unreadable(f"Message nested too deeply (at most {MAX_JSON_DEPTH} levels)")
        except RequestRefused:
            return _Unreadable("WebSocket message must be valid JSON")

    def encode_json(self, data: object) -> str:
        shared = next_message_text(data)
        return shared if shared is not None else dumps_json(data)

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
