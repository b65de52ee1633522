"""uvicorn's sans-I/O WebSocket protocol (websockets-sansio), lighter per open connection.

A subscriber holds its connection open for hours, and a replica holds thousands: what each
connection keeps alive is the gateway's memory per subscriber. uvicorn's protocol keeps an
asyncio.Queue for what the application has yet to receive and an asyncio.Event for the write
buffer, whose deques cost ~0.8 KiB each however empty, and it keeps the handshake's parsed request
and response (their headers) for as long as the connection lives. Here the queue and the event are
a list and a future made only while someone waits, and the handshake is let go once answered. The
application still sees the request's headers in its ASGI scope (a copy made at the handshake)."""

from __future__ import annotations

import asyncio
from typing import Any, Generic, TypeVar

from uvicorn._types import ASGIReceiveEvent, ASGISendEvent
from uvicorn.config import Config
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from uvicorn.server import ServerState
from websockets.protocol import State

from gateway.runtime.direct_delivery import SCOPE_EXTENSION

T = TypeVar("T")


class _Waiters:
    """The futures of those waiting, made only while one waits."""

    __slots__ = ("_waiters",)

    def __init__(self) -> None:
        self._waiters: list[asyncio.Future[None]] | None = None

    async def _wait(self) -> None:
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if self._waiters is None:
            self._waiters = []
        self._waiters.append(waiter)
        try:
            await waiter
        finally:
            # Cancelled or woken: either way no longer waiting.
            if self._waiters is not None and waiter in self._waiters:
                self._waiters.remove(waiter)
                if not self._waiters:
                    self._waiters = None

    def _wake(self) -> None:
        waiters, self._waiters = self._waiters, None
        for waiter in waiters or ():
            if not waiter.done():
                waiter.set_result(None)


class Inbox(_Waiters, Generic[T]):
    """What uvicorn's protocol uses of its unbounded asyncio.Queue: put_nowait, get, empty."""

    __slots__ = ("_items",)

    def __init__(self) -> None:
        super().__init__()
        self._items: list[T] = []

    def put_nowait(self, item: T) -> None:
        self._items.append(item)
        self._wake()

    def empty(self) -> bool:
        return not self._items

    def qsize(self) -> int:
        return len(self._items)

    async def get(self) -> T:
        while not self._items:
            await self._wait()
        return self._items.pop(0)


class Flag(_Waiters):
    """What uvicorn's protocol uses of an asyncio.Event: set, clear, is_set, wait."""

    __slots__ = ("_set",)

    def __init__(self) -> None:
        super().__init__()
        self._set = False

    def is_set(self) -> bool:
        return self._set

    def set(self) -> None:
        self._set = True
        self._wake()

    def clear(self) -> None:
        self._set = False

    async def wait(self) -> bool:
        while not self._set:
            await self._wait()
        return True


class GatewayWebSocketProtocol(WebSocketsSansIOProtocol):
    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        # Nothing has been queued or waited on yet: the library's are simply replaced.
        self.queue: Inbox[ASGIReceiveEvent] = Inbox()  # type: ignore[assignment]
        writable = Flag()
        writable.set()
        self.writable: Flag = writable  # type: ignore[assignment]

    async def run_asgi(self) -> None:
        # The application may write a subscriber's messages without the ASGI layers
        # (gateway/runtime/direct_delivery.py).
        self.scope["extensions"][SCOPE_EXTENSION] = {"writer": self}
        await super().run_asgi()

    def send_text_now(self, text: str) -> bool:
        """Writes a text message at once, as an ASGI `websocket.send` of it would; False, writing
        nothing, when the connection is not open or its peer has stopped reading (the
        transport's buffer is past its high-water mark)."""
        if (
            self.close_sent
            or self.disconnected
            or self.conn.state is not State.OPEN
            or not self.writable.is_set()
            or self.transport.is_closing()
        ):
            return False
        self.conn.send_text(text.encode())
        self.transport.write(b"".join(self.conn.data_to_send()))
        return True

    async def send(self, message: ASGISendEvent) -> None:
        await super().send(message)
        if self.handshake_complete and getattr(self, "response", None) is not None:
            # Answered (accepted or refused): the handshake's request and response are not read
            # again, and their headers would be kept for the connection's whole life. The
            # request's are emptied too: the websockets parser's frame still holds the request.
            self.request.headers.clear()
            self.request = None  # type: ignore[assignment]
            self.response = None  # type: ignore[assignment]
