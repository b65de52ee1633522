"""A real browser for the tests: Debian's headless Chromium, driven over the Chrome DevTools
Protocol on its WebSocket (no webdriver, no browser download). Started with a fresh profile and
without network: every host name but 127.0.0.1 resolves to nothing."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
import os
import re
import shutil
import subprocess
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from websockets.asyncio.client import ClientConnection, connect

CHROMIUM_FLAGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--disable-extensions",
    "--no-first-run",
    "--no-default-browser-check",
    "--mute-audio",
    # No network: names resolve only to the loopback test server.
    "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
    "--remote-debugging-port=0",
    "--window-size=1400,900",
]


def chromium_path() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


@dataclass
class Page:
    """One tab, attached with a flat session on the browser's connection."""

    browser: Browser
    session: str
    requests: list[dict[str, Any]] = field(default_factory=list)
    console: list[str] = field(default_factory=list)

    async def send(self, method: str, **params: Any) -> dict[str, Any]:
        return await self.browser.send(method, session=self.session, **params)

    async def evaluate(self, expression: str) -> Any:
        answer = await self.send(
            "Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True
        )
        if "exceptionDetails" in answer:
            raise AssertionError(f"{expression!r} threw {answer['exceptionDetails']}")
        return answer["result"].get("value")

    async def wait_for(self, expression: str, seconds: float = 20) -> Any:
        """The value of `expression` once it is truthy."""
        deadline = asyncio.get_running_loop().time() + seconds
        while True:
            value = await self.evaluate(expression)
            if value:
                return value
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(
                    f"waited {seconds}s for {expression}; console: {self.console[-10:]}"
                )
            await asyncio.sleep(0.1)

    async def type(self, text: str) -> None:
        """Key presses into the focused element, as a person types (key events, not a paste)."""
        for char in text:
            await self.send("Input.dispatchKeyEvent", type="keyDown", text=char, key=char)
            await self.send("Input.dispatchKeyEvent", type="keyUp", key=char)

    async def screenshot(self, path: Path) -> None:
        shot = await self.send("Page.captureScreenshot", format="png")
        path.write_bytes(base64.b64decode(shot["data"]))


class Browser:
    def __init__(self, process: subprocess.Popen[bytes], ws: ClientConnection) -> None:
        self._process = process
        self._ws = ws
        self._ids = itertools.count(1)
        self._waiting: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._pages: dict[str, Page] = {}
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for raw in self._ws:
            message = json.loads(raw)
            if "id" in message:
                future = self._waiting.pop(message["id"], None)
                if future is not None and not future.done():
                    future.set_result(message)
                continue
            page = self._pages.get(message.get("sessionId", ""))
            if page is None:
                continue
            params = message.get("params", {})
            if message.get("method") == "Network.requestWillBeSent":
                page.requests.append(params["request"])
            elif message.get("method") == "Runtime.consoleAPICalled":
                page.console.append(
                    " ".join(str(a.get("value", a.get("description"))) for a in params["args"])
                )

    async def send(
        self, method: str, *, session: str | None = None, **params: Any
    ) -> dict[str, Any]:
        ident = next(self._ids)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._waiting[ident] = future
        message: dict[str, Any] = {"id": ident, "method": method, "params": params}
        if session is not None:
            message["sessionId"] = session
        await self._ws.send(json.dumps(message))
        answer = await asyncio.wait_for(future, 30)
        if "error" in answer:
            raise AssertionError(f"{method}: {answer['error']}")
        return answer.get("result", {})

    async def new_page(self) -> Page:
        target = await self.send("Target.createTarget", url="about:blank")
        attached = await self.send(
            "Target.attachToTarget", targetId=target["targetId"], flatten=True
        )
        page = Page(self, attached["sessionId"])
        self._pages[page.session] = page
        for domain in ("Page", "Runtime", "Network"):
            await page.send(f"{domain}.enable")
        return page

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self.send("Browser.close")
        self._reader.cancel()
        with contextlib.suppress(BaseException):
            await self._reader
        await self._ws.close()


@contextlib.asynccontextmanager
async def chromium(profile: Path) -> AsyncIterator[Browser]:
    """Headless Chromium with a fresh profile in `profile`; its DevTools connection."""
    executable = chromium_path()
    assert executable is not None, "chromium is not installed (apt-get install -y chromium)"
    process = subprocess.Popen(
        [executable, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "about:blank"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env={**os.environ, "HOME": str(profile)},
    )
    assert process.stderr is not None
    url = None
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 30
    while url is None and loop.time() < deadline:
        line = (await asyncio.to_thread(process.stderr.readline)).decode(errors="replace")
        if not line and process.poll() is not None:
            break
        found = re.search(r"DevTools listening on (ws://\S+)", line)
        url = found.group(1) if found else None
    assert url is not None, "Chromium did not start"
    # Keep reading its stderr so that it never blocks on a full pipe.
    drain = asyncio.create_task(asyncio.to_thread(process.stderr.read))
    ws = await connect(url, max_size=None, open_timeout=10)
    browser = Browser(process, ws)
    try:
        yield browser
    finally:
        await browser.close()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
        with contextlib.suppress(BaseException):
            await asyncio.wait_for(drain, 5)
