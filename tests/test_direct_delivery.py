"""The hub's direct path (gateway/runtime/direct_delivery.py), fast and in memory: a caught-up
subscriber is written each event's result by the hub, once per group, and falls back to its own
queue, in order and with nothing lost or repeated, whenever the write cannot stand for it.

The same path over real WebSockets is covered in tests/test_subscription_fanout.py."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, cast

import pytest

from adapters.registry.events import EventStore
from adapters.registry.records import EventRecord
from gateway.runtime import direct_delivery
from gateway.runtime.direct_delivery import DirectDelivery
from gateway.runtime.outcome import Outcome, SharedData
from gateway.workers import event_hub
from gateway.workers.event_hub import EventHub, Subscriber
from resolvers.audit import AuditLog
from resolvers.event_feed import Overflowed

AT = datetime(2026, 11, 26, tzinfo=UTC)


def _event(cursor: int, member: str = "LHZY") -> EventRecord:
    return EventRecord(
        cursor=cursor,
        type="REFERRAL_CREATED",
        members=[member],
        entity_type="Referral",
        entity_id=f"referral-{cursor}",
        entity_version=1,
        occurred_at=AT,
        recorded_at=AT,
        detected_by="WATCHER",
    )


class _Log:
    """The event log's part the hub reads: what was appended after a cursor."""

    def __init__(self) -> None:
        self.events: list[EventRecord] = []

    async def after(self, position: int, limit: int) -> list[EventRecord]:
        return [e for e in self.events if e.cursor > position][:limit]

    async def latest(self) -> int:
        return self.events[-1].cursor if self.events else 0


class _Socket:
    def __init__(self) -> None:
        self.written: list[str] = []
        self.refusing = False
        self.open = True

    def send_text_now(self, text: str) -> bool:
        if self.refusing:
            return False
        self.written.append(text)
        return True


class _Executions:
    """Stands for a group's GraphQL execution: counts them, and may make one impure or slow."""

    def __init__(self) -> None:
        self.runs: list[int] = []
        self.impure: set[int] = set()
        self.slow: set[int] = set()

    async def __call__(self, record: EventRecord) -> Outcome:
        self.runs.append(record.cursor)
        if record.cursor in self.slow:
            await asyncio.sleep(0.3)
        audit = AuditLog()
        if record.cursor in self.impure:
            audit.entries["read"] = cast(Any, object())
        data = SharedData({"events": {"cursor": str(record.cursor)}})
        return Outcome(data, None, audit, frozenset(), ())


def _cursors(socket: _Socket) -> list[int]:
    return [int(text.split('"cursor":"')[1].split('"')[0]) for text in socket.written]


async def _subscribe(
    hub: EventHub,
    socket: _Socket,
    executions: _Executions,
    accepts: Callable[[EventRecord], bool] = lambda e: True,
    group: str = "envelope",
) -> Subscriber:
    """Joins as the WebSocket handler and the executor would: the delivery set in the
    operation's task, attached once the stream has executed a first event."""

    async def join() -> Subscriber:
        delivery = DirectDelivery(socket, "1", lambda: socket.open)
        direct_delivery.current.set(delivery)
        subscriber = hub.subscribe(accepts)
        delivery.attach(group, executions)
        return subscriber

    return await asyncio.create_task(join())


class _Stream:
    """What resolvers/subscriptions.stream does with a subscriber, recording what it yields."""

    def __init__(self, subscriber: Subscriber) -> None:
        self.subscriber = subscriber
        self.yielded: list[int] = []
        self.overflowed = False
        self.task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        try:
            while True:
                for event in await self.subscriber.next_batch():
                    if event.cursor > self.subscriber.position:
                        self.subscriber.position = event.cursor
                        self.yielded.append(event.cursor)
        except Overflowed:
            self.overflowed = True


async def _settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def _append(log: _Log, hub: EventHub, *cursors: int) -> None:
    log.events.extend(_event(c) for c in cursors)
    await hub.catch_up()
    await _settle()


@pytest.fixture
def log() -> _Log:
    return _Log()


@pytest.fixture
def hub(log: _Log) -> EventHub:
    return EventHub(cast(EventStore, log), listen=cast(Any, None), queue_capacity=4)


async def test_a_caught_up_subscriber_is_written_directly_in_order(
    log: _Log, hub: EventHub
) -> None:
    socket, executions = _Socket(), _Executions()
    stream = _Stream(await _subscribe(hub, socket, executions))
    await _settle()
    await _append(log, hub, 1, 2, 3)
    assert _cursors(socket) == [1, 2, 3] and stream.yielded == []
    assert stream.subscriber.position == 3
    assert hub.subscriber_count == 1


