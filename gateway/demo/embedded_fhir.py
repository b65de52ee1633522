"""An HL7 FHIR R4 server of the demo's (and the tests') own: sekmet-fhir (PyPI, pinned in the `demo`
extra; a SQLite store) run as a child process on a loopback port over a data directory of its own,
with its built-in hospital simulator off, so that nothing but the demo's hospital writes to it."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx

from gateway.demo.ports import free_port, port_free


def _executable() -> str:
    """sekmet's console script, beside this interpreter (a virtual environment's bin/)."""
    return str(Path(sys.executable).with_name("sekmet"))


class EmbeddedFhir:
    """One sekmet server over `data_dir`. A later run over the same directory reuses the server
    while it still answers on its port, or starts one on that port while it is free, so that a
    configuration written earlier still names the right server."""

    def __init__(
        self, data_dir: Path, port: int | None = None, settings: dict[str, Any] | None = None
    ) -> None:
        self.data_dir = data_dir.resolve()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._state_file = self.data_dir / "port.json"
        earlier = json.loads(self._state_file.read_text()) if self._state_file.exists() else {}
        self.port: int = port or earlier.get("port") or free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.config = self.data_dir / "settings.yaml"
        # sekmet's own settings over ours (its server_auth, for a server that wants credentials).
        self.settings = settings or {}

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/fhir"

    @property
    def log(self) -> Path:
        return self.data_dir / "server.log"

    def _write_config(self) -> None:
        settings = {
            "host": "127.0.0.1",
            "port": self.port,
            "base_url": self.base_url,
            "data_dir": str(self.data_dir),
            "simulator": {"enabled": False},
            "validation": {"inbound": "strict"},
            "own_private_key_path": str(self.data_dir / "key.pem"),
            **self.settings,
        }
        # YAML is a superset of JSON.
        self.config.write_text(json.dumps(settings))
        self._state_file.write_text(json.dumps({"port": self.port}))

    async def _answers(self, http: httpx.AsyncClient) -> bool:
        try:
            return (await http.get(f"{self.base_url}/metadata")).status_code == 200
        except httpx.HTTPError:
            return False

    async def start(self) -> None:
        async with httpx.AsyncClient(timeout=2.0) as http:
            if not port_free(self.port):
                if await self._answers(http):
                    return  # an earlier run's server over this directory, still serving
                self.port = free_port()
            self._write_config()
            with self.log.open("ab") as log:
                self.process = subprocess.Popen(
                    [_executable(), "serve", "--config", str(self.config)],
                    cwd=self.data_dir,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            for _ in range(300):
                if self.process.poll() is not None:
                    raise RuntimeError(f"the FHIR server exited; see {self.log}")
                if await self._answers(http):
                    return
                await asyncio.sleep(0.1)
        raise RuntimeError(f"the FHIR server did not start; see {self.log}")

    def stop(self) -> None:
        """Stops the server this object started (not an earlier run's, which it only reused)."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None
