"""A demo hospital's integration engine publishing to its own FHIR R4 server: what writes there
when the hospital's systems work, not through the gateway. Resources follow the published mapping
(adapters/fhir/MAPPING.md); an update names the version it read (If-Match), as a careful engine
does, so that a change someone else made meanwhile is not overwritten."""

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

    async def create(self, resource: Mapping[str, Any]) -> dict[str, Any]:
        _, created = await self._send(
            "POST",
            str(resource["resourceType"]),
            body=resource,
            headers={"Prefer": "return=representation"},
        )
        return created

    async def replace(self, resource: Mapping[str, Any], version: int) -> dict[str, Any] | None:
        """The resource at `version` replaced by `resource`; None when it has moved on."""
        status, updated = await self._send(
            "PUT",
            f"{resource['resourceType']}/{resource['id']}",
            body=resource,
            headers={"If-Match": f'W/"{version}"', "Prefer": "return=representation"},
        )
        return None if status == 412 else updated

    async def search(self, resource_type: str, params: Sequence[tuple[str, str]]) -> list[Any]:
        """The first page of a search: the engine works on recent records only."""
        _, bundle = await self._send("GET", resource_type, params=params)
        return [e["resource"] for e in bundle.get("entry") or () if "resource" in e]

    async def transaction(self, entries: list[dict[str, Any]]) -> bool:
        """All entries or none; False when an If-Match in them failed."""
        status, _ = await self._send(
            "POST", "", body={"resourceType": "Bundle", "type": "transaction", "entry": entries}
        )
        return status != 412
