"""The health of the members' sources, for OPS, ALLIANCE_ADMIN and SECRETARIAT."""

from __future__ import annotations

import strawberry

from adapters.resilience import CircuitState as _CircuitState
from resolvers import health
from schema.types import Ctx

# strawberry.enum registers each class in place and returns it: the names stay types.
SourceStatus = health.SourceStatus
strawberry.enum(
    SourceStatus,
    description="UP: answered in good time. DEGRADED: answered, but slowly or after recent "
    "failures. DOWN: did not answer, or its circuit is open. UNKNOWN: could not be told.",
)
CircuitState = _CircuitState
strawberry.enum(
    CircuitState,
    description="A member's circuit breaker: OPEN means it is not asked until a probe succeeds.",
)


@strawberry.type(description="One member's source as the gateway sees it now.")
class SourceHealth:
    record: strawberry.Private[health.SourceHealth]

    @strawberry.field(description="The member hospital's code.")
    def member(self) -> str:
        return self.record.member

    @strawberry.field(description="The kind of source, e.g. postgres.")
    def adapter(self) -> str:
        return self.record.adapter

    @strawberry.field
    def status(self) -> SourceStatus:
        return self.record.status

    @strawberry.field
    def circuit(self) -> CircuitState:
        return self.record.circuit

    @strawberry.field
    def consecutive_failures(self) -> int:
        return self.record.consecutive_failures

    @strawberry.field(description="The last successful call's latency, any request's.")
    def last_latency_ms(self) -> float | None:
        return self.record.last_latency_ms

    @strawberry.field(description="This check's ping; null if it failed.")
    def ping_latency_ms(self) -> float | None:
        return self.record.ping_latency_ms

    @strawberry.field
    def read_only(self) -> bool:
        return self.record.read_only

    @strawberry.field(description="Why the ping failed: a SOURCE_* code; null if it answered.")
    def error(self) -> str | None:
        return self.record.error


@strawberry.type
class HealthQueries:
    @strawberry.field(
        description="Each configured member's source: pinged now, concurrently, through its "
        "guard. OPS, ALLIANCE_ADMIN and SECRETARIAT only."
    )
    async def source_health(self, info: Ctx) -> list[SourceHealth]:
        return [SourceHealth(record=r) for r in await health.source_health(info.context)]
