"""How operations are executed: Strawberry's executor, with per-event state kept per event."""

from __future__ import annotations

from typing import Any

from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext


class GatewayExecutor(StrawberryGraphQLCoreExecutionContext):
    def build_per_event_executor(self, payload: Any) -> Any:
        # graphql-core 3.3 shares the subscription's memo of collected subfields with every
        # event's copy, and each event adds entries keyed by lists made for it alone: a
        # subscription grew by ~2.5 KB per event delivered, for as long as it lived.
        executor = super().build_per_event_executor(payload)
        executor._relevant_sub_fields = {}
        return executor
