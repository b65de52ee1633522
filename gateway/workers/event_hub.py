"""One replica's reader of the event log: it reads each new event once, when another replica's
NOTIFY (or its own) says the log grew, and hands it to the replica's subscribers. A subscriber's
queue is bounded: one that falls behind is cut off and told where to resume, so it neither blocks
the others nor grows memory."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

import asyncpg
from opentelemetry import metrics, trace

from adapters.registry.events import EventStore
from adapters.registry.records import EventRecord
from resolvers.event_feed import Overflowed

log = logging.getLogger(__name__)
tracer = trace.get_tracer("alliance_gateway.events")
meter = metrics.get_meter("alliance_gateway.events")

open_subscriptions = meter.create_up_down_counter(
    "alliance.subscriptions.open", description="Event subscriptions open on this replica."
)
event_lag = meter.create_histogram(
    "alliance.events.lag",
    unit="ms",
    description="From a change at its source to its hand-over to this replica's subscribers.",
)
cut_off = meter.create_counter(
    "alliance.subscriptions.overflowed",
    description="Subscriptions closed because they fell too far behind.",
)

Listen = Callable[[Callable[[], None]], Awaitable[asyncpg.Connection]]


class Subscriber:
    # Held for every open subscription, so kept small: a list and, only while the subscriber
    # waits, one future (an asyncio.Event and a deque would cost ~1.5 KiB each subscriber).
    __slots__ = ("_items", "_waiter", "accepts", "capacity", "overflowed", "start")

    def __init__(self, accepts: Callable[[EventRecord], bool], capacity: int, start: int) -> None:
        self.accepts = accepts
        self.capacity = capacity
        # The log's position when the subscriber joined: later events reach its queue.
        self.start = start
        self.overflowed = False
        self._items: list[EventRecord] = []
        self._waiter: asyncio.Future[None] | None = None

    def offer(self, event: EventRecord) -> bool:
        if self.overflowed or not self.accepts(event):
            return False
        if len(self._items) >= self.capacity:
            self.overflowed = True
            self._items = []
            cut_off.add(1)
        else:
            self._items.append(event)
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
        return True

    async def next_batch(self) -> list[EventRecord]:
        while not self._items:
            if self.overflowed:
                raise Overflowed
            waiter = self._waiter = asyncio.get_running_loop().create_future()
            try:
                await waiter
            finally:
                self._waiter = None
        batch, self._items = self._items, []
        return batch


class EventHub:
    def __init__(
        self,
        store: EventStore,
        listen: Listen,
        *,
        fallback_poll_seconds: float = 5.0,
        page_size: int = 500,
        queue_capacity: int = 1000,
    ) -> None:
        self.store = store
        self._listen = listen
        self._fallback = fallback_poll_seconds
        self.replay_page = page_size
        self.queue_capacity = queue_capacity
        self.position = 0
        self._subscribers: set[Subscriber] = set()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self.position = await self.store.latest()
        self._task = asyncio.create_task(self._run(), name="event hub")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def subscribe(self, accepts: Callable[[EventRecord], bool]) -> Subscriber:
        subscriber = Subscriber(accepts, self.queue_capacity, self.position)
        self._subscribers.add(subscriber)
        open_subscriptions.add(1)
        return subscriber

    def unsubscribe(self, subscriber: Subscriber) -> None:
        if subscriber in self._subscribers:
            self._subscribers.discard(subscriber)
            open_subscriptions.add(-1)

    @property
    def subscriber_count(self) -> int:
        return len(self._subscribers)

    def wake(self) -> None:
        self._wake.set()

    async def _run(self) -> None:
        while True:
            conn: asyncpg.Connection | None = None
            try:
                conn = await self._listen(self.wake)
                # Whatever was appended while nobody listened.
                await self.catch_up()
                while not conn.is_closed():
                    # The timeout is a safety net: a NOTIFY is lost if the connection drops.
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._wake.wait(), self._fallback)
                    self._wake.clear()
                    await self.catch_up()
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError) as e:
                log.warning(
                    "event hub lost the registry, retrying", extra={"error": type(e).__name__}
                )
                await asyncio.sleep(1.0)
            except Exception:
                # Without the hub this replica's subscribers hear nothing: never let it end.
                log.exception("event hub broke, restarting")
                await asyncio.sleep(1.0)
            finally:
                if conn is not None and not conn.is_closed():
                    conn.terminate()

    async def catch_up(self) -> None:
        """Read the events after the hub's position, once, and hand them out."""
        while True:
            events = await self.store.after(self.position, self.replay_page)
            if not events:
                return
            self._fan_out(events)
            self.position = events[-1].cursor
            if len(events) < self.replay_page:
                return

    def _fan_out(self, events: list[EventRecord]) -> None:
        with tracer.start_as_current_span("events fan-out") as span:
            now = datetime.now(UTC)
            handed = 0
            subscribers = list(self._subscribers)
            for event in events:
                event_lag.record(
                    (now - event.occurred_at).total_seconds() * 1000, {"event.type": event.type}
                )
                for subscriber in subscribers:
                    handed += subscriber.offer(event)
            span.set_attribute("alliance.events", len(events))
            span.set_attribute("alliance.subscribers", len(subscribers))
            span.set_attribute("alliance.deliveries", handed)


async def prune_forever(store: EventStore, retention: timedelta, every: timedelta) -> None:
    """Removes events past retention, on every replica (removing twice removes nothing)."""
    while True:
        try:
            removed = await store.prune(datetime.now(UTC) - retention)
            if removed:
                log.info("pruned events past retention", extra={"events": removed})
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError) as e:
            log.warning("could not prune the event log", extra={"error": type(e).__name__})
        await asyncio.sleep(every.total_seconds())
