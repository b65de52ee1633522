"""GraphQL over HTTP, as the GraphQL-over-HTTP specification asks: GET for queries only,
POST with a JSON body, `application/graphql-response+json` with its status codes, and
`application/json` for legacy clients."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import strawberry
from graphql import GraphQLError
from starlette.requests import Request
from starlette.responses import Response
from strawberry.schema.exceptions import CannotGetOperationTypeError, InvalidOperationTypeError
from strawberry.types.execution import ExecutionResult, PreExecutionError
from strawberry.types.graphql import OperationType

from gateway.auth import AuthenticationError, NoGatewayRoleError, TokenVerifier
from gateway.graphiql_page import GraphiQLPage
from gateway.load_shedding import OVERLOADED, RETRY_AFTER_SECONDS, AtCapacity, InFlight
from gateway.persisted import PersistedDocumentError, PersistedDocuments
from gateway.rate_limit import RATE_LIMITED, RateLimiter
from gateway.request_checks import (
    BODY,
    JSONBody,
    RequestRefused,
    check_document,
    check_json,
    echo,
    load_json,
)
from gateway.runtime.errors import publish_errors
from gateway.sse import event_stream, wants_event_stream
from resolvers.context import RequestContext
from resolvers.errors import ErrorCode
from resolvers.principal import Principal, Role

GRAPHQL_RESPONSE = "application/graphql-response+json"
JSON = "application/json"
MAX_BODY_BYTES = 1 << 20

# make_context(principal, explain=False)
ContextFactory = Callable[..., RequestContext]
EXPLAIN_HEADER = "x-alliance-explain"
# The request parameters the endpoint reads; GET query parameters it does not read are ignored.
PARAMETERS = ("query", "operationName", "variables", "extensions", "documentId")

log = logging.getLogger("alliance_gateway.http")


class RequestError(Exception):
    """A request the server cannot execute at all; answered with a status and one error."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        headers: dict[str, str] | None = None,
        extensions: dict[str, Any] | None = None,
    ):
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers or {}
        self.extensions = extensions or {}

    @classmethod
    def refused(cls, refusal: RequestRefused) -> RequestError:
        return cls(400, refusal.code, refusal.message, extensions=refusal.extensions)


def _error_body(
    code: str, message: str, extensions: dict[str, Any] | None = None
) -> dict[str, Any]:
    return {"errors": [{"message": message, "extensions": {**(extensions or {}), "code": code}}]}


def negotiate(accept: str | None) -> str:
    """The response media type, or RequestError 406 if the client accepts neither."""
    if not accept:
        return JSON
    weights: dict[str, float] = {}
    for part in accept.split(","):
        media, *params = (p.strip() for p in part.split(";"))
        q = 1.0
        for p in params:
            if p.startswith("q="):
                try:
                    q = float(p[2:])
                except ValueError:
                    q = 0.0
        weights[media.lower()] = max(q, weights.get(media.lower(), 0.0))
    if weights.get(GRAPHQL_RESPONSE, 0) > 0 and weights[GRAPHQL_RESPONSE] >= weights.get(JSON, 0):
        return GRAPHQL_RESPONSE
    if max(weights.get(m, 0) for m in (JSON, "application/*", "*/*")) > 0:
        return JSON
    raise RequestError(
        406, "NOT_ACCEPTABLE", f"Accept {GRAPHQL_RESPONSE} or {JSON}; this server answers no other."
    )


def _json_param(raw: Any, name: str) -> dict[str, Any] | None:
    """`variables` or `extensions`: a JSON object, or JSON text of one (GET). A body's have been
    checked with it (`_params`); text is read and checked here."""
    if raw is None or raw == "":
        return None
    if isinstance(raw, str):
        try:
            raw = load_json(raw, name, depth=2)
        except RequestRefused as e:
            raise RequestError.refused(e) from None
    if raw is not None and not isinstance(raw, dict):
        raise RequestError(400, "BAD_REQUEST", f"`{name}` must be a JSON object.")
    return raw


