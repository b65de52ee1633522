"""Who may take which step. Each check raises FORBIDDEN with a message naming what is missing."""

from __future__ import annotations

from resolvers.errors import forbidden
from resolvers.principal import Principal, Role


def require_role(principal: Principal, *roles: Role, action: str) -> None:
    if not principal.has_any(*roles):
        allowed = ", ".join(roles)
        raise forbidden(f"Only {allowed} may {action}.")
