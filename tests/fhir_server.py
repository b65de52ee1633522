"""An HL7 FHIR R4 server of the tests' own: sekmet-fhir (PyPI, pinned in the dev group; a SQLite
store) run as a child process on a free loopback port over a temporary directory, with its
built-in hospital simulator off, so that nothing but the test writes to it."""

from __future__ import annotations

import asyncio
import json
import socket
import sqlite3
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class FhirServer:
    def __init__(self, directory: Path, port: int | None = None) -> None:
        self.directory = directory
        self.port = port or free_port()
        self.process: subprocess.Popen[bytes] | None = None
        directory.mkdir(parents=True, exist_ok=True)
        settings = {
            "host": "127.0.0.1",
            "port": self.port,
            "base_url": self.base_url,
            "data_dir": str(directory),
            "simulator": {"enabled": False},
            "validation": {"inbound": "strict"},
            "own_private_key_path": str(directory / "key.pem"),
        }
        self.config = directory / "settings.yaml"
        # YAML is a superset of JSON.
        self.config.write_text(json.dumps(settings))

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/fhir"

    async def start(self) -> None:
        executable = Path(sys.executable).with_name("sekmet")
        log = (self.directory / "server.log").open("ab")
        self.process = subprocess.Popen(
            [str(executable), "serve", "--config", str(self.config)],
            cwd=self.directory,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        async with httpx.AsyncClient(timeout=1.0) as http:
            for _ in range(300):
                if self.process.poll() is not None:
                    raise RuntimeError(f"the FHIR server exited; see {self.directory}/server.log")
                try:
                    if (await http.get(f"{self.base_url}/metadata")).status_code == 200:
                        return
                except httpx.HTTPError:
                    pass
                await asyncio.sleep(0.1)
        raise RuntimeError("the FHIR server did not start")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def inbound_headers(self) -> list[tuple[str, dict[str, Any]]]:
        """The URL and request headers of every request the server logged, oldest first."""
        conn = sqlite3.connect(self.directory / "sekmet.db")
        try:
            rows = conn.execute(
                "SELECT url, req_headers FROM traffic WHERE direction = 'inbound' ORDER BY id"
            ).fetchall()
        finally:
            conn.close()
        return [(r[0], json.loads(r[1] or "{}")) for r in rows]


async def started(directory: Path) -> FhirServer:
    server = FhirServer(directory)
    await server.start()
    return server


@pytest.fixture
async def fhir_server(tmp_path: Path) -> AsyncIterator[FhirServer]:
    """A fresh FHIR server for one test."""
    server = await started(tmp_path / "fhir")
    try:
        yield server
    finally:
        server.stop()
