"""What operations sees of every call to a member's source: a client span (children: the database
spans), metrics by member and outcome, and, when a request asked for it, an explain entry.
Uses the OpenTelemetry API only: without a configured SDK every instrument is a no-op."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, ParamSpec, TypeVar

from opentelemetry import metrics, trace

tracer = trace.get_tracer("alliance_gateway.members")
meter = metrics.get_meter("alliance_gateway.members")

call_duration = meter.create_histogram(
    "alliance.member.call.duration", unit="ms", description="Calls to a member's source."
)
call_errors = meter.create_counter(
    "alliance.member.call.errors", description="Failed calls to a member's source, by code."
)


@dataclass
class MemberCall:
    """One call to one member, as the explain extension reports it."""

    member: str
    adapter: str
    operation: str = "call"
    via: str = "direct"  # or "dataloader": a batch serving several fields
    duration_ms: float = 0.0
    rows: int | None = None
    outcome: str = "ok"
    code: str | None = None


# The calls of the current request, when the request asked for an explanation.
explained_calls: ContextVar[list[MemberCall] | None] = ContextVar("explained_calls", default=None)
_current_call: ContextVar[MemberCall | None] = ContextVar("current_member_call", default=None)
_via: ContextVar[str] = ContextVar("member_call_via", default="direct")

P = ParamSpec("P")
R = TypeVar("R")


def operation(name: str) -> Callable[[Callable[P, Awaitable[R]]], Callable[P, Awaitable[R]]]:
    """Names the adapter operation a member call performs, on its span and explain entry."""

    def decorate(method: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
        @functools.wraps(method)
        async def named(*args: P.args, **kwargs: P.kwargs) -> R:
            call = _current_call.get()
            if call is not None:
                call.operation = name
                span = trace.get_current_span()
                span.update_name(f"{call.member} {name}")
                span.set_attribute("alliance.operation", name)
            return await method(*args, **kwargs)

        return named

    return decorate


def via_dataloader() -> Any:
    """Marks the calls made inside the block as DataLoader batches."""
    return _via.set("dataloader")


def reset_via(token: Any) -> None:
    _via.reset(token)


def start_call(member: str, adapter: str) -> MemberCall:
    call = MemberCall(member=member, adapter=adapter, via=_via.get())
    _current_call.set(call)
    return call


def finish_call(call: MemberCall, result: object) -> None:
    if isinstance(result, list):
        call.rows = len(result)
    elif isinstance(result, int) and not isinstance(result, bool):
        call.rows = 1
    attributes = {
        "alliance.member": call.member,
        "alliance.adapter": call.adapter,
        "alliance.operation": call.operation,
        "alliance.outcome": call.outcome,
    }
    call_duration.record(call.duration_ms, attributes)
    if call.code is not None:
        call_errors.add(1, {**attributes, "alliance.error.code": call.code})
    calls = explained_calls.get()
    if calls is not None:
        calls.append(call)
