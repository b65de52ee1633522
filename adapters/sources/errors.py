"""The failures of a member's source, in the gateway's own words. Each adapter translates its
driver's exceptions into these once, where it calls the driver; nothing above an adapter sees a
driver exception."""

from __future__ import annotations

from enum import StrEnum


class SourceErrorCode(StrEnum):
    SOURCE_UNAVAILABLE = "SOURCE_UNAVAILABLE"
    SOURCE_TIMEOUT = "SOURCE_TIMEOUT"
    SOURCE_CIRCUIT_OPEN = "SOURCE_CIRCUIT_OPEN"
    SOURCE_ACCESS_DENIED = "SOURCE_ACCESS_DENIED"
    SOURCE_SCHEMA_MISMATCH = "SOURCE_SCHEMA_MISMATCH"
    SOURCE_REJECTED = "SOURCE_REJECTED"
    SOURCE_READ_ONLY = "SOURCE_READ_ONLY"
    SOURCE_NOT_SERVED = "SOURCE_NOT_SERVED"
    SOURCE_FAILED = "SOURCE_FAILED"

    @property
    def unhealthy(self) -> bool:
        """Whether the failure says the source itself is unwell (its circuit breaker counts it),
        rather than that it refused one request."""
        return self not in _REQUEST_REFUSALS


_REQUEST_REFUSALS = frozenset(
    {
        SourceErrorCode.SOURCE_REJECTED,
        SourceErrorCode.SOURCE_READ_ONLY,
        SourceErrorCode.SOURCE_NOT_SERVED,
        SourceErrorCode.SOURCE_CIRCUIT_OPEN,
    }
)

# What each code tells the reader, after "Member X's source ".
_MESSAGES = {
    SourceErrorCode.SOURCE_UNAVAILABLE: "is unavailable.",
    SourceErrorCode.SOURCE_TIMEOUT: "did not answer in time.",
    SourceErrorCode.SOURCE_CIRCUIT_OPEN: (
        "is failing; it is not asked again until its circuit breaker lets a probe through."
    ),
    SourceErrorCode.SOURCE_ACCESS_DENIED: "refused the gateway's credentials or privileges.",
    SourceErrorCode.SOURCE_SCHEMA_MISMATCH: "does not match the published exchange contract.",
    SourceErrorCode.SOURCE_REJECTED: "refused the request as invalid.",
    SourceErrorCode.SOURCE_READ_ONLY: "is read-only; the change cannot be stored there.",
    SourceErrorCode.SOURCE_NOT_SERVED: "does not hold records of this kind.",
    SourceErrorCode.SOURCE_FAILED: "failed unexpectedly.",
}


class SourceError(Exception):
    """One member's call failed. `message` is safe to show a client: it names the member and
    what happened, never the driver's text (which may quote SQL or a value)."""

    def __init__(self, code: SourceErrorCode, member: str, message: str | None = None) -> None:
        self.code = code
        self.member = member
        self.message = message or f"Member {member}'s source {_MESSAGES[code]}"
        super().__init__(self.message)
