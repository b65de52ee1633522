"""A demo hospital's integration engine publishing to its own FHIR R4 server: what writes there
when the hospital's systems work, not through the gateway. Resources follow the published mapping
(adapters/fhir/MAPPING.md); an update names the version it read (If-Match), as a careful engine
does, so that a change someone else made meanwhile is not overwritten; a request is written with
its Task (and Appointment) in one transaction, as adapters/fhir/workflow.py has it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import Any, Self

import httpx

FHIR_JSON = "application/fhir+json"


class FhirWriteError(Exception):
    """The server could not take the write: unreachable, refusing or answering off the mapping.
    `error` names the failure's kind only: a server's message may quote resource values."""

    def __init__(self, error: str) -> None:
        super().__init__(error)
        self.error = error


class FhirSystem:
    def __init__(self, base_url: str, timeout_seconds: float) -> None:
        self.base_url = base_url.rstrip("/")
        self._http = httpx.AsyncClient(
            timeout=timeout_seconds,
            headers={"Content-Type": FHIR_JSON, "Accept": FHIR_JSON},
        )

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._http.aclose()

    async def _send(
        self,
        method: str,
        path: str,
        *,
        body: Mapping[str, Any] | None = None,
        params: Sequence[tuple[str, str]] = (),
        headers: Mapping[str, str] | None = None,
    ) -> tuple[int, dict[str, Any]]:
        try:
            answer = await self._http.request(
                method,
                f"{self.base_url}/{path}".rstrip("/"),
                json=body,
                params=list(params),
                headers=dict(headers or {}),
            )
        except httpx.HTTPError as e:
            raise FhirWriteError(type(e).__name__) from e
        if answer.status_code == 412:
            return 412, {}
        if not 200 <= answer.status_code < 300:
            raise FhirWriteError(f"HTTP {answer.status_code}")
        try:
            parsed = answer.json()
        except ValueError as e:
            raise FhirWriteError("not JSON") from e
        if not isinstance(parsed, dict):
            raise FhirWriteError("not a resource")
        return answer.status_code, parsed

    async def search(self, resource_type: str, params: Sequence[tuple[str, str]]) -> list[Any]:
        """The first page of a search: the engine works on recent records only."""
        _, bundle = await self._send("GET", resource_type, params=params)
        return [e["resource"] for e in bundle.get("entry") or () if "resource" in e]

    async def transaction(self, entries: list[dict[str, Any]]) -> list[dict[str, Any]] | None:
        """All entries or none: the resources written, in the entries' order; None when an
        If-Match in them failed."""
        status, answer = await self._send(
            "POST",
            "",
            body={"resourceType": "Bundle", "type": "transaction", "entry": entries},
            headers={"Prefer": "return=representation"},
        )
        if status == 412:
            return None
        written = [e.get("resource") for e in answer.get("entry") or ()]
        if len(written) != len(entries) or not all(isinstance(r, dict) for r in written):
            raise FhirWriteError("off the transaction")
        return [r for r in written if isinstance(r, dict)]
