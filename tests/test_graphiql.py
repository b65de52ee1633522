"""GraphiQL without internet (issue 11): the gateway serves the page and GraphiQL's pinned assets
itself, with their licences; in a real headless Chromium with no network, the page asks for a
token, loads the schema with it, autocompletes, and runs the README's first query."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from gateway.app import create_app
from gateway.graphiql_page import DEFAULT_ASSETS, FIRST_QUERY, PACKAGE, GraphiQLPage
from gateway.settings import load_settings
from tests.browser import chromium, chromium_path
from tests.conftest import Demo, serving

HTML = {"accept": "text/html,application/xhtml+xml"}


@pytest.fixture(scope="module")
def assets() -> Path:
    """GraphiQL's assets, made by the documented step if this checkout has none yet."""
    if not GraphiQLPage(DEFAULT_ASSETS).installed:
        for command in (
            ["npm", "ci", "--ignore-scripts", "--no-audit", "--no-fund"],
            ["npm", "run", "build"],
        ):
            subprocess.run(command, cwd=PACKAGE, check=True, capture_output=True, timeout=600)
    assert GraphiQLPage(DEFAULT_ASSETS).installed
    return DEFAULT_ASSETS


@pytest.fixture(scope="module")
async def graphiql_url(demo_env: Demo, assets: Path) -> AsyncIterator[str]:
    settings = load_settings(
        demo_env.root / "alliance.toml",
        events={"watch": False},
        graphiql=True,
        graphiql_assets=assets,
        graphiql_demo_tokens=demo_env.root / "demo.json",
    )
    async with serving(create_app(settings)) as url:
        yield url


async def test_the_page_and_every_asset_come_from_the_gateway(graphiql_url: str) -> None:
    async with httpx.AsyncClient(base_url=graphiql_url) as client:
        page = await client.get("/graphql", headers=HTML)
        assert page.status_code == 200
        assert "default-src 'none'" in page.headers["content-security-policy"]
        assert "http://" not in page.text and "https://" not in page.text
        manifest = (await client.get("/graphiql/manifest.json")).json()
        for name in [*manifest["files"], "page.js", "page.css"]:
            asset = await client.get(f"/graphiql/{name}")
            assert asset.status_code == 200, name
            assert asset.headers["content-type"].startswith(
                "text/javascript" if name.endswith(".js") else "text/css"
            )
            assert f"/graphiql/{name}?v=" in page.text
        licences = await client.get("/graphiql/THIRD-PARTY-LICENSES.txt")
        assert licences.status_code == 200
        for package in ("graphiql", "react", "react-dom", "codemirror"):
            assert f"\n{package}@" in licences.text
        for unknown in ("package.json", "..%2Fpage.html", "node_modules", "graphiql.js.map"):
            assert (await client.get(f"/graphiql/{unknown}")).status_code == 404
    # Pinned: the versions served are the lockfile's.
    lock = json.loads((PACKAGE / "package-lock.json").read_text())
    for name, entry in manifest["packages"].items():
        assert entry["version"] == lock["packages"][f"node_modules/{name}"]["version"]
        assert entry["license"] == "MIT"
    assert manifest["packages"]["graphiql"]["version"] == "3.9.0"


async def test_demo_tokens_only_where_configured(graphiql_url: str, demo_env: Demo) -> None:
    async with httpx.AsyncClient(base_url=graphiql_url) as client:
        tokens = (await client.get("/graphiql/demo-tokens")).json()
    assert set(tokens[0]) == {"role", "member", "token"}
    assert (tokens[0]["role"], tokens[0]["member"]) == ("ALLIANCE_ADMIN", "LYZG")
    assert {t["role"] for t in tokens} >= {"ALLIANCE_ADMIN", "CLINICIAN", "OPS"}
    page = GraphiQLPage(DEFAULT_ASSETS)
    assert (await page.demo_tokens(None)).status_code == 404  # type: ignore[arg-type]


