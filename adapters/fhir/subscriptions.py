"""The fast path of change capture at a member's FHIR server: R4 rest-hook Subscriptions, one per
watched kind (its criteria the kind's own search), that make the server POST to the gateway when
such a resource is written. The channel has no `payload`: a notification carries nothing but the
shared secret in its `Authorization` header, it only says "look now", and the change watch then
reads the changes from its watermark as it would have on its next poll.

Each Subscription's id is derived from the gateway's endpoint for the member and the kind, and it
is written with PUT (update as create): a replica restarting, or another one taking the watch
over, finds it and leaves it, rather than adding one."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from adapters.fhir.client import FhirClient
from adapters.fhir.source import _KINDS, WATCHED
from adapters.sources.errors import SourceError, SourceErrorCode

REASON = "Alliance gateway change capture: a wake-up signal without payload"
# A server may judge a Subscription while storing it (active or error) or later (requested).
_LIVE = frozenset({"requested", "active"})
# The server said no to the Subscriptions themselves, not that it is unwell.
_REFUSALS = frozenset({SourceErrorCode.SOURCE_REJECTED, SourceErrorCode.SOURCE_ACCESS_DENIED})


@dataclass(frozen=True, slots=True)
class RestHook:
    """Where the member's server notifies the gateway, and the secret each notification carries."""

    endpoint: str
    secret: str = field(repr=False)


def subscription_id(endpoint: str, kind: str) -> str:
    digest = hashlib.sha256(endpoint.encode()).hexdigest()[:20]
    return f"alliance-{digest}-{kind.replace('_', '-')}"


def subscription(hook: RestHook, kind: str) -> dict[str, Any]:
    k = _KINDS[kind]
    return {
        "resourceType": "Subscription",
        "id": subscription_id(hook.endpoint, kind),
        "status": "requested",
        "reason": REASON,
        "criteria": f"{k.resource}?{urlencode(k.base, safe=':/|,')}",
        "channel": {
            "type": "rest-hook",
            "endpoint": hook.endpoint,
            "header": [f"Authorization: Bearer {hook.secret}"],
        },
    }


def supported(capability: Mapping[str, Any]) -> bool:
    """Whether the CapabilityStatement lets us keep Subscriptions of our own ids: search, and
    update that may create."""
    for rest in capability.get("rest") or ():
        if not isinstance(rest, dict) or rest.get("mode") != "server":
            continue
        for resource in rest.get("resource") or ():
            if isinstance(resource, dict) and resource.get("type") == "Subscription":
                codes = {
                    i.get("code") for i in resource.get("interaction") or () if isinstance(i, dict)
                }
                return {"search-type", "update"} <= codes and resource.get("updateCreate") is True
    return False


def _same(found: Mapping[str, Any], wanted: Mapping[str, Any]) -> bool:
    channel = found.get("channel")
    return (
        found.get("criteria") == wanted["criteria"]
        and isinstance(channel, dict)
        and {k: channel.get(k) for k in ("type", "endpoint", "header", "payload")}
        == {"payload": None, **wanted["channel"]}
    )


class Subscriptions:
    """The member's Subscriptions for the gateway's rest hook."""

    def __init__(self, member: str, client: FhirClient, hook: RestHook) -> None:
        self.member = member
        self._client = client
        self._wanted = {s["id"]: s for s in (subscription(hook, kind) for kind in WATCHED)}

    async def ensure(self) -> bool:
        """Writes each Subscription that is missing, differs or is not live; whether all are live
        afterwards (False: the server refused them, and the watch polls)."""
        found = await self._found()
        stale = [
            sid
            for sid, wanted in self._wanted.items()
            if sid not in found
            or found[sid].get("status") not in _LIVE
            or not _same(found[sid], wanted)
        ]
        return await self._write(stale)

    async def keep(self) -> bool:
        """Writes again those the server has since turned off or to error (as sekmet does when a
        notification cannot be delivered); whether all are live afterwards."""
        found = await self._found()
        return await self._write(
            [sid for sid in self._wanted if found.get(sid, {}).get("status") not in _LIVE]
        )

    async def _write(self, ids: list[str]) -> bool:
        if not ids:
            return True
        try:
            for sid in ids:
                await self._client.request(
                    "PUT", f"Subscription/{sid}", body=self._wanted[sid], what="Subscription/{id}"
                )
        except SourceError as e:
            if e.code in _REFUSALS:
                return False
            raise
        found = await self._found()
        return all(found.get(sid, {}).get("status") in _LIVE for sid in self._wanted)

    async def _found(self) -> dict[str, dict[str, Any]]:
        answer = await self._client.request(
            "GET",
            "Subscription",
            params=[("_id", ",".join(self._wanted)), ("_count", str(len(self._wanted)))],
            what="Subscription?",
        )
        body = answer.body
        if body is None or body.get("resourceType") != "Bundle":
            raise SourceError(SourceErrorCode.SOURCE_SCHEMA_MISMATCH, self.member)
        found: dict[str, dict[str, Any]] = {}
        for entry in body.get("entry") or ():
            resource = entry.get("resource") if isinstance(entry, dict) else None
            if isinstance(resource, dict) and resource.get("resourceType") == "Subscription":
                found[str(resource.get("id"))] = resource
        return found
