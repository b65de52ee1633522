"""What every resolver gets: who asks, the registry, the alliance's rules, per-request loaders."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from adapters.registry.store import RegistryStore
from resolvers.errors import ErrorCode, GatewayError
from resolvers.loaders import RegistryLoaders
from resolvers.principal import Principal
from resolvers.rules import AllianceRules


@dataclass
class RequestContext:
    registry: RegistryStore
    alliance_id: str
    rules: AllianceRules
    loaders: RegistryLoaders
    # Unset only on a WebSocket until its connection_init has been authenticated.
    principal: Principal | None = None
    connection_params: dict[str, Any] = field(default_factory=dict)

    @property
    def who(self) -> Principal:
        if self.principal is None:
            raise GatewayError(ErrorCode.UNAUTHENTICATED, "Authenticate with a bearer token.")
        return self.principal
