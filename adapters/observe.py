"""What operations sees of every call to a member's source: a client span (children: the database
spans), metrics by member and outcome, and, when a request asked for it, an explain entry.
Uses the OpenTelemetry API only: without a configured SDK every instrument is a no-op."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable
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


def start_call(member: str, adapter: str, operation: str, asked: str) -> MemberCall:
    return MemberCall(
        member=member, adapter=adapter, operation=operation, asked=asked, via=_via.get()
    )


def _count_rows(call: MemberCall, result: object) -> None:
    if isinstance(result, list):
        call.rows = len(result)
    elif isinstance(result, Page):
        call.rows = len(result.records)
    elif result is not None:
        call.rows = 1


def finish_call(call: MemberCall, result: object) -> None:
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
    calls = explained_calls.get()
    if calls is not None:
        calls.append(call)


async def coalesced(
    member: str, adapter: str, operation: str, asked: str, shared: Awaitable[T]
) -> T:
    """Waits for an identical call already in flight. Explained as a call of its own (`via`
    coalesced), but not counted again in the member-call metrics: the member was asked once."""
    call = MemberCall(member, adapter, operation, asked, via="coalesced")
    started = time.perf_counter()
    try:
        result = await asyncio.shield(shared)
    except SourceError as e:
        call.outcome, call.code = "error", e.code.value
        raise
    finally:
        call.duration_ms = (time.perf_counter() - started) * 1000
        calls = explained_calls.get()
        if calls is not None:
            calls.append(call)
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