async def _params(request: Request, max_body_bytes: int = MAX_BODY_BYTES) -> dict[str, Any]:
    """The request's parameters, every string in them checked (gateway/request_checks.py)."""
    if request.method == "GET":
        params = {k: v for k, v in request.query_params.items() if k in PARAMETERS}
        try:
            for name, value in params.items():
                check_json(value, name)
        except RequestRefused as e:
            raise RequestError.refused(e) from None
        return params
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != JSON:
        raise RequestError(415, "UNSUPPORTED_MEDIA_TYPE", "POST a JSON body (application/json).")
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_body_bytes:
        raise RequestError(413, "PAYLOAD_TOO_LARGE", f"The body exceeds {max_body_bytes} bytes.")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > max_body_bytes:
            raise RequestError(
                413, "PAYLOAD_TOO_LARGE", f"The body exceeds {max_body_bytes} bytes."
            )
    try:
        params = load_json(bytes(body), BODY)
    except RequestRefused as e:
        raise RequestError.refused(e) from None
    if not isinstance(params, dict):
        raise RequestError(400, "BAD_REQUEST", "The body must be a JSON object (batching is off).")
    return params


def _is_request_error(result: ExecutionResult) -> bool:
    # Field errors always carry a path; errors without one stopped the whole request
    # (parse, validation, variable coercion).
    if isinstance(result, PreExecutionError):
        return True
    return result.data is None and all(not e.path for e in result.errors or [])


