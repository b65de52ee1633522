"""GraphQL over Server-Sent Events (the graphql-sse protocol, distinct connections mode): each
result of the operation is an `event: next`, the end an `event: complete`. Comment lines keep idle
proxies from closing the stream, and the stream ends when the subscriber's token expires."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from typing import Any

from starlette.responses import StreamingResponse
from strawberry.types.execution import ExecutionResult, PreExecutionError

from gateway.request_checks import dumps_json
from gateway.runtime.outcome import SharedData
from resolvers.errors import ErrorCode

EVENT_STREAM = "text/event-stream"


def wants_event_stream(accept: str | None) -> bool:
    return bool(accept) and EVENT_STREAM in accept.lower()  # type: ignore[union-attr]


def _frame(event: str, data: dict[str, Any] | None) -> str:
    # JSON text holds no line break, so it is one `data:` line; dumps_json always encodes.
    return f"event: {event}\ndata: {_json(data) if data else ''}\n\n"


def _json(body: dict[str, Any]) -> str:
    """A result's JSON; a subscription group's shared data is serialized once for all of it."""
    data = body.get("data")
    if isinstance(data, SharedData) and len(body) == 1:
        return f'{{"data":{data.text()}}}'
    return dumps_json(body)


def _payload(result: ExecutionResult) -> dict[str, Any]:
    # Its errors are already public: PublicErrors sees every streamed result before it is sent.
    body: dict[str, Any] = {}
    if not isinstance(result, PreExecutionError):
        body["data"] = result.data
    if result.errors:
        body["errors"] = [e.formatted for e in result.errors]
    return body


_EXPIRED = {
    "errors": [
        {
            "message": "Your token has expired: subscribe again with a fresh one, from the last "
            "cursor you received.",
            "extensions": {"code": ErrorCode.TOKEN_EXPIRED},
        }
    ]
}


async def _frames(
    results: AsyncIterator[Any], keep_alive_seconds: float, expires_at: float | None
) -> AsyncIterator[str]:
    queue: asyncio.Queue[Any] = asyncio.Queue(maxsize=1)
    done = object()

    async def pump() -> None:
        try:
            async for result in results:
                await queue.put(result)
        finally:
            await queue.put(done)

    pumping = asyncio.create_task(pump())
    try:
        while True:
            wait = keep_alive_seconds
            if expires_at is not None:
                left = expires_at - time.time()
                if left <= 0:
                    yield _frame("next", _EXPIRED)
                    break
                wait = min(wait, left)
            try:
                item = await asyncio.wait_for(queue.get(), wait)
            except TimeoutError:
                yield ": keep-alive\n\n"
                continue
            if item is done:
                pumping.result()
                break
            yield _frame("next", _payload(item))
        yield _frame("complete", None)
    finally:
        pumping.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await pumping
        aclose = getattr(results, "aclose", None)
        if aclose is not None:
            await aclose()


def event_stream(
    results: AsyncIterator[Any], *, keep_alive_seconds: float, expires_at: float | None
) -> StreamingResponse:
    return StreamingResponse(
        _frames(results, keep_alive_seconds, expires_at),
        media_type=EVENT_STREAM,
        # Proxies must neither buffer nor transform the stream.
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
