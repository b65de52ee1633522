"""A lean graphql-transport-ws subscriber for the benchmarks: RFC 6455 framing read straight off
an asyncio protocol, each text message handed to a callback as it is parsed.

The load generator shares the machine's cores with the gateway it measures. The websockets
library wakes a task for every message it receives (about 40 µs of CPU each here), so that 10,000
subscribers at 5 events a second need about two cores just to read; this reads a message in
about 6 µs. It speaks only what the benchmark needs: no compression, no fragmented messages (the
gateway sends neither), text and control frames."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import struct
from collections.abc import Callable
from typing import cast
from urllib.parse import urlsplit

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
TEXT, CLOSE, PING, PONG = 0x1, 0x8, 0x9, 0xA


def _frame(opcode: int, payload: bytes) -> bytes:
    """A client frame: masked, as RFC 6455 requires of clients."""
    mask = os.urandom(4)
    n = len(payload)
    if n < 126:
        head = struct.pack("!BB", 0x80 | opcode, 0x80 | n)
    elif n < 1 << 16:
        head = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, n)
    else:
        head = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, n)
    masked = bytes(b ^ mask[i & 3] for i, b in enumerate(payload))
    return head + mask + masked


class HandshakeFailed(Exception):
    pass


class LeanSubscriber(asyncio.Protocol):
    """One WebSocket connection. `on_text(text, connection)` gets every text message."""

    def __init__(self, on_text: Callable[[bytes, LeanSubscriber], None]) -> None:
        self._on_text = on_text
        self._buffer = bytearray()
        self._key = base64.b64encode(os.urandom(16))
        self._upgraded: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.transport: asyncio.Transport | None = None
        self.close_code: int | None = None
        self.close_reason = ""

    @classmethod
    async def connect(
        cls, url: str, subprotocol: str, on_text: Callable[[bytes, LeanSubscriber], None]
    ) -> LeanSubscriber:
        parts = urlsplit(url)
        loop = asyncio.get_running_loop()
        _, connection = await loop.create_connection(
            lambda: cls(on_text), parts.hostname or "127.0.0.1", parts.port or 80
        )
        assert connection.transport is not None
        connection.transport.write(
            (
                f"GET {parts.path or '/'} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
                "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                f"Sec-WebSocket-Key: {connection._key.decode()}\r\nSec-WebSocket-Version: 13\r\n"
                f"Sec-WebSocket-Protocol: {subprotocol}\r\n\r\n"
            ).encode()
        )
        try:
            await connection._upgraded
        except BaseException:
            connection.abort()
            raise
        return connection

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self._upgraded.done():
            self._upgraded.set_exception(HandshakeFailed(f"connection lost: {exc!r}"))
        if not self.closed.done():
            self.closed.set_result(None)

    def send_text(self, text: str) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(_frame(TEXT, text.encode()))

    async def close(self, code: int = 1000) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(_frame(CLOSE, struct.pack("!H", code)))
            try:
                await asyncio.wait_for(asyncio.shield(self.closed), 5)
            except TimeoutError:
                self.abort()

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()

    def data_received(self, data: bytes) -> None:
        buffer = self._buffer
        buffer += data
        if not self._upgraded.done():
            end = buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(buffer[:end]).decode("latin-1").split("\r\n")
            del buffer[: end + 4]
            accept = base64.b64encode(hashlib.sha1(self._key + GUID).digest()).decode()
            headers = {
                k.strip().lower(): v.strip() for k, _, v in (h.partition(":") for h in head[1:])
            }
            if (
                not head[0].startswith("HTTP/1.1 101")
                or headers.get("sec-websocket-accept") != accept
            ):
                self._upgraded.set_exception(HandshakeFailed(head[0]))
                self.abort()
                return
            self._upgraded.set_result(None)
        while len(buffer) >= 2:
            first, second = buffer[0], buffer[1]
            n, start = second & 0x7F, 2
            if n == 126:
                if len(buffer) < 4:
                    return
                n, start = struct.unpack_from("!H", buffer, 2)[0], 4
            elif n == 127:
                if len(buffer) < 10:
                    return
                n, start = struct.unpack_from("!Q", buffer, 2)[0], 10
            if len(buffer) < start + n:
                return
            payload = bytes(buffer[start : start + n])
            del buffer[: start + n]
            opcode = first & 0x0F
            if not first & 0x80 or second & 0x80:
                self._fail(1002, "fragmented or masked server frame")
                return
            if opcode == TEXT:
                self._on_text(payload, self)
            elif opcode == PING and self.transport is not None:
                self.transport.write(_frame(PONG, payload))
            elif opcode == CLOSE:
                self.close_code = (
                    struct.unpack_from("!H", payload)[0] if len(payload) >= 2 else 1005
                )
                self.close_reason = payload[2:].decode("utf-8", "replace")
                if self.transport is not None and not self.transport.is_closing():
                    self.transport.write(_frame(CLOSE, payload[:2]))
                    self.transport.close()
                return
            elif opcode != PONG:
                self._fail(1003, f"unexpected opcode {opcode}")
                return

    def _fail(self, code: int, reason: str) -> None:
        self.close_code, self.close_reason = code, reason
        self.abort()
