"""The FHIR REST client of one member: a pooled httpx.AsyncClient with connect and read timeouts,
the W3C `traceparent` on every request, a client span per request (HTTP semantic conventions: the
method, the resource type, the status; never an id, a search value or a body), and httpx's and
the server's failures translated to SourceErrors once, here. The server's text is never echoed."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx
from opentelemetry import propagate, trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from adapters.sources.errors import SourceError, SourceErrorCode

_tracer = trace.get_tracer("alliance_gateway.fhir")

FHIR_JSON = "application/fhir+json"


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    body: dict[str, Any] | None
    etag: str | None


class FhirClient:
    def __init__(
        self,
        member: str,
        base_url: str,
        *,
        timeout_seconds: float,
        pool_max_size: int,
        token: str | None = None,
    ) -> None:
        self.member = member
        self.base_url = base_url.rstrip("/")
        parts = urlsplit(self.base_url)
        self._host = parts.hostname or ""
        self._port = parts.port or (443 if parts.scheme == "https" else 80)
        self._timeout = httpx.Timeout(
            connect=timeout_seconds, read=timeout_seconds + 1.0, write=timeout_seconds, pool=None
        )
        self._limits = httpx.Limits(
            max_connections=pool_max_size, max_keepalive_connections=pool_max_size
        )
        self._headers = {"Accept": FHIR_JSON}
        if token:
            self._headers["Authorization"] = f"Bearer {token}"
        self._client: httpx.AsyncClient | None = None
        self.in_flight = 0
        self.max_size = pool_max_size

    def _http(self) -> httpx.AsyncClient:
        # Made on first use: a member that is down must not stop the gateway.
        if self._client is None:
            self._client = httpx.AsyncClient(
                timeout=self._timeout, limits=self._limits, headers=self._headers
            )
        return self._client

    async def close(self) -> None:
        if self._client is not None:
            client, self._client = self._client, None
            await client.aclose()

    def url(self, path: str) -> str:
        return f"{self.base_url}/{path.lstrip('/')}"

    async def request(
        self,
        method: str,
        url: str,
        *,
        params: list[tuple[str, str]] | None = None,
        body: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        what: str = "",
    ) -> Answer:
        """One request; `url` absolute (a `next` link exactly as returned) or relative to the
        base. 2xx answers and 412 (a stale If-Match) come back; everything else is a SourceError."""
        if not url.startswith(("http://", "https://")):
            url = self.url(url)
        sent = dict(headers or {})
        if body is not None:
            sent["Content-Type"] = FHIR_JSON
        name = f"{method} {what or 'fhir'}"
        with _tracer.start_as_current_span(
            name,
            kind=SpanKind.CLIENT,
            attributes={
                "http.request.method": method,
                "server.address": self._host,
                "server.port": self._port,
                "url.template": f"{{base}}/{what}" if what else "{base}",
            },
            record_exception=False,
            set_status_on_exception=False,
        ) as span:
            propagate.inject(sent)
            self.in_flight += 1
            try:
                response = await self._http().request(
                    method,
                    url,
                    params=httpx.QueryParams(tuple(params)) if params else None,
                    content=json.dumps(body).encode() if body is not None else None,
                    headers=sent,
                )
                content = await response.aread()
            except httpx.TimeoutException:
                span.set_attribute("error.type", "timeout")
                span.set_status(Status(StatusCode.ERROR))
                raise TimeoutError from None
            except (httpx.TransportError, OSError) as e:
                span.set_attribute("error.type", type(e).__name__)
                span.set_status(Status(StatusCode.ERROR))
                raise SourceError(SourceErrorCode.SOURCE_UNAVAILABLE, self.member) from None
            finally:
                self.in_flight -= 1
            status = response.status_code
            span.set_attribute("http.response.status_code", status)
            if status >= 400:
                span.set_attribute("error.type", str(status))
                if status >= 500:
                    span.set_status(Status(StatusCode.ERROR))
            if status in (401, 403):
                raise SourceError(SourceErrorCode.SOURCE_ACCESS_DENIED, self.member)
            if status >= 500 or status in (408, 429):
                raise SourceError(SourceErrorCode.SOURCE_UNAVAILABLE, self.member)
            if status >= 400 and status != 412:
                # An OperationOutcome (or nothing): the server refused this request's values.
                raise SourceError(SourceErrorCode.SOURCE_REJECTED, self.member)
            parsed: dict[str, Any] | None = None
            if content.strip():
                try:
                    loaded = json.loads(content)
                except ValueError:
                    raise SourceError(SourceErrorCode.SOURCE_SCHEMA_MISMATCH, self.member) from None
                if not isinstance(loaded, dict) or not isinstance(loaded.get("resourceType"), str):
                    raise SourceError(SourceErrorCode.SOURCE_SCHEMA_MISMATCH, self.member)
                parsed = loaded
            return Answer(status, parsed, response.headers.get("etag"))
