"""Load shedding: a worker answers `503 OVERLOADED` with `Retry-After` once it holds as many
GraphQL operations as it is allowed, instead of taking more and letting every operation (and
every member's deadline) wait behind its own queue. The members are not slow then; we are."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

OVERLOADED = "OVERLOADED"
RETRY_AFTER_SECONDS = 1


class AtCapacity(Exception):
    """This worker holds as many operations as it may."""


class InFlight:
    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.count = 0

    @contextmanager
    def admitted(self) -> Iterator[None]:
        if self.count >= self.limit:
            raise AtCapacity
        self.count += 1
        try:
            yield
        finally:
            self.count -= 1