async def test_a_group_is_executed_once_per_event_for_all_its_subscribers(
    log: _Log, hub: EventHub
) -> None:
    executions = _Executions()
    sockets = [_Socket() for _ in range(3)]
    only_lyzg = _Socket()
    streams = [_Stream(await _subscribe(hub, s, executions)) for s in sockets]
    streams.append(
        _Stream(await _subscribe(hub, only_lyzg, executions, lambda e: "LYZG" in e.members))
    )
    await _settle()
    await _append(log, hub, 1, 2)
    assert executions.runs == [1, 2]
    assert all(_cursors(s) == [1, 2] for s in sockets)
    # An event a subscriber may not see is neither written nor queued for it.
    assert only_lyzg.written == [] and streams[-1].yielded == []


async def test_a_refused_write_falls_back_to_the_queue_with_nothing_lost_or_repeated(
    log: _Log, hub: EventHub
) -> None:
    socket, executions = _Socket(), _Executions()
    stream = _Stream(await _subscribe(hub, socket, executions))
    await _settle()
    await _append(log, hub, 1, 2)
    socket.refusing = True  # its peer stopped reading
    await _append(log, hub, 3, 4)
    assert stream.yielded == [3, 4]
    socket.refusing = False
    # Caught up again: written directly again.
    await _append(log, hub, 5)
    assert _cursors(socket) == [1, 2, 5] and stream.yielded == [3, 4]
    assert sorted(_cursors(socket) + stream.yielded) == [1, 2, 3, 4, 5]


async def test_a_subscriber_whose_peer_stops_reading_is_cut_off_as_before(
    log: _Log, hub: EventHub
) -> None:
    socket, executions = _Socket(), _Executions()
    subscriber = await _subscribe(hub, socket, executions)
    waiting = asyncio.create_task(subscriber.next_batch())  # caught up: written directly now
    await _settle()
    socket.refusing = True
    await _append(log, hub, 1)
    assert [e.cursor for e in await waiting] == [1]
    # Its stream now waits on the socket too and takes nothing more: the queue's bound holds.
    await _append(log, hub, *range(2, 8))
    with pytest.raises(Overflowed):
        await subscriber.next_batch()
    assert socket.written == []


async def test_an_impure_result_is_executed_by_each_reader_from_then_on(
    log: _Log, hub: EventHub
) -> None:
    socket, executions = _Socket(), _Executions()
    stream = _Stream(await _subscribe(hub, socket, executions))
    await _settle()
    executions.impure.add(2)
    await _append(log, hub, 1, 2, 3)
    # Event 1 written; 2 needs the reader's own execution (its audit), and 3 too: the group is
    # never written directly again.
    assert _cursors(socket) == [1] and stream.yielded == [2, 3]
    delivery = stream.subscriber.delivery
    assert delivery is not None and not delivery.ready
    # The stream's next pure result does not make it direct again.
    delivery.attach("envelope", executions)
    assert not delivery.ready
    assert executions.runs == [1, 2]


async def test_leaving_while_written_directly_leaves_the_hub(log: _Log, hub: EventHub) -> None:
    socket, executions = _Socket(), _Executions()
    stream = _Stream(await _subscribe(hub, socket, executions))
    await _settle()
    await _append(log, hub, 1)
    hub.unsubscribe(stream.subscriber)
    stream.task.cancel()
    await _append(log, hub, 2)
    assert hub.subscriber_count == 0 and _cursors(socket) == [1]


async def test_an_execution_slower_than_the_hub_waits_goes_to_the_streams(
    log: _Log, hub: EventHub, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(event_hub, "DIRECT_EXECUTION_SECONDS", 0.05)
    socket, executions = _Socket(), _Executions()
    stream = _Stream(await _subscribe(hub, socket, executions))
    await _settle()
    executions.slow.add(2)
    await _append(log, hub, 1, 2)
    assert _cursors(socket) == [1] and stream.yielded == [2]
    # The hub does not wait on this group again: its stream executes what follows.
    await _append(log, hub, 3)
    assert _cursors(socket) == [1] and stream.yielded == [2, 3]


async def test_an_operation_its_client_completed_is_written_nothing_more(
    log: _Log, hub: EventHub
) -> None:
    socket, executions = _Socket(), _Executions()
    stream = _Stream(await _subscribe(hub, socket, executions))
    await _settle()
    await _append(log, hub, 1)
    socket.open = False  # the client sent `complete`; the stream's cancellation is under way
    await _append(log, hub, 2)
    assert _cursors(socket) == [1] and stream.yielded == [2]
