"""Change capture at a member's FHIR server: the resources changed since a watermark, by
(meta.lastUpdated, id), found by polling `_lastUpdated` (ascending) from the watermark. The
change watch re-reads its overlap window and records each (record, version, type) once, as for
the SQL sources. The server's search cannot say `(lastUpdated, id) > (t, k)` and orders its own
ties by insertion, so the feed asks from `t` on and orders and cuts the ties itself.

Given a rest hook (`use_rest_hook`), the feed keeps the member's Subscriptions
(adapters/fhir/subscriptions.py) so that the server tells the gateway when to read, and the watch
polls only now and then; without one, or when the server refuses them, it polls as before."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import datetime

from adapters.fhir import mapping
from adapters.fhir.client import FhirClient
from adapters.fhir.source import _KINDS, WATCHED
from adapters.fhir.subscriptions import RestHook, Subscriptions, supported
from adapters.sources.errors import SourceError, SourceErrorCode
from adapters.sources.records import (
    ChangeRow,
    ConsultationRow,
    DecisionRow,
    ReferralRow,
    ReportRow,
)

log = logging.getLogger(__name__)


class FhirChangeFeed:
    """The source port's ChangeFeed over a FHIR R4 server: polled, or woken by its rest-hook
    Subscriptions (`connect` says which)."""

    kinds: tuple[str, ...] = WATCHED

    def __init__(self, member: str, client: FhirClient) -> None:
        self.member = member
        self._client = client
        self._open = False
        self._subscriptions: Subscriptions | None = None
        self._recheck_seconds = 30.0
        self._pushed = False
        self._recheck_at = 0.0

    def use_rest_hook(self, endpoint: str, secret: str, recheck_seconds: float) -> None:
        """Have the server notify `endpoint`, with `secret`, of every change of a watched kind;
        its Subscriptions are looked at again every `recheck_seconds`."""
        self._subscriptions = Subscriptions(self.member, self._client, RestHook(endpoint, secret))
        self._recheck_seconds = recheck_seconds

    async def connect(self, on_notify: Callable[[], None]) -> bool:
        """Checks the server answers and, given a rest hook, that its Subscriptions are live.
        True when they are: the notifications reach the gateway's endpoint, which wakes the watch
        (`on_notify` is not called from here: the replica that receives a notification need not
        be the one watching, and relays it through the gateway's own database)."""
        self._pushed = False
        answer = await self._client.request("GET", "metadata", what="metadata")
        if answer.body is None or answer.body.get("resourceType") != "CapabilityStatement":
            raise SourceError(SourceErrorCode.SOURCE_SCHEMA_MISMATCH, self.member)
        self._open = True
        if self._subscriptions is None:
            return False
        if not supported(answer.body):
            log.warning(
                "FHIR server keeps no Subscriptions of ours, polling",
                extra={"member": self.member, "outcome": "not supported"},
            )
            return False
        self._pushed = await self._subscriptions.ensure()
        if not self._pushed:
            log.warning(
                "FHIR server refused the rest-hook Subscriptions, polling",
                extra={"member": self.member, "outcome": "refused"},
            )
        self._recheck_at = time.monotonic() + self._recheck_seconds
        return self._pushed

    async def _recheck(self) -> None:
        subscriptions = self._subscriptions
        if subscriptions is None or not self._pushed or time.monotonic() < self._recheck_at:
            return
        self._recheck_at = time.monotonic() + self._recheck_seconds
        if not await subscriptions.keep():
            # Closed: the watch connects again, and polls if the server still refuses them.
            log.warning(
                "FHIR server turned the rest-hook Subscriptions off",
                extra={"member": self.member, "outcome": "off"},
            )
            self._open = False

    @property
    def connected(self) -> bool:
        return self._open

    async def close(self) -> None:
        self._open = False
        await self._client.close()

    def _bundle(self, body: dict[str, object] | None) -> dict[str, object]:
        if body is None or body.get("resourceType") != "Bundle":
            raise SourceError(SourceErrorCode.SOURCE_SCHEMA_MISMATCH, self.member)
        return body

    async def changes(self, table: str, after: tuple[datetime, str], limit: int) -> list[ChangeRow]:
        """Resources of `table`'s kind changed after `after` (lastUpdated, id; "" before every
        id), oldest first, each at its latest version."""
        await self._recheck()
        k = _KINDS[table]
        at, key = after
        params = [
            *k.base,
            ("_lastUpdated", f"ge{mapping.instant(at)}"),
            ("_sort", "_lastUpdated"),
            ("_count", str(min(limit + 1, 1000))),
        ]
        answer = await self._client.request("GET", k.resource, params=params, what=f"{k.resource}?")
        kept: list[ChangeRow] = []
        while True:
            bundle = self._bundle(answer.body)
            last: datetime | None = None
            for entry in bundle.get("entry") or ():  # type: ignore[attr-defined]
                resource = entry.get("resource") if isinstance(entry, dict) else None
                if not isinstance(resource, dict) or resource.get("resourceType") != k.resource:
                    raise SourceError(SourceErrorCode.SOURCE_SCHEMA_MISMATCH, self.member)
                try:
                    row = k.to_row(resource)
                    version, updated_at = mapping.version_of(resource)
                except (mapping.Malformed, KeyError, ValueError):
                    raise SourceError(SourceErrorCode.SOURCE_SCHEMA_MISMATCH, self.member) from None
                last = updated_at
                # A report is known by its consultation's key, as in the exchange schema.
                row_id = row.consultation_id if isinstance(row, ReportRow) else row.id
                if (updated_at, row_id) <= (at, key):
                    continue
                parties: tuple[str, ...] = ()
                if isinstance(row, ReferralRow):
                    parties = (row.from_hospital, row.to_hospital)
                elif isinstance(row, ConsultationRow):
                    parties = (row.requesting_hospital, row.invited_hospital)
                elif isinstance(row, ReportRow):
                    parties = tuple(
                        t.get("code", "")
                        for t in (resource.get("meta") or {}).get("tag") or ()
                        if t.get("system") == mapping.PARTY
                    )
                elif isinstance(row, DecisionRow):
                    parties = (row.result_member,)
                kept.append(ChangeRow(table, row_id, version, updated_at, parties))
            kept.sort(key=lambda c: (c.updated_at, c.id))
            following = next(
                (
                    link.get("url")
                    for link in bundle.get("link") or ()  # type: ignore[attr-defined]
                    if isinstance(link, dict) and link.get("relation") == "next"
                ),
                None,
            )
            complete = len(kept) >= limit and last is not None and last > kept[limit - 1].updated_at
            if not isinstance(following, str) or complete:
                return kept[:limit]
            answer = await self._client.request("GET", following, what=f"{k.resource}?")

    async def now_or_latest(self, table: str) -> datetime:
        """The server's own present (the search Bundle's lastUpdated), or its newest change of
        `table` if later."""
        k = _KINDS[table]
        answer = await self._client.request(
            "GET",
            k.resource,
            params=[*k.base, ("_sort", "-_lastUpdated"), ("_count", "1")],
            what=f"{k.resource}?",
        )
        bundle = self._bundle(answer.body)
        try:
            present = mapping.parse_instant(str(bundle["meta"]["lastUpdated"]))  # type: ignore[index]
            for entry in bundle.get("entry") or ():  # type: ignore[attr-defined]
                _, updated = mapping.version_of(entry["resource"])
                present = max(present, updated)
        except (KeyError, TypeError, ValueError):
            raise SourceError(SourceErrorCode.SOURCE_SCHEMA_MISMATCH, self.member) from None
        return present
