"""`FanOut`, the field extension declared on the root fields that ask members or the registry
(every mutation, and the queries that fan out): a span around the field's resolver, the parent of
the member calls beneath it. Other fields (scalars, nested objects) declare none and cost nothing.

Only the OpenTelemetry API, no SDK: gateway/tracing.py sets the SDK up when the OTEL_* environment
asks for it. Tracing off, there is no trace to join and the extension only passes the call on."""

from __future__ import annotations

from typing import Any

from opentelemetry import trace
from opentelemetry.trace import Status, StatusCode
from strawberry.extensions import FieldExtension
from strawberry.extensions.field_extension import AsyncExtensionResolver
from strawberry.types import Info

tracer = trace.get_tracer("alliance_gateway")


def error_label(error: BaseException) -> str:
    """A code or a type name, never a message."""
    code = getattr(error, "code", None)
    return str(getattr(code, "value", code)) if code is not None else type(error).__name__


class FanOut(FieldExtension):
    async def resolve_async(
        self, next_: AsyncExtensionResolver, source: Any, info: Info, **kwargs: Any
    ) -> Any:
        if not trace.get_current_span().get_span_context().is_valid:
            # Tracing off: the operation span is always there when it is on.
            return await next_(source, info, **kwargs)
        path = info.path
        parent = path.typename or ""
        with tracer.start_as_current_span(
            f"{parent}.{info.field_name}",
            attributes={
                "graphql.field.parent_type": parent,
                "graphql.field.name": info.field_name,
                "graphql.field.path": str(path.key),
            },
            record_exception=False,
            set_status_on_exception=False,
        ) as span:
            try:
                return await next_(source, info, **kwargs)
            except Exception as e:
                span.set_status(Status(StatusCode.ERROR, error_label(e)))
                raise
