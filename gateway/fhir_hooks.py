"""The gateway's end of the FHIR members' rest hook (`[events] fhir_hook_base_url`): each FHIR
member's change feed is given the URL at which its server notifies this gateway and the member's
own secret, and `POST /fhir-hooks/{member}` (or `PUT /fhir-hooks/{member}/{type}/{id}`) receives
the notifications. A notification is a wake-up only: its body is never read. Its secret is checked
in constant time, and the wake is relayed through the gateway's database (`pg_notify`) to whichever
replica holds the member's watch, since the load balancer may have brought it to any of them.

Each member's secret is HMAC-SHA256(the configured secret, alliance and member): the header a
member's server keeps (and its administrators can read) wakes that member only."""

from __future__ import annotations

import hashlib
import hmac
import logging
from collections.abc import Callable, Iterable
from typing import Any, Protocol, runtime_checkable

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from adapters.registry.events import EventLogUnavailable, EventStore
from gateway.settings import Settings

log = logging.getLogger(__name__)

PATH = "/fhir-hooks"


@runtime_checkable
class RestHookFeed(Protocol):
    """A change feed whose source can notify the gateway over HTTP (the FHIR one)."""

    member: str

    def use_rest_hook(self, endpoint: str, secret: str, recheck_seconds: float) -> None: ...


def member_secret(key: bytes, alliance_id: str, member: str) -> str:
    return hmac.new(key, f"fhir-hook\0{alliance_id}\0{member}".encode(), hashlib.sha256).hexdigest()


def _key(settings: Settings) -> bytes | None:
    config = settings.events
    if config.fhir_hook_base_url is None or config.fhir_hook_secret is None:
        return None
    return config.fhir_hook_secret.get_secret_value().encode()


def attach(settings: Settings, feeds: Iterable[object]) -> None:
    """Gives each FHIR member's change feed its rest hook, when the gateway has a URL for it."""
    key, base = _key(settings), settings.events.fhir_hook_base_url
    if key is None or base is None:
        return
    for feed in feeds:
        if isinstance(feed, RestHookFeed):
            feed.use_rest_hook(
                f"{base.rstrip('/')}{PATH}/{feed.member}",
                member_secret(key, settings.alliance_id, feed.member),
                settings.events.notify_fallback_seconds,
            )


def _error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"errors": [{"message": message, "extensions": {"code": code}}]}, status)


class HookReceiver:
    """The notifications' endpoint: authenticates, relays the wake, answers at once."""

    def __init__(self, expected: dict[str, str], store: Callable[[], EventStore]) -> None:
        self._expected = {m: f"Bearer {s}".encode() for m, s in expected.items()}
        self._store = store

    async def receive(self, request: Request) -> Response:
        member = request.path_params["member"]
        expected = self._expected.get(member)
        if expected is None:
            log.warning("FHIR rest hook for no FHIR member", extra={"outcome": "unknown member"})
            return _error(404, "NOT_FOUND", "No FHIR member of this gateway has this name.")
        presented = request.headers.get("authorization", "").encode("latin-1", "replace")
        if not hmac.compare_digest(presented, expected):
            log.warning(
                "FHIR rest hook refused", extra={"member": member, "outcome": "unauthenticated"}
            )
            return _error(
                401, "UNAUTHENTICATED", "A notification must carry the member's hook secret."
            )
        try:
            await self._store().wake_watch(member)
        except (EventLogUnavailable, KeyError):
            # The server retries, and the watch's own poll finds the change anyway.
            log.warning(
                "FHIR rest hook not relayed", extra={"member": member, "outcome": "unavailable"}
            )
            return _error(503, "UNAVAILABLE", "The gateway cannot relay notifications just now.")
        log.debug("FHIR rest hook relayed", extra={"member": member, "outcome": "relayed"})
        return Response(status_code=204)


def routes(settings: Settings, state: dict[str, Any]) -> list[Route]:
    """The notifications' routes (none when the gateway has no URL for them). `state` holds the
    replica's event store once it has started."""
    key = _key(settings)
    if key is None:
        return []
    receiver = HookReceiver(
        {
            m.code: member_secret(key, settings.alliance_id, m.code)
            for m in settings.members
            if m.kind == "fhir"
        },
        lambda: state["events"],
    )
    return [
        Route(f"{PATH}/{{member}}", receiver.receive, methods=["POST", "PUT"]),
        Route(f"{PATH}/{{member}}/{{kind}}/{{id}}", receiver.receive, methods=["POST", "PUT"]),
    ]
