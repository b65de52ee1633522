"""One line per HTTP request on stdout, written once the response has been sent.

uvicorn writes its access line as the response starts, before its first byte: the time spent
formatting and writing it was time the client waited. This writes the same line after the last
byte, still inside the request's span (its trace and span ids lead to the trace), with the path
but never the query string (a GET request's document may hold a resident ID). uvicorn's own stay
off (gateway/logs.configure_logging)."""

from __future__ import annotations

import logging

from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger("alliance_gateway.access")


class AccessLog:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not log.isEnabledFor(logging.INFO):
            await self.app(scope, receive, send)
            return
        status = 500  # what uvicorn answers when the application fails before it responds

        async def sent(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sent)
        finally:
            client = scope.get("client")
            log.info(
                '%s - "%s %s HTTP/%s" %d',
                f"{client[0]}:{client[1]}" if client else "-",
                scope["method"],
                scope["path"],
                scope["http_version"],
                status,
            )
