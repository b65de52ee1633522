"""Scalars of the contract whose values the gateway bounds before any source sees them."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import strawberry
from graphql import GraphQLError

# Every source stores times as UTC instants; a time outside these years has no instant there
# (and no record of the alliance's could be so dated).
EARLIEST = datetime(1900, 1, 1, tzinfo=UTC)
LATEST = datetime(9999, 1, 1, tzinfo=UTC)


def parse_datetime(value: Any) -> datetime:
    if not isinstance(value, str):
        raise GraphQLError("DateTime takes an ISO 8601 string, e.g. 2026-11-26T08:00:00+08:00.")
    try:
        at = datetime.fromisoformat(value)
    except ValueError:
        raise GraphQLError(
            "DateTime takes an ISO 8601 date and time, e.g. 2026-11-26T08:00:00+08:00."
        ) from None
    # A time without an offset is taken as UTC, as the sources take it.
    instant = at if at.tzinfo is not None else at.replace(tzinfo=UTC)
    try:
        in_range = EARLIEST <= instant.astimezone(UTC) < LATEST
    except OverflowError:
        in_range = False
    if not in_range:
        raise GraphQLError("DateTime must fall between the years 1900 and 9998.")
    return at


DateTime = strawberry.scalar(
    name="DateTime",
    description="Date with time (isoformat)",
    serialize=datetime.isoformat,
    parse_value=parse_datetime,
)
