"""The health of each member's source, for operations and the alliance office: a live ping through
the member's own guard (its deadline, concurrency limit and circuit breaker), read together with
the breaker's state. Every member is pinged concurrently, so the answer takes at most the slowest
member's deadline."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from enum import StrEnum

from adapters.resilience import CircuitState
from adapters.sources.errors import SourceError, SourceErrorCode
from adapters.sources.port import PingRequest
from resolvers.authorization import require_role
from resolvers.context import RequestContext
from resolvers.federation import on_member
from resolvers.principal import Role

# A ping slower than this share of the member's deadline marks the source DEGRADED.
SLOW_SHARE = 0.5
_DOWN = {code for code in SourceErrorCode if code.unhealthy} | {SourceErrorCode.SOURCE_CIRCUIT_OPEN}


class SourceStatus(StrEnum):
    UP = "UP"  # answered the ping in good time, and had not been failing
    DEGRADED = "DEGRADED"  # answered, but slowly or after recent failures
    DOWN = "DOWN"  # did not answer, or its circuit is open
    UNKNOWN = "UNKNOWN"  # could not be asked (a probe is already in flight) or failed oddly


@dataclass(frozen=True, slots=True)
class SourceHealth:
    member: str
    adapter: str
    status: SourceStatus
    circuit: CircuitState
    consecutive_failures: int
    last_latency_ms: float | None
    ping_latency_ms: float | None
    read_only: bool
    error: str | None


async def source_health(ctx: RequestContext) -> list[SourceHealth]:
    require_role(
        ctx.who,
        Role.OPS,
        Role.ALLIANCE_ADMIN,
        Role.SECRETARIAT,
        action="read the health of the members' sources",
    )
    codes = ctx.federation.codes()
    return list(await asyncio.gather(*(_check(ctx, code) for code in codes)))


async def _check(ctx: RequestContext, code: str) -> SourceHealth:
    member = ctx.federation.get(code)
    breaker = member.guard.breaker
    failing_before = breaker.consecutive_failures
    error: str | None = None
    ping_ms: float | None = None
    started = time.perf_counter()
    try:
        await on_member(ctx.federation, code, PingRequest(), ctx.sources)
        ping_ms = (time.perf_counter() - started) * 1000
    except SourceError as e:
        error = e.code.value
    if ping_ms is not None:
        slow = ping_ms > member.guard.timeout_seconds * 1000 * SLOW_SHARE
        status = SourceStatus.DEGRADED if slow or failing_before else SourceStatus.UP
    elif error == SourceErrorCode.SOURCE_CIRCUIT_OPEN and breaker.state is CircuitState.HALF_OPEN:
        status = SourceStatus.UNKNOWN  # another request's probe is deciding right now
    elif error in _DOWN:
        status = SourceStatus.DOWN
    else:
        status = SourceStatus.UNKNOWN
    return SourceHealth(
        member=code,
        adapter=member.source.adapter,
        status=status,
        circuit=breaker.state,
        consecutive_failures=breaker.consecutive_failures,
        last_latency_ms=member.guard.last_latency_ms,
        ping_latency_ms=ping_ms,
        read_only=not member.source.capabilities.writable,
        error=error,
    )
