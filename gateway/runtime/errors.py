"""How failures appear in `errors`: a stable `extensions.code`, an actionable message, and never a
stack trace or SQL text."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

from graphql import GraphQLError
from strawberry.extensions import SchemaExtension
from strawberry.types.execution import PreExecutionError

from adapters.sources.errors import SourceError, SourceErrorCode
from resolvers.errors import ErrorCode, GatewayError

log = logging.getLogger("alliance_gateway.errors")

GRAPHQL_PARSE_FAILED = "GRAPHQL_PARSE_FAILED"
GRAPHQL_VALIDATION_FAILED = "GRAPHQL_VALIDATION_FAILED"


def _with_code(error: GraphQLError, message: str, extensions: dict[str, Any]) -> GraphQLError:
    return GraphQLError(
        message,
        nodes=error.nodes,
        source=error.source,
        positions=error.positions,
        path=error.path,
        extensions=extensions,
    )


def public_error(error: GraphQLError, *, before_execution: bool) -> GraphQLError:
    original = error.original_error
    if isinstance(original, GatewayError):
        return _with_code(error, original.message, {"code": original.code, **original.extensions})
    if isinstance(original, SourceError):
        return _with_code(
            error, original.message, {"code": original.code.value, "member": original.member}
        )
    if original is None or isinstance(original, GraphQLError):
        if before_execution:
            code = (
                GRAPHQL_PARSE_FAILED
                if error.message.startswith("Syntax Error")
                else (GRAPHQL_VALIDATION_FAILED)
            )
        else:
            # Variable and argument coercion failures: the message names the bad value's place.
            code = ErrorCode.BAD_USER_INPUT
        return _with_code(error, error.message, {**(error.extensions or {}), "code": code})
    if error.extensions and "code" in error.extensions:
        return error
    log.error(
        "unexpected error in a resolver",
        exc_info=(type(original), original, original.__traceback__),
        extra={"graphql_path": list(error.path or [])},
    )
    return _with_code(
        error,
        "Internal error: the gateway could not complete this field. Operations has the details.",
        {"code": ErrorCode.INTERNAL_SERVER_ERROR},
    )


def publish_errors(result: object) -> None:
    """Give every error of `result` its public form; errors that already have a code keep it."""
    errors = getattr(result, "errors", None)
    if errors:
        before = isinstance(result, PreExecutionError)
        result.errors = [  # type: ignore[attr-defined]
            e if (e.extensions or {}).get("code") else public_error(e, before_execution=before)
            for e in errors
        ]


_CIRCUIT_OPEN = SourceErrorCode.SOURCE_CIRCUIT_OPEN


def source_errors(failures: list[SourceError]) -> list[GraphQLError]:
    """One error per member that failed, whatever number of fields asked it (XCA's
    PartialSuccess): the data of the others is in `data`. Where the member's breaker opened
    during the operation, the failure that opened it is reported, not the refusals after it:
    which of the two finished first is the event loop's choice, the cause is not."""
    seen: dict[str, SourceError] = {}
    for failure in failures:
        kept = seen.get(failure.member)
        if kept is None or (kept.code is _CIRCUIT_OPEN and failure.code is not _CIRCUIT_OPEN):
            seen[failure.member] = failure
    return [
        GraphQLError(e.message, extensions={"code": e.code.value, "member": e.member})
        for e in seen.values()
    ]


class PublicErrors(SchemaExtension):
    def on_operation(self) -> Iterator[None]:
        yield
        self._publish(self.execution_context.result)

    def on_stream_result(self, result: Any) -> Iterator[None]:
        # Each event of a subscription is a result of its own, sent before the operation ends.
        self._publish(result)
        yield

    def _publish(self, result: Any) -> None:
        publish_errors(result)
        context = self.execution_context.context
        failures = getattr(getattr(context, "sources", None), "failures", None)
        if failures and result is not None and not isinstance(result, PreExecutionError):
            result.errors = [*(result.errors or []), *source_errors(failures)]
