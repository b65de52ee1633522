"""What every resolver gets: who asks, the registry, the members' sources, the alliance's rules,
per-request loaders, and what the request asked of whom (for errors and the audit)."""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from adapters.registry.audit import AuditStore
from adapters.registry.events import EventStore
from adapters.registry.store import RegistryStore
from resolvers.assessment.rules import AssessmentRules
from resolvers.audit import AuditLog
from resolvers.errors import ErrorCode, GatewayError
from resolvers.event_feed import EventFeed
from resolvers.federation import Federation, SourceReport
from resolvers.loaders import RegistryLoaders
from resolvers.member_loaders import MemberLoaders
from resolvers.principal import Principal
from resolvers.rules import AllianceRules


class _OperationState:
    """What one operation learns as it runs: cached lookups, the members it asked, its audit.
    Each part is made when a resolver first asks for it: a subscription starts a fresh state
    for every event it delivers, and most events' selections read none of them."""

    __slots__ = ("_audit", "_loaders", "_member_loaders", "_sources", "owner")

    def __init__(self, owner: RequestContext) -> None:
        self.owner = owner
        self._loaders: RegistryLoaders | None = None
        self._member_loaders: MemberLoaders | None = None
        self._sources: SourceReport | None = None
        self._audit: AuditLog | None = None

    @property
    def loaders(self) -> RegistryLoaders:
        if self._loaders is None:
            self._loaders = RegistryLoaders(self.owner.registry, self.owner.alliance_id)
        return self._loaders

    @property
    def sources(self) -> SourceReport:
        if self._sources is None:
            self._sources = SourceReport()
        return self._sources

    @property
    def member_loaders(self) -> MemberLoaders:
        if self._member_loaders is None:
            self._member_loaders = MemberLoaders(self.owner.federation, self.sources)
        return self._member_loaders

    @property
    def audit(self) -> AuditLog:
        if self._audit is None:
            self._audit = AuditLog()
        return self._audit

    @property
    def untouched(self) -> bool:
        """Nothing was read or asked: there is nothing to audit."""
        return self._audit is None and self._sources is None


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
    # [assessment]: the annual assessment's pass mark, thresholds and trend rules.
    assessment: AssessmentRules = field(default_factory=AssessmentRules)

    def next_operation(self) -> None:
        """Starts the current task's operation (or a subscription's next event) with empty caches
        and a clean record of the members asked, so none reads another's stale answers."""
        _operation.set(_OperationState(self))

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

    def share_registry_loaders(self, loaders: RegistryLoaders) -> None:
        """The current operation's registry lookups go through `loaders`, shared with others
        reading the registry at the same moment (the executions of one subscription event)."""
        self._state()._loaders = loaders

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
    def operation_untouched(self) -> bool:
        """The current operation has read nothing and asked no member (nothing to audit)."""
        state = _operation.get()
        return state is None or state.owner is not self or state.untouched

    @property
    def who(self) -> Principal:
        if self.principal is None:
            raise GatewayError(ErrorCode.UNAUTHENTICATED, "Authenticate with a bearer token.")
        return self.principal
