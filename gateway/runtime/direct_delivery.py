"""Deliver many: a subscriber that has caught up is written its group's result of each event by
the replica's hub, straight to its socket, instead of running its own stream for it.

A subscriber's stream (its GraphQL execution, its extensions' hooks, the ASGI send) costs about
ten times what writing the message does. Once a subscription has delivered its first event
through its stream, that stream has learned its group (gateway/runtime/fanout.py) and how to
execute an event for it; from then on, while the subscriber waits with nothing queued, the hub
executes each event once per group and writes the one text to every subscriber of the group.

The hub falls back to the subscriber's own stream, by queueing the event as before, whenever the
direct write cannot stand for it: the result is not pure (it has errors, read something to audit
or asked a member: each reader is then recorded on its own), the group's execution is slow, the
socket has stopped taking data (its peer is slow: the queue's bound and SUBSCRIBER_TOO_SLOW apply
as before), or the operation or its connection is ending. Order holds: the hub hands out events in log order, and a subscriber is written
directly only while nothing of its own is queued."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Hashable
from contextvars import ContextVar
from typing import Protocol

from adapters.registry.records import EventRecord
from gateway.runtime.fanout import next_message_prefix
from gateway.runtime.outcome import Outcome

# The ASGI scope extension under which the gateway's WebSocket protocol offers direct writes.
SCOPE_EXTENSION = "alliance.websocket.send_now"


class SocketWriter(Protocol):
    def send_text_now(self, text: str) -> bool:
        """Write a text message now, as an ASGI `websocket.send` would; False, writing nothing,
        when the connection is closing or its peer has stopped reading."""
        ...


OutcomeOf = Callable[[EventRecord], Awaitable[Outcome]]


class DirectDelivery:
    """One subscription operation's direct path: where its messages go, and, once its stream has
    executed a first event, its group and how to execute an event for the group."""

    __slots__ = ("_open", "_prefix", "_writer", "group", "never", "outcome_of")

    def __init__(
        self, writer: SocketWriter, operation_id: str, is_open: Callable[[], bool]
    ) -> None:
        self._writer = writer
        # Whether the operation still runs: one its client completed is written nothing more.
        self._open = is_open
        self._prefix = next_message_prefix(operation_id)
        self.group: Hashable | None = None
        self.outcome_of: OutcomeOf | None = None
        self.never = False

    @property
    def ready(self) -> bool:
        return self.outcome_of is not None

    def attach(self, group: Hashable, outcome_of: OutcomeOf) -> None:
        if not self.never:
            self.group, self.outcome_of = group, outcome_of

    def detach(self) -> None:
        """Never direct again: its group's results need each reader's own execution, or take
        too long for the hub to wait on."""
        self.group = self.outcome_of = None
        self.never = True

    def send(self, data_text: str) -> bool:
        """The graphql-transport-ws `next` message of this operation carrying `data_text`."""
        return self._open() and self._writer.send_text_now(f"{self._prefix}{data_text}}}}}")


# Set in each subscription operation's task by the WebSocket handler; read there by the hub when
# the subscription joins it, and by the executor at its first event.
current: ContextVar[DirectDelivery | None] = ContextVar("direct_delivery", default=None)
