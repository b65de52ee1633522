"""How operations are executed: Strawberry's executor, with per-event state kept per event, and
each subscription event executed once per group of subscribers that share its result
(gateway/runtime/fanout.py)."""

from __future__ import annotations

from collections.abc import Awaitable, Hashable
from typing import Any, cast

from graphql import ExecutionResult
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

from gateway.runtime import fanout
from resolvers.context import RequestContext
from schema.events import ENVELOPES, Event

_UNKNOWN = object()


class GatewayExecutor(StrawberryGraphQLCoreExecutionContext):
    # Set on a subscription's executor at its first event, and copied into each event's.
    _group: Hashable = _UNKNOWN

    def build_per_event_executor(self, payload: Any) -> Any:
        if self._group is _UNKNOWN:
            context = self.context_value
            self._group = (
                fanout.group_key(
                    self.operation,
                    self.fragment_definitions,
                    self.variable_values.coerced,
                    context,
                    ENVELOPES,
                )
                if isinstance(payload, Event) and isinstance(context, RequestContext)
                else None
            )
        # graphql-core 3.3 shares the subscription's memo of collected subfields with every
        # event's copy, and each event adds entries keyed by lists made for it alone: a
        # subscription grew by ~2.5 KB per event delivered, for as long as it lived.
        executor = super().build_per_event_executor(payload)
        executor._relevant_sub_fields = {}
        return executor

    def execute_operation(self, serially: bool | None = None) -> Any:
        payload, context, group = self.root_value, self.context_value, self._group
        if (
            group is None
            or group is _UNKNOWN
            or not isinstance(payload, Event)
            or not isinstance(context, RequestContext)
            or context.event_hub is None
        ):
            return super().execute_operation(serially)
        return fanout.results_for(context.event_hub).execute(
            group, payload.record.cursor, context, self._unshared
        )

    def _unshared(self) -> ExecutionResult | Awaitable[ExecutionResult]:
        # An event's result is never incremental: subscribe refuses @defer and @stream.
        return cast("ExecutionResult | Awaitable[ExecutionResult]", super().execute_operation())
