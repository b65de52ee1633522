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
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState
from strawberry.asgi import ASGIWebSocketAdapter, GraphQL
from strawberry.exceptions import ConnectionRejectionError
from strawberry.http.exceptions import WebSocketDisconnected
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import (
    BaseGraphQLTransportWSHandler,
    Operation,
)
from strawberry.subscriptions.protocols.graphql_transport_ws.types import (
    ConnectionInitMessage,
    ErrorMessage,
    Message,
)

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
from gateway.runtime import direct_delivery
from gateway.runtime.fanout import next_message_text
from resolvers.context import RequestContext

TOKEN_EXPIRED_CLOSE = 4401


@dataclass(eq=False)
class WebSocketContext(RequestContext):
    websocket: WebSocket | None = None
    # A timer rather than a task that sleeps: a connection lives for hours, and a sleeping task
    # with its coroutine costs a few KiB per connection where a timer costs a hundred bytes.
    expiry: asyncio.TimerHandle | None = None


def _open(websocket: WebSocket) -> bool:
    return (
        websocket.client_state is WebSocketState.CONNECTED
        and websocket.application_state is WebSocketState.CONNECTED
    )


# Closings under way, held so that none is collected before it has run.
_closing: set[asyncio.Task[None]] = set()


def _expire(websocket: WebSocket) -> None:
    if _open(websocket):
        task = asyncio.ensure_future(_close_expired(websocket))
        _closing.add(task)
        task.add_done_callback(_closing.discard)


async def _close_expired(websocket: WebSocket) -> None:
    with contextlib.suppress(RuntimeError, OSError):
        await websocket.close(TOKEN_EXPIRED_CLOSE, "Token expired")


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

    async def handle(self) -> None:
        """Strawberry's loop, reading messages without keeping the last one: on a subscriber's
        connection that is its `subscribe` message, text and parsed, for the connection's life."""
        self.on_request_accepted()
        socket = cast(ASGIWebSocketAdapter, self.websocket).ws
        try:
            while socket.application_state is not WebSocketState.DISCONNECTED:
                try:
                    message = self.view.decode_json(await socket.receive_text())
                except KeyError:
                    await self.handle_invalid_message("WebSocket message type must be text")
                    break
                await self.handle_message(message)
                del message
        except (WebSocketDisconnect, WebSocketDisconnected):
            pass
        finally:
            await self.shutdown()

    async def run_operation(self, operation: Operation[RequestContext, None]) -> None:
        # The operation's own task: what the hub may write for it directly, if it subscribes.
        socket = cast(ASGIWebSocketAdapter, self.websocket).ws
        offered = socket.scope.get("extensions", {}).get(direct_delivery.SCOPE_EXTENSION)
        if offered is not None:
            operations = self.operations
            direct_delivery.current.set(
                direct_delivery.DirectDelivery(
                    offered["writer"],
                    operation.id,
                    lambda: operations.get(operation.id) is operation,
                )
            )
        await super().run_operation(operation)

    async def handle_connection_init(self, message: ConnectionInitMessage) -> None:
        await super().handle_connection_init(message)
        timeout = self.connection_init_timeout_task
        if timeout is not None and not self.connection_timed_out:
            # Cancelled by the library on init; once it has ended, nothing of it is kept (a
            # cancelled task holds its exception, traceback and frames for as long as it is).
            await asyncio.wait((timeout,))
            self.connection_init_timeout_task = None

    async def shutdown(self) -> None:
        context = self.context
        if isinstance(context, WebSocketContext) and context.expiry is not None:
            context.expiry.cancel()
            context.expiry = None
        await super().shutdown()

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
        # The token has been read: not kept in memory for the connection's life.
        context.connection_params = {
            key: value
            for key, value in context.connection_params.items()
            if key not in ("authorization", "Authorization")
        }
        expires_at = context.principal.expires_at
        if isinstance(context, WebSocketContext) and context.websocket and expires_at:
            context.expiry = asyncio.get_running_loop().call_later(
                max(0.0, expires_at - time.time()), _expire, context.websocket
            )
        return None
