"""What resolvers need of the replica's event hub (a background worker in gateway/): its log, and
live subscriptions to it. The hub satisfies this structurally; resolvers never import it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from adapters.registry.events import EventStore
from adapters.registry.records import EventRecord


class Overflowed(Exception):
    """The subscriber fell more than its queue's capacity behind."""


class Subscription(Protocol):
    @property
    def start(self) -> int:
        """The log's position when the subscriber joined: later events reach its queue."""
        ...

    @property
    def capacity(self) -> int: ...

    # The cursor of the last event handed to the subscriber: yielded from its batches, or
    # written by the hub itself while the subscriber waits with nothing queued.
    position: int

    async def next_batch(self) -> list[EventRecord]:
        """The events queued since the last batch, waiting for one; `Overflowed` once cut off.
        While it waits, the hub may hand the subscriber's events over itself."""
        ...


class EventFeed(Protocol):
    @property
    def store(self) -> EventStore: ...

    @property
    def replay_page(self) -> int: ...

    def subscribe(self, accepts: Callable[[EventRecord], bool]) -> Subscription: ...

    # `Any`: the hub takes back only the subscriptions it handed out, of its own concrete type.
    def unsubscribe(self, subscriber: Any) -> None: ...
