"""What every resolver gets: who asks, the registry, the members' sources, the alliance's rules,
per-request loaders, and what the request asked of whom (for errors and the audit)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from adapters.registry.audit import AuditStore
from adapters.registry.events import EventStore
from adapters.registry.store import RegistryStore
from resolvers.audit import AuditLog
from resolvers.errors import ErrorCode, GatewayError
from resolvers.event_hub import EventHub
from resolvers.federation import Federation, SourceReport
from resolvers.loaders import RegistryLoaders
from resolvers.member_loaders import MemberLoaders
from resolvers.principal import Principal
from resolvers.rules import AllianceRules


@dataclass
class RequestContext:
    registry: RegistryStore
    alliance_id: str
    rules: AllianceRules
    loaders: RegistryLoaders
    federation: Federation
    audit_store: AuditStore
    linkage_key: bytes | None = None
    # The event log (mutations append to it) and this replica's reader of it (subscriptions).
    event_store: EventStore | None = None
    event_hub: EventHub | None = None
    # Unset only on a WebSocket until its connection_init has been authenticated.
    principal: Principal | None = None
    # X-Alliance-Explain: 1 from an OPS principal: the response explains its member calls.
    explain: bool = False
    connection_params: dict[str, Any] = field(default_factory=dict)
    sources: SourceReport = field(default_factory=SourceReport)
    audit: AuditLog = field(default_factory=AuditLog)
    member_loaders: MemberLoaders = field(init=False)

    def __post_init__(self) -> None:
        self.member_loaders = MemberLoaders(self.federation, self.sources)

    def next_operation(self) -> None:
        """A WebSocket's operations share one context: each starts with empty caches and a
        clean record of the members asked, so none reads another's stale answers."""
        self.sources.asked.clear()
        self.sources.failures.clear()
        self.loaders = RegistryLoaders(self.registry, self.alliance_id)
        self.member_loaders = MemberLoaders(self.federation, self.sources)

    @property
    def who(self) -> Principal:
        if self.principal is None:
            raise GatewayError(ErrorCode.UNAUTHENTICATED, "Authenticate with a bearer token.")
        return self.principal
