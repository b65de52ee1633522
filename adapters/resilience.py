"""Resilience around every call to a member's source: a deadline, a concurrency limit and a
circuit breaker. A failing member costs the query its part, never the whole query, and once its
circuit is open it costs no waiting at all until the cool-down lets a probe through.

Written here rather than taken from a circuit-breaker package because the gateway reports each
breaker's state per member (errors, health queries, metrics) and needs the timeout, the limit and
the breaker to agree on what counts as a failure."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import TypeVar

from opentelemetry.trace import Status, StatusCode

from adapters import observe
from adapters.sources.errors import SourceError, SourceErrorCode

log = logging.getLogger(__name__)
T = TypeVar("T")


class CircuitState(StrEnum):
    CLOSED = "CLOSED"
    OPEN = "OPEN"
    HALF_OPEN = "HALF_OPEN"


@dataclass
class CircuitBreaker:
    failure_threshold: int = 3
    reset_after_seconds: float = 10.0
    state: CircuitState = CircuitState.CLOSED
    consecutive_failures: int = 0
    opened_at: float = 0.0
    _probing: bool = False

    def allow(self) -> bool:
        if self.state is CircuitState.CLOSED:
            return True
        if self.state is CircuitState.OPEN:
            if time.monotonic() - self.opened_at < self.reset_after_seconds:
                return False
            self.state = CircuitState.HALF_OPEN
        # Half open: one probe at a time decides whether the source is back.
        if self._probing:
            return False
        self._probing = True
        return True

    def release_probe(self) -> None:
        self._probing = False

    def record_success(self) -> None:
        self.state = CircuitState.CLOSED
        self.consecutive_failures = 0
        self._probing = False

    def record_failure(self) -> None:
        self.consecutive_failures += 1
        self._probing = False
        if (
            self.state is CircuitState.HALF_OPEN
            or self.consecutive_failures >= self.failure_threshold
        ):
            self.state = CircuitState.OPEN
            self.opened_at = time.monotonic()


class Guard:
    """Runs calls to one member under its timeout, concurrency limit and circuit breaker, each in
    a client span of its own. Whatever goes wrong inside a call leaves it as a SourceError naming
    the member: adapters translate their drivers' failures, and anything they did not foresee is
    SOURCE_FAILED here, so one member can never fail more than its own part of an answer."""

    def __init__(
        self,
        member: str,
        *,
        timeout_seconds: float,
        max_concurrency: int,
        breaker: CircuitBreaker,
        adapter: str = "postgres",
    ) -> None:
        self.member = member
        self.adapter = adapter
        self.timeout_seconds = timeout_seconds
        self.breaker = breaker
        self._limit = asyncio.Semaphore(max_concurrency)
        self.last_latency_ms: float | None = None

    async def call(
        self, operation: str, describe: Callable[[], str], send: Callable[[], Awaitable[T]]
    ) -> T:
        """`send()` under the guard; `describe()` says what it asks (for spans and explanations,
        made only when one is)."""
        with observe.member_span(self.member, self.adapter, operation, describe) as span:
            record = observe.start_call(self.member, self.adapter, operation)
            started = time.perf_counter()
            result: object = None
            try:
                result = await self._guarded(send)
                return result  # type: ignore[return-value]
            except SourceError as e:
                record.outcome, record.code = "error", e.code.value
                span.set_status(Status(StatusCode.ERROR, e.code.value))
                span.set_attribute("alliance.error.code", e.code.value)
                raise
            except BaseException:
                record.outcome, record.code = "cancelled", None
                raise
            finally:
                record.duration_ms = (time.perf_counter() - started) * 1000
                observe.finish_call(record, result, describe)
                span.set_attribute("alliance.outcome", record.outcome)
                if record.rows is not None:
                    span.set_attribute("alliance.rows", record.rows)

    async def _guarded(self, send: Callable[[], Awaitable[T]]) -> T:
        if not self.breaker.allow():
            raise SourceError(SourceErrorCode.SOURCE_CIRCUIT_OPEN, self.member)
        started = time.perf_counter()
        try:
            # The deadline covers waiting for a slot too: a saturated member is a slow member.
            async with asyncio.timeout(self.timeout_seconds), self._limit:
                result = await send()
        except TimeoutError:
            self.breaker.record_failure()
            raise SourceError(
                SourceErrorCode.SOURCE_TIMEOUT,
                self.member,
                f"Member {self.member} did not answer within {self.timeout_seconds:g} s.",
            ) from None
        except SourceError as e:
            self._count(e)
            raise
        except Exception as e:
            # An adapter let something through that it should have translated: contained here
            # all the same, and logged by type only (its text may quote a value).
            log.error(
                "member call failed unexpectedly",
                extra={"member": self.member, "error": type(e).__name__},
            )
            failure = SourceError(SourceErrorCode.SOURCE_FAILED, self.member)
            self._count(failure)
            raise failure from None
        except BaseException:
            self.breaker.release_probe()
            raise
        self.breaker.record_success()
        self.last_latency_ms = (time.perf_counter() - started) * 1000
        return result

    def _count(self, error: SourceError) -> None:
        if error.code.unhealthy:
            self.breaker.record_failure()
            log.warning(
                "member source failing", extra={"member": self.member, "code": error.code.value}
            )
        else:
            # A refused request says nothing of the source's health.
            self.breaker.release_probe()