def test_without_assets_the_page_says_how_to_install_them(tmp_path: Path) -> None:
    response = GraphiQLPage(tmp_path).page()
    assert response.status_code == 503
    body = bytes(response.body).decode()
    assert "npm ci --ignore-scripts &amp;&amp; npm run build" in body
    assert "https://" not in body


@pytest.mark.skipif(
    chromium_path() is None and not os.environ.get("CI"),
    reason="Chromium is not installed (apt-get install -y chromium); CI installs it",
)
async def test_graphiql_in_a_browser_without_network(
    graphiql_url: str, demo_env: Demo, tmp_path: Path
) -> None:
    token = demo_env.token("ALLIANCE_ADMIN")
    async with chromium(tmp_path / "profile") as browser:
        page = await browser.new_page()
        await page.send("Page.navigate", url=f"{graphiql_url}/graphql")
        await page.wait_for("document.getElementById('token') !== null")
        # No token yet: GraphiQL is not mounted, no schema is asked for.
        assert not await page.evaluate("document.querySelector('.graphiql-container') !== null")
        assert await page.wait_for("document.getElementById('demo-tokens').options.length > 1"), (
            "the demo's tokens are offered"
        )

        # A wrong token is refused in the gateway's words.
        await page.evaluate("document.getElementById('token').focus()")
        await page.type("not-a-token")
        await page.evaluate("document.getElementById('use-token').click()")
        refused = await page.wait_for("document.getElementById('token-error').textContent")
        assert "The token is not a valid JWT" in refused

        # The token, pasted as a person would: GraphiQL mounts and loads the schema with it.
        await page.evaluate("document.getElementById('token').value = ''")
        await page.evaluate("document.getElementById('token').focus()")
        await page.send("Input.insertText", text=token)
        await page.evaluate("document.getElementById('use-token').click()")
        assert "ALLIANCE_ADMIN" in await page.wait_for("document.getElementById('who').textContent")
        await page.wait_for("document.querySelector('.graphiql-query-editor .CodeMirror') !== null")
        for _ in range(200):
            asked = [r for r in page.requests if "IntrospectionQuery" in (r.get("postData") or "")]
            if asked:
                break
            await asyncio.sleep(0.1)
        assert asked, [r["url"] for r in page.requests]
        assert asked[0]["headers"].get("Authorization") == f"Bearer {token}"

        # Autocomplete from the schema: typing `{ all` offers `alliance`.
        editor = "document.querySelector('.graphiql-query-editor .CodeMirror').CodeMirror"
        # The schema's answer may land after the first key presses (CodeMirror then offers no
        # hints until the next ones): typed again until it has.
        hints = None
        for _ in range(10):
            await page.evaluate(f"{editor}.setValue(''); {editor}.focus()")
            await page.type("{ all")
            try:
                hints = await page.wait_for(
                    "(() => { const h = document.querySelector('.CodeMirror-hints');"
                    " return h && h.textContent; })()",
                    seconds=3,
                )
                break
            except AssertionError:
                continue
        assert hints is not None and "alliance" in hints

        # The README's first query (the editor's default), run with the button.
        await page.evaluate(f"{editor}.setValue({json.dumps(FIRST_QUERY)})")
        await page.evaluate("document.querySelector('.graphiql-execute-button').click()")
        result = await page.wait_for(
            """(() => { const r = document.querySelector('.graphiql-response .CodeMirror');
                 const text = r && r.CodeMirror.getValue();
                 return text && text.includes('totalCount') ? text : null; })()"""
        )
        await page.screenshot(tmp_path / "graphiql.png")
        data = json.loads(result)["data"]["alliance"]
        assert data["name"] == "河南省洛阳正骨医院骨伤专科联盟"
        assert data["leadHospital"]["code"] == "LYZG"
        assert data["members"]["totalCount"] >= 8

        # Nothing came from anywhere but the gateway.
        outside = [
            r["url"]
            for r in page.requests
            if not r["url"].startswith((graphiql_url, "data:", "about:"))
        ]
        assert outside == []
