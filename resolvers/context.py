"""What every resolver gets: who asks, the registry, the members' sources, the alliance's rules,
per-request loaders, and what the request asked of whom (for errors and the audit)."""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from adapters.registry.audit import AuditStore
from adapters.registry.events import EventStore
from adapters.registry.store import RegistryStore
from resolvers.audit import AuditLog
from resolvers.errors import ErrorCode, GatewayError
from resolvers.event_feed import EventFeed
from resolvers.federation import Federation, SourceReport
from resolvers.loaders import RegistryLoaders
from resolvers.member_loaders import MemberLoaders
from resolvers.principal import Principal
from resolvers.rules import AllianceRules


@dataclass(slots=True)
class _OperationState:
    """What one operation learns as it runs: cached lookups, the members it asked, its audit."""

    owner: RequestContext
    loaders: RegistryLoaders
    member_loaders: MemberLoaders
    sources: SourceReport
    audit: AuditLog


# Per asyncio task: the operations multiplexed on one WebSocket (a subscription beside queries)
# share a RequestContext but each runs in a task of its own, so none resets another's state.
_operation: ContextVar[_OperationState | None] = ContextVar("operation_state", default=None)


@dataclass(eq=False)
class RequestContext:
    registry: RegistryStore
    alliance_id: str
    rules: AllianceRules
    federation: Federation
    audit_store: AuditStore
    linkage_key: bytes | None = None
    # The event log (mutations append to it) and this replica's reader of it (subscriptions).
    event_store: EventStore | None = None
    event_hub: EventFeed | None = None
    # Unset only on a WebSocket until its connection_init has been authenticated.
    principal: Principal | None = None
    # X-Alliance-Explain: 1 from an OPS principal: the response explains its member calls.
    explain: bool = False
    connection_params: dict[str, Any] = field(default_factory=dict)

    def next_operation(self) -> None:
        """Starts the current task's operation (or a subscription's next event) with empty caches
        and a clean record of the members asked, so none reads another's stale answers."""
        sources = SourceReport()
        _operation.set(
            _OperationState(
                owner=self,
                loaders=RegistryLoaders(self.registry, self.alliance_id),
                member_loaders=MemberLoaders(self.federation, sources),
                sources=sources,
                audit=AuditLog(),
            )
        )

    def _state(self) -> _OperationState:
        state = _operation.get()
        if state is None or state.owner is not self:
            self.next_operation()
            state = _operation.get()
            assert state is not None
        return state

    @property
    def loaders(self) -> RegistryLoaders:
        return self._state().loaders

    @property
    def member_loaders(self) -> MemberLoaders:
        return self._state().member_loaders

    @property
    def sources(self) -> SourceReport:
        return self._state().sources

    @property
    def audit(self) -> AuditLog:
        return self._state().audit

    @property
    def who(self) -> Principal:
        if self.principal is None:
            raise GatewayError(ErrorCode.UNAUTHENTICATED, "Authenticate with a bearer token.")
        return self.principal
