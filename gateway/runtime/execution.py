"""How operations are executed: Strawberry's executor, with per-event state kept per event, and
each subscription event executed once per group of subscribers that share its result
(gateway/runtime/fanout.py)."""

from __future__ import annotations

from collections.abc import Awaitable, Hashable
from typing import Any, cast

from graphql import ExecutionResult, GraphQLObjectType
from graphql.pyutils import Path, Undefined, gather_with_cancel
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

from gateway.runtime import fanout, shared_queries
from gateway.runtime.leaf_fields import GroupedFields, LeafPlan, complete
from resolvers.context import RequestContext
from schema.events import ENVELOPES, Event

_UNKNOWN = object()


class GatewayExecutor(StrawberryGraphQLCoreExecutionContext):
    # Set on a subscription's executor at its first event, and copied into each event's.
    _group: Hashable = _UNKNOWN
    # Per selection of this operation (or event): its plan, and the selection kept alive so that
    # its id is not reused meanwhile (graphql-core memoizes selections the same way).
    _leaf_plans: dict[tuple[str, int], tuple[GroupedFields, LeafPlan | None]] | None = None

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
        # subscription grew by ~2.5 KB per event delivered, for as long as it lived. The leaf
        # plans are keyed the same way.
        executor = cast("GatewayExecutor", super().build_per_event_executor(payload))
        executor._relevant_sub_fields = {}
        executor._leaf_plans = None
        return executor

    def execute_fields(
        self,
        parent_type: GraphQLObjectType,
        source_value: Any,
        path: Path | None,
        grouped_field_set: Any,
        position_context: Any,
    ) -> Any:
        """graphql-core's, with the plain leaf fields of a selection completed in one step
        (gateway/runtime/leaf_fields.py). A deferred selection, or an operation with field
        middleware, keeps graphql-core's own."""
        middleware = self.middleware_manager
        if position_context is not None or (middleware is not None and middleware.middlewares):
            return super().execute_fields(
                parent_type, source_value, path, grouped_field_set, position_context
            )
        plans = self._leaf_plans
        if plans is None:
            plans = self._leaf_plans = {}
        key = (parent_type.name, id(grouped_field_set))
        known = plans.get(key)
        if known is None:
            known = plans[key] = (
                grouped_field_set,
                LeafPlan.of(self.schema, parent_type, grouped_field_set),
            )
        plan = known[1]
        if plan is None:
            return super().execute_fields(
                parent_type, source_value, path, grouped_field_set, position_context
            )
        results: dict[str, Any] = {}
        pending: list[str] = []
        is_awaitable = self.is_awaitable
        try:
            for response_name, part in plan.fields:
                if part is not None:
                    value = part if isinstance(part, str) else complete(part, source_value)
                    if value is not Undefined:
                        results[response_name] = value
                        continue
                result = self.execute_field(
                    parent_type,
                    source_value,
                    grouped_field_set[response_name],
                    Path(path, response_name, parent_type.name),
                    position_context,
                )
                if result is not Undefined:
                    results[response_name] = result
                    if is_awaitable(result):
                        pending.append(response_name)
        except Exception:
            if pending:
                self.settle_in_background([results[name] for name in pending])
            raise
        if not pending:
            return results

        async def settled() -> dict[str, Any]:
            values = await gather_with_cancel(*(results[name] for name in pending))
            results.update(zip(pending, values, strict=True))
            return results

        return settled()

    def execute_operation(self, serially: bool | None = None) -> Any:
        payload, context, group = self.root_value, self.context_value, self._group
        if isinstance(context, RequestContext):
            key = shared_queries.key_of(self.operation, self.variable_values.coerced, context)
            if key is not None:
                return shared_queries.IN_FLIGHT.execute(key, context, self._unshared)
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
