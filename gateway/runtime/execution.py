"""How operations are executed: Strawberry's executor, with
- plain fields executed in one step each (gateway/runtime/plain_fields.py);
- identical queries in flight executed once (gateway/runtime/shared_queries.py);
- each subscription event executed once per group of subscribers that share its result
  (gateway/runtime/fanout.py), with per-event state kept per event."""

from __future__ import annotations

from collections.abc import Awaitable, Hashable
from typing import Any, cast

from graphql import ExecutionResult, GraphQLObjectType
from graphql.execution.collect_fields import GroupedFieldSet
from graphql.pyutils import Path
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

from adapters.registry.records import EventRecord
from gateway.runtime import direct_delivery, fanout, plain_fields, shared_queries
from gateway.runtime.outcome import Outcome
from resolvers.context import RequestContext
from schema.events import ENVELOPES, Event

_UNKNOWN = object()


class GatewayExecutor(StrawberryGraphQLCoreExecutionContext):
    # Set on a subscription's executor at its first event, and copied into each event's.
    _group: Hashable = _UNKNOWN
    # Per selection of this operation (or event): its plan, and the selection kept alive so that
    # its id is not reused meanwhile (graphql-core memoizes selections the same way).
    _plans: dict[tuple[str, int], tuple[GroupedFieldSet, plain_fields.Plan | None]] | None = None
    _context_only: plain_fields.ContextOnly
    # An event's executor: the subscription's, which made it (and lives as long as it does).
    _subscription: GatewayExecutor

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
        # subscription grew by ~2.5 KB per event delivered, for as long as it lived. The plans
        # of plain fields are keyed the same way.
        executor = cast("GatewayExecutor", super().build_per_event_executor(payload))
        executor._relevant_sub_fields = {}
        executor._plans = None
        executor._subscription = self
        return executor

    def execute_fields(
        self,
        parent_type: GraphQLObjectType,
        source_value: Any,
        path: Path | None,
        grouped_field_set: Any,
        position_context: Any,
    ) -> Any:
        """graphql-core's, with the plain fields of a selection executed in one step each
        (gateway/runtime/plain_fields.py). A deferred selection, or an operation with field
        middleware, keeps graphql-core's own."""
        middleware = self.middleware_manager
        if position_context is not None or (middleware is not None and middleware.middlewares):
            return super().execute_fields(
                parent_type, source_value, path, grouped_field_set, position_context
            )
        plans = self._plans
        if plans is None:
            plans = self._plans = {}
            self._context_only = plain_fields.ContextOnly(self.context_value)
        key = (parent_type.name, id(grouped_field_set))
        known = plans.get(key)
        if known is None:
            known = plans[key] = (
                grouped_field_set,
                plain_fields.Plan.of(self.schema, parent_type, grouped_field_set),
            )
        plan = known[1]
        if plan is None:
            return super().execute_fields(
                parent_type, source_value, path, grouped_field_set, position_context
            )
        return plain_fields.execute_fields(
            self, parent_type, source_value, path, grouped_field_set, plan, self._context_only
        )

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
        return self._event_result(group, payload.record.cursor, context)

    async def _event_result(
        self, group: Hashable, cursor: int, context: RequestContext
    ) -> ExecutionResult:
        assert context.event_hub is not None
        results = fanout.results_for(context.event_hub)
        outcome, shared = await results.outcome(group, cursor, context, self._unshared)
        if shared:
            outcome.replay(context)
            fanout.count_shared()
        delivery = direct_delivery.current.get()
        if (
            delivery is not None
            and not delivery.ready
            and not context.explain
            and outcome.pure_text() is not None
        ):
            # Its group's results need nothing of this subscriber's own: from now on the hub may
            # write them to it directly (gateway/runtime/direct_delivery.py).
            delivery.attach(group, self._subscription._outcome_of)
        return outcome.result()

    async def _outcome_of(self, record: EventRecord) -> Outcome:
        """The group's execution of the event `record` (gateway/runtime/direct_delivery.py), in
        a task of the hub's with an operation state of its own."""
        executor = cast("GatewayExecutor", self.build_per_event_executor(Event(record=record)))
        context = cast(RequestContext, self.context_value)
        context.next_operation()
        assert context.event_hub is not None
        outcome, _ = await fanout.results_for(context.event_hub).outcome(
            self._group, record.cursor, context, executor._unshared
        )
        return outcome

    def _unshared(self) -> ExecutionResult | Awaitable[ExecutionResult]:
        # Never incremental: the schema does not enable @defer and @stream.
        return cast("ExecutionResult | Awaitable[ExecutionResult]", super().execute_operation())
