"""A long-lived subscription must not grow with every event it delivers (graphql-core 3.3 keeps a
memo per event on the subscription's executor; gateway/runtime/execution.py gives each event its own)."""

from __future__ import annotations

from typing import Any

from graphql import build_schema as build_sdl
from graphql import parse
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

from gateway.runtime.build import build_schema

SDL = """type Query { ok: Boolean }
type Subscription { events: Event }
type Event { cursor: String type: String hospital: Hospital }
type Hospital { code: String }"""
DOCUMENT = parse("subscription { events { cursor type hospital { code } } }")


def _deliver(executor_class: Any, events: int) -> int:
    """Executes `events` events; the entries then left in the subscription's memo."""
    subscription = executor_class.build(build_sdl(SDL), DOCUMENT)
    for n in range(events):
        payload = {"events": {"cursor": str(n), "type": "T", "hospital": {"code": "LYZG"}}}
        result = subscription.build_per_event_executor(payload).execute_operation(False)
        assert result.data["events"]["cursor"] == str(n)
    return len(subscription._relevant_sub_fields)


def test_a_subscription_keeps_nothing_of_the_events_it_delivered() -> None:
    executor_class = build_schema(introspection=False).execution_context_class
    assert _deliver(executor_class, 100) == 0


def test_the_library_alone_would_keep_something_of_every_event() -> None:
    # What the gateway's executor prevents: if this stops growing, graphql-core fixed it.
    assert _deliver(StrawberryGraphQLCoreExecutionContext, 100) >= 100
