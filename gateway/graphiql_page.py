"""GraphiQL served by the gateway itself: the page (gateway/graphiql/page.html, page.js, page.css)
and GraphiQL's browser assets at pinned versions with their licences, which `npm ci` and
`npm run build` in gateway/graphiql/ copy from the npm registry's packages into
gateway/graphiql/static (README: "GraphiQL"). Nothing is loaded from anywhere else, so it works on
a hospital intranet without internet."""

from __future__ import annotations

import html
import json
import logging
from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, JSONResponse, Response
from starlette.routing import Route

log = logging.getLogger("alliance_gateway.graphiql")

PACKAGE = Path(__file__).resolve().parent / "graphiql"
# Where `npm run build` puts the assets in a checkout; ALLIANCE_GRAPHIQL_ASSETS names another.
DEFAULT_ASSETS = PACKAGE / "static"
ASSETS_PATH = "/graphiql"
BUILD_COMMAND = "cd gateway/graphiql && npm ci --ignore-scripts && npm run build"
# The README's first query: what the editor shows first.
FIRST_QUERY = """query { alliance { name specialty standing leadHospital { code name grade }
        council { role holder { name } hospital { name } }
        members(first: 50) { totalCount edges { node { code name grade ownership role
          agreement { status effectiveOn expiresOn } } } } } }
"""
_OWN_FILES = ("page.js", "page.css")
_MEDIA_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".txt": "text/plain; charset=utf-8",
    ".json": "application/json",
}
# Everything from this gateway; GraphiQL and CodeMirror set inline styles, the fonts are data: URLs.
_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; font-src 'self' data:; connect-src 'self'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)


class GraphiQLPage:
    def __init__(
        self,
        assets: Path | None = None,
        *,
        endpoint: str = "/graphql",
        demo_tokens: Path | None = None,
        gateway_version: str = "0",
    ) -> None:
        self._assets = assets or DEFAULT_ASSETS
        self._endpoint = endpoint
        self._demo_tokens = demo_tokens
        self._gateway_version = gateway_version
        self._manifest = self._read_manifest()

    def _read_manifest(self) -> dict[str, Any] | None:
        try:
            manifest = json.loads((self._assets / "manifest.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        if not all((self._assets / name).is_file() for name in manifest.get("files", [])):
            return None
        return manifest if isinstance(manifest, dict) else None

    @property
    def installed(self) -> bool:
        return self._manifest is not None

    def page(self) -> Response:
        manifest = self._manifest
        if manifest is None:
            log.warning(
                "GraphiQL's assets are not installed", extra={"directory": str(self._assets)}
            )
            return HTMLResponse(
                "<!doctype html><meta charset=utf-8><title>GraphiQL is not installed</title>"
                "<p>GraphiQL's assets are not installed on this gateway (looked in "
                f"<code>{html.escape(str(self._assets))}</code>). In a checkout, run "
                f"<code>{html.escape(BUILD_COMMAND)}</code>; the production image carries them. "
                "The API itself works: POST queries to this URL.</p>",
                status_code=503,
                headers={"Content-Security-Policy": _CSP},
            )
        packages = manifest.get("packages", {})
        template = (PACKAGE / "page.html").read_text(encoding="utf-8")
        values = {
            "assets": ASSETS_PATH,
            "endpoint": self._endpoint,
            "demo_tokens": f"{ASSETS_PATH}/demo-tokens" if self._demo_tokens else "",
            "default_query": FIRST_QUERY,
            "version": packages.get("graphiql", {}).get("version", "0"),
            "gateway_version": self._gateway_version,
            "versions": ", ".join(
                f"{name} {p.get('version')} ({p.get('license')})" for name, p in packages.items()
            ),
        }
        for key, value in values.items():
            template = template.replace("{{" + key + "}}", html.escape(value, quote=True))
        return HTMLResponse(
            template,
            headers={
                "Content-Security-Policy": _CSP,
                "Cache-Control": "no-cache",
                "X-Content-Type-Options": "nosniff",
            },
        )

    async def asset(self, request: Request) -> Response:
        name = request.path_params["name"]
        manifest = self._manifest or {}
        served = {*manifest.get("files", []), manifest.get("licences"), "manifest.json"}
        if name in _OWN_FILES:
            path = PACKAGE / name
        elif self._manifest is not None and name in served:
            path = self._assets / name
        else:
            return Response("Not found", status_code=404, media_type="text/plain")
        return FileResponse(
            path,
            media_type=_MEDIA_TYPES.get(path.suffix, "application/octet-stream"),
            headers={"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"},
        )

    async def demo_tokens(self, request: Request) -> Response:
        """The demo's tokens, without login: only when the demo serves (never in production)."""
        if self._demo_tokens is None:
            return Response("Not found", status_code=404, media_type="text/plain")
        try:
            info = json.loads(self._demo_tokens.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return JSONResponse([], headers={"Cache-Control": "no-store"})
        tokens = [
            {"role": t.get("role"), "member": t.get("member"), "token": t.get("token")}
            for t in info.get("tokens", [])
        ]
        return JSONResponse(tokens, headers={"Cache-Control": "no-store"})

    def routes(self) -> list[Route]:
        return [
            Route(f"{ASSETS_PATH}/demo-tokens", self.demo_tokens),
            Route(ASSETS_PATH + "/{name}", self.asset),
        ]
