"""One replica's reader of the event log: it reads each new event once, when another replica's
NOTIFY (or its own) says the log grew, and hands it to the replica's subscribers. A subscriber's
queue is bounded: one that falls behind is cut off and told where to resume, so it neither blocks
the others nor grows memory. A subscriber that has caught up is written each event's result
directly, once per group of subscribers sharing it (gateway/runtime/direct_delivery.py)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Hashable
from datetime import UTC, datetime, timedelta

import asyncpg
from opentelemetry import metrics, trace

from adapters.registry.events import EventStore
from adapters.registry.records import EventRecord
from gateway.runtime import direct_delivery, fanout
from gateway.runtime.direct_delivery import DirectDelivery
from gateway.runtime.outcome import Outcome
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
# How long the hub waits for a group's execution of an event (the hub's next event waits too)
# before leaving the group to its subscribers' own streams for good.
DIRECT_EXECUTION_SECONDS = 0.25


class Subscriber:
    # Held for every open subscription, so kept small: a list and, only while the subscriber
    # waits, one future (an asyncio.Event and a deque would cost ~1.5 KiB each subscriber).
    __slots__ = (
        "_hub",
        "_items",
        "_waiter",
        "accepts",
        "capacity",
        "delivery",
        "direct_group",
        "overflowed",
        "position",
        "start",
    )

    def __init__(
        self,
        hub: EventHub,
        accepts: Callable[[EventRecord], bool],
        capacity: int,
        start: int,
        delivery: DirectDelivery | None,
    ) -> None:
        self._hub = hub
        self.accepts = accepts
        self.capacity = capacity
        # The log's position when the subscriber joined: later events reach its queue.
        self.start = start
        # The cursor of the last event handed to the subscriber, queued or written directly.
        self.position = start
        self.delivery = delivery
        # The group under which the hub writes to it directly; None while its stream serves it.
        self.direct_group: Hashable | None = None
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
            # Caught up: until something is queued again, the hub may write events directly.
            self._hub.deliver_directly(self)
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
        # Those served by their own stream, and, by group, those written directly.
        self._subscribers: set[Subscriber] = set()
        self._direct: dict[Hashable, set[Subscriber]] = {}
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
        subscriber = Subscriber(
            self, accepts, self.queue_capacity, self.position, direct_delivery.current.get()
        )
        self._subscribers.add(subscriber)
        open_subscriptions.add(1)
        return subscriber

    def unsubscribe(self, subscriber: Subscriber) -> None:
        if subscriber in self._subscribers:
            self._subscribers.discard(subscriber)
        elif not self._leave_direct(subscriber):
            return
        open_subscriptions.add(-1)

    def deliver_directly(self, subscriber: Subscriber) -> None:
        """`subscriber` has nothing queued: write its events directly, if its group allows."""
        delivery = subscriber.delivery
        if delivery is None or not delivery.ready or subscriber not in self._subscribers:
            return
        self._subscribers.discard(subscriber)
        subscriber.direct_group = delivery.group
        self._direct.setdefault(delivery.group, set()).add(subscriber)

    def _leave_direct(self, subscriber: Subscriber) -> bool:
        group, subscriber.direct_group = subscriber.direct_group, None
        members = self._direct.get(group)
        if members is None or subscriber not in members:
            return False
        members.discard(subscriber)
        if not members:
            del self._direct[group]
        return True

    def _queue_again(self, subscriber: Subscriber) -> None:
        if self._leave_direct(subscriber):
            self._subscribers.add(subscriber)

    @property
    def subscriber_count(self) -> int:
        return len(self._subscribers) + sum(len(m) for m in self._direct.values())

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
            await self._fan_out(events)
            if len(events) < self.replay_page:
                return

    async def _fan_out(self, events: list[EventRecord]) -> None:
        with tracer.start_as_current_span("events fan-out") as span:
            now = datetime.now(UTC)
            handed = 0
            for event in events:
                event_lag.record(
                    (now - event.occurred_at).total_seconds() * 1000, {"event.type": event.type}
                )
                # Those joining while this event is written directly start after it.
                self.position = event.cursor
                for subscriber in list(self._subscribers):
                    handed += subscriber.offer(event)
                if self._direct:
                    handed += await self._write_directly(event)
            span.set_attribute("alliance.events", len(events))
            span.set_attribute("alliance.subscribers", self.subscriber_count)
            span.set_attribute("alliance.deliveries", handed)

    async def _write_directly(self, event: EventRecord) -> int:
        """Executes `event` once per group with a direct subscriber wanting it, and writes each
        group's text to its subscribers; those it cannot serve get the event queued instead."""
        wanted: list[tuple[Hashable, list[Subscriber]]] = []
        for group, members in self._direct.items():
            takers = [s for s in members if s.accepts(event)]
            if takers:
                wanted.append((group, takers))
        if not wanted:
            return 0
        executions = [asyncio.ensure_future(_outcome(takers[0], event)) for _, takers in wanted]
        # Every subscriber waits on the slowest group here: one that takes longer goes to its
        # subscribers' own streams (they share the execution still under way), from now on.
        await asyncio.wait(executions, timeout=DIRECT_EXECUTION_SECONDS)
        handed = written = 0
        for (group, takers), execution in zip(wanted, executions, strict=True):
            text: str | None = None
            if execution.done():
                error = execution.exception()
                text = execution.result().pure_text() if error is None else None
                if text is None:
                    # Not pure, or it failed: from now on each reader's stream executes it.
                    if error is not None:
                        log.warning(
                            "direct delivery could not execute an event; its subscribers' "
                            "streams will",
                            extra={"error": type(error).__name__},
                        )
                    self._detach(group)
            else:
                execution.add_done_callback(_consume)
                self._detach(group)
            for subscriber in takers:
                if event.cursor <= subscriber.position:
                    continue  # it had this one from its own queue
                if subscriber.direct_group is not None:
                    assert subscriber.delivery is not None
                    if text is not None and subscriber.delivery.send(text):
                        subscriber.position = event.cursor
                        written += 1
                        continue
                    self._queue_again(subscriber)
                if subscriber in self._subscribers:  # not if it left meanwhile
                    handed += subscriber.offer(event)
        fanout.count_direct(written)
        return handed + written

    def _detach(self, group: Hashable) -> None:
        for subscriber in list(self._direct.get(group, ())):
            self._queue_again(subscriber)
            if subscriber.delivery is not None:
                subscriber.delivery.detach()


async def _outcome(subscriber: Subscriber, event: EventRecord) -> Outcome:
    delivery = subscriber.delivery
    assert delivery is not None and delivery.outcome_of is not None
    return await delivery.outcome_of(event)


def _consume(execution: asyncio.Future[Outcome]) -> None:
    # Finished after the hub moved on: its result served the subscribers' own streams.
    if not execution.cancelled():
        execution.exception()


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
