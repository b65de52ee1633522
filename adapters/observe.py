"""What operations sees of every call to a member's source: a client span (children: the database
spans), metrics by member and outcome, and, when a request asked for it, an explain entry.
Uses the OpenTelemetry API only: without a configured SDK every instrument is a no-op."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, TypeVar

from opentelemetry import metrics, trace

from adapters.sources.errors import SourceError
from adapters.sources.port import Page

T = TypeVar("T")

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
    asked: str = ""  # the request's shape: kind, pushed-down fields, limit; never a value
    via: str = "direct"  # or "dataloader": a batch serving several fields; or "coalesced"
    duration_ms: float = 0.0
    rows: int | None = None
    outcome: str = "ok"
    code: str | None = None


# The calls of the current request, when the request asked for an explanation.
explained_calls: ContextVar[list[MemberCall] | None] = ContextVar("explained_calls", default=None)
_via: ContextVar[str] = ContextVar("member_call_via", default="direct")


def via_dataloader() -> Any:
    """Marks the calls made inside the block as DataLoader batches."""
    return _via.set("dataloader")


def reset_via(token: Any) -> None:
    _via.reset(token)


def start_call(member: str, adapter: str, operation: str) -> MemberCall:
    return MemberCall(member=member, adapter=adapter, operation=operation, via=_via.get())


def _explain(call: MemberCall, describe: Callable[[], str]) -> None:
    calls = explained_calls.get()
    if calls is not None:
        call.asked = describe()
        calls.append(call)


def member_span(
    member: str, adapter: str, operation: str, describe: Callable[[], str]
) -> contextlib.AbstractContextManager[trace.Span]:
    """The client span of a call to a member, made current for the database spans beneath it;
    none at all where it could not be recorded. Without a configured SDK nothing is recorded, and
    under a span not recorded (a trace not sampled) the SDK's samplers would not record a child:
    the span, its attributes and the request's description would be made for nothing, eleven
    times a page."""
    current = trace.get_current_span()
    if not current.is_recording() and (
        current.get_span_context().is_valid
        or isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider)
    ):
        return _NO_SPAN
    return tracer.start_as_current_span(
        f"{member} {operation}",
        kind=trace.SpanKind.CLIENT,
        attributes={
            "alliance.member": member,
            "alliance.adapter": adapter,
            "alliance.operation": operation,
            "alliance.request": describe(),
        },
        # The status is set from the SOURCE_* code; an exception's message may quote a value
        # and stays out of the span.
        record_exception=False,
        set_status_on_exception=False,
    )


_NO_SPAN: contextlib.AbstractContextManager[trace.Span] = contextlib.nullcontext(trace.INVALID_SPAN)


def _count_rows(call: MemberCall, result: object) -> None:
    if isinstance(result, list):
        call.rows = len(result)
    elif isinstance(result, Page):
        call.rows = len(result.records)
    elif result is not None:
        call.rows = 1


def finish_call(call: MemberCall, result: object, describe: Callable[[], str]) -> None:
    _count_rows(call, result)
    attributes = {
        "alliance.member": call.member,
        "alliance.adapter": call.adapter,
        "alliance.operation": call.operation,
        "alliance.outcome": call.outcome,
    }
    call_duration.record(call.duration_ms, attributes)
    if call.code is not None:
        call_errors.add(1, {**attributes, "alliance.error.code": call.code})
    _explain(call, describe)


async def coalesced(
    member: str, adapter: str, operation: str, describe: Callable[[], str], shared: Awaitable[T]
) -> T:
    """Waits for an identical call already in flight. Explained as a call of its own (`via`
    coalesced), but not counted again in the member-call metrics: the member was asked once."""
    call = MemberCall(member, adapter, operation, via="coalesced")
    started = time.perf_counter()
    try:
        result = await asyncio.shield(shared)
    except SourceError as e:
        call.outcome, call.code = "error", e.code.value
        raise
    finally:
        call.duration_ms = (time.perf_counter() - started) * 1000
        _explain(call, describe)
    _count_rows(call, result)
    return result


def traced(sql: str) -> str:
    """`sql` with the W3C sqlcommenter comment `/*traceparent='00-<trace>-<span>-<flags>'*/` of the
    current span, so that the hospital's DBA can find the trace of a statement in their logs.

    Every SQL adapter sends its statements through this. Only while a span is being recorded:
    every commented statement is unique text, so a driver's statement cache (asyncpg's) cannot
    reuse it (one more prepare per statement, and cached statements are pushed out). Unsampled and
    untraced requests send the plain SQL and keep the cache."""
    span = trace.get_current_span()
    if not span.is_recording():
        return sql
    ctx = span.get_span_context()
    if not ctx.is_valid:
        return sql
    return (
        f"{sql} /*traceparent='00-{ctx.trace_id:032x}-{ctx.span_id:016x}-{ctx.trace_flags:02x}'*/"
    )
