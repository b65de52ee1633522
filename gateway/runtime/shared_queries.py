"""Identical queries in flight answered once.

A dashboard that many people open sends the same query at the same moment. Operations that
share what their result depends on (the document, as parsed once by the parse cache; the
variables; the reader's visibility class: hospital, roles and purpose) and arrive while the
first is executing wait for its result instead of executing again. Each is still authenticated,
rate limited, counted and audited as its own: what the execution recorded (patients read,
members asked and failed) is replayed into its operation state. Only queries: never a mutation,
a subscription (gateway/runtime/fanout.py shares those per event) or an operation asking for an
explanation of its own member calls. Nothing is kept once the execution ends: this is sharing
in flight, not a cache."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable
from typing import Any

import orjson
from graphql import ExecutionResult, OperationDefinitionNode, OperationType
from opentelemetry import metrics
from opentelemetry.metrics import CallbackOptions, Observation

from gateway.runtime.outcome import Outcome, once
from resolvers.context import RequestContext


def key_of(
    operation: OperationDefinitionNode, variables: dict[str, Any], context: object
) -> Hashable | None:
    """What a query's result depends on; None for an operation that is never shared."""
    if operation.operation is not OperationType.QUERY or not isinstance(context, RequestContext):
        return None
    principal = context.principal
    if principal is None or context.explain:
        return None
    return (
        # One federation per app: apps sharing a process share the parse cache, not results.
        id(context.federation),
        # The parse cache gives identical texts the same node; the entry's leader keeps it alive.
        id(operation),
        orjson.dumps(variables, option=orjson.OPT_SORT_KEYS, default=repr),
        principal.hospital_code,
        principal.roles,
        principal.purpose,
    )


class QueriesInFlight:
    """The queries executing now, by what their result depends on (`key_of`)."""

    def __init__(self) -> None:
        self._running: dict[Hashable, asyncio.Future[Outcome | None]] = {}
        self.shared = 0

    def __len__(self) -> int:
        return len(self._running)

    async def execute(
        self,
        key: Hashable,
        context: RequestContext,
        run: Callable[[], ExecutionResult | Awaitable[ExecutionResult]],
    ) -> ExecutionResult:
        outcome, shared = await once(self._running, key, context, run, keep=False)
        if shared:
            outcome.replay(context)
            self.shared += 1
        return outcome.result()


IN_FLIGHT = QueriesInFlight()


def _observe_shared(options: CallbackOptions) -> list[Observation]:
    return [Observation(IN_FLIGHT.shared)]


metrics.get_meter("alliance_gateway.queries").create_observable_counter(
    "alliance.queries.shared",
    [_observe_shared],
    description="Queries answered with the result of an identical query executing at the time.",
)