class GraphQLHTTPEndpoint:
    def __init__(
        self,
        schema: strawberry.Schema,
        verifier: TokenVerifier,
        make_context: ContextFactory,
        *,
        graphiql: GraphiQLPage | None,
        max_body_bytes: int = MAX_BODY_BYTES,
        persisted: PersistedDocuments | None = None,
        rate_limiter: RateLimiter | None = None,
        keep_alive_seconds: float = 15.0,
        max_in_flight: int = 128,
    ) -> None:
        self._schema = schema
        self._verifier = verifier
        self._make_context = make_context
        self._graphiql = graphiql
        self._max_body_bytes = max_body_bytes
        self._persisted = persisted or PersistedDocuments()
        self._rate_limiter = rate_limiter
        self._keep_alive = keep_alive_seconds
        self._in_flight = InFlight(max_in_flight)

    def _wants_ide(self, request: Request) -> bool:
        return (
            self._graphiql is not None
            and request.method == "GET"
            and "text/html" in request.headers.get("accept", "")
            and "query" not in request.query_params
        )

    async def __call__(self, request: Request) -> Response:
        if self._graphiql is not None and self._wants_ide(request):
            return self._graphiql.page()
        media_type = JSON
        try:
            if request.method not in ("GET", "POST"):
                raise RequestError(
                    405,
                    "METHOD_NOT_ALLOWED",
                    "Use GET for queries or POST.",
                    {"Allow": "GET, POST"},
                )
            streamed = wants_event_stream(request.headers.get("accept"))
            if not streamed:
                media_type = negotiate(request.headers.get("accept"))
            principal = await self._authenticate(request)
            self._take_token(principal)
            params = await _params(request, self._max_body_bytes)
            if streamed:
                return await self._stream(request, params, principal)
            with self._in_flight.admitted():
                result = await self._execute(request, params, principal)
        except AtCapacity:
            return JSONBody(
                _error_body(
                    OVERLOADED,
                    f"The gateway is at capacity ({self._in_flight.limit} operations at once); "
                    f"retry after {RETRY_AFTER_SECONDS} s.",
                ),
                503,
                headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
                media_type=media_type,
            )
        except RequestError as e:
            return JSONBody(
                _error_body(e.code, e.message, e.extensions),
                e.status,
                headers=e.headers,
                media_type=media_type,
            )
        except Exception:
            # A failure of the gateway's own, still answered in JSON; the log has the stack (and,
            # as every log line, no exception message: gateway/logs.py).
            log.exception("unexpected failure serving a GraphQL request")
            return JSONBody(
                _error_body(
                    ErrorCode.INTERNAL_SERVER_ERROR,
                    "Internal error: the gateway could not serve this request. Operations has "
                    "the details.",
                ),
                500,
                media_type=media_type,
            )
        # Errors raised before the operation starts (parse errors) bypass schema extensions.
        publish_errors(result)
        status = 400 if media_type == GRAPHQL_RESPONSE and _is_request_error(result) else 200
        body: dict[str, Any] = {}
        if result.errors:
            body["errors"] = [e.formatted for e in result.errors]
        if not isinstance(result, PreExecutionError):
            body["data"] = result.data
        if result.extensions:
            body["extensions"] = result.extensions
        return JSONBody(body, status, media_type=media_type)

    async def _authenticate(self, request: Request) -> Principal:
        try:
            return await self._verifier.verify_header(request.headers.get("authorization"))
        except AuthenticationError as e:
            raise RequestError(
                401,
                ErrorCode.UNAUTHENTICATED,
                str(e),
                {"WWW-Authenticate": 'Bearer realm="alliance-gateway"'},
            ) from None
        except NoGatewayRoleError as e:
            raise RequestError(403, ErrorCode.FORBIDDEN, str(e)) from None

    def _take_token(self, principal: Principal) -> None:
        if self._rate_limiter is None:
            return
        wait = self._rate_limiter.take(principal.subject)
        if wait is not None:
            raise RequestError(
                429,
                RATE_LIMITED,
                f"Too many requests from {echo(principal.subject)}: at most "
                f"{self._rate_limiter.rate:g} a second (bursts of {self._rate_limiter.burst}). "
                f"Retry after {wait} s.",
                {"Retry-After": str(wait)},
            )

    def _document(
        self, params: dict[str, Any], principal: Principal
    ) -> tuple[str, str | None, dict[str, Any] | None]:
        """The query (or the persisted document it names), operation name and extensions.
        PersistedDocumentError when a named document cannot be had."""
        extensions = _json_param(params.get("extensions"), "extensions")
        try:
            query = self._persisted.resolve(
                params.get("query"), extensions, params.get("documentId"), principal
            )
        except PersistedDocumentError as e:
            if e.status is not None:
                raise RequestError(e.status, e.code, e.message) from None
            raise
        if not isinstance(query, str) or not query.strip():
            raise RequestError(400, "BAD_REQUEST", "The request has no `query` string.")
        operation_name = params.get("operationName") or None
        if operation_name is not None and not isinstance(operation_name, str):
            raise RequestError(400, "BAD_REQUEST", "`operationName` must be a string.")
        try:
            check_document(query, operation_name)
        except RequestRefused as e:
            raise RequestError.refused(e) from None
        return query, operation_name, extensions

    async def _stream(
        self, request: Request, params: dict[str, Any], principal: Principal
    ) -> Response:
        """GraphQL over SSE: any operation, results as events (subscriptions: many)."""
        try:
            query, operation_name, extensions = self._document(params, principal)
        except PersistedDocumentError as e:
            raise RequestError(400, e.code, e.message) from None
        allowed = {OperationType.QUERY, OperationType.SUBSCRIPTION}
        if request.method == "POST":
            allowed.add(OperationType.MUTATION)
        results = await self._schema.stream(
            query,
            variable_values=_json_param(params.get("variables"), "variables"),
            context_value=self._make_context(principal),
            operation_name=operation_name,
            operation_extensions=extensions,
            allowed_operation_types=allowed,
        )
        return event_stream(
            results, keep_alive_seconds=self._keep_alive, expires_at=principal.expires_at
        )

    async def _execute(
        self, request: Request, params: dict[str, Any], principal: Principal
    ) -> ExecutionResult:
        try:
            query, operation_name, extensions = self._document(params, principal)
        except PersistedDocumentError as e:
            # The document could not be retrieved: a GraphQL request error (gateway/persisted.py).
            return PreExecutionError(
                data=None, errors=[GraphQLError(e.message, extensions={"code": e.code})]
            )
        allowed = (
            {OperationType.QUERY}
            if request.method == "GET"
            else {OperationType.QUERY, OperationType.MUTATION}
        )
        try:
            return await self._schema.execute(
                query,
                variable_values=_json_param(params.get("variables"), "variables"),
                context_value=self._make_context(
                    principal,
                    # Honoured for OPS only; anyone else's header is ignored without a word.
                    explain=request.headers.get(EXPLAIN_HEADER) == "1"
                    and principal.has_any(Role.OPS),
                ),
                operation_name=operation_name,
                allowed_operation_types=allowed,
                operation_extensions=extensions,
            )
        except InvalidOperationTypeError as e:
            if e.operation_type is OperationType.SUBSCRIPTION:
                raise RequestError(
                    400,
                    "BAD_REQUEST",
                    "Subscriptions are served over WebSocket (graphql-transport-ws) or as "
                    "Server-Sent Events (send Accept: text/event-stream).",
                ) from None
            raise RequestError(
                405,
                "METHOD_NOT_ALLOWED",
                "Mutations must be sent with POST, not GET.",
                {"Allow": "POST"},
            ) from None
        except CannotGetOperationTypeError as e:
            # check_document refuses these first, unless it could not lex the document.
            raise RequestError(
                400,
                "BAD_REQUEST",
                f"`operationName` is `{echo(e.operation_name)}`, but the document defines no "
                "operation of that name."
                if e.operation_name
                else "The request does not say which operation to run: pass `operationName`.",
                extensions={"parameter": "operationName"},
            ) from None
