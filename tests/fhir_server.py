"""The tests' own FHIR R4 server: the demo's embedded sekmet-fhir over a temporary directory, with
nothing but the test writing to it, and what it logged of the requests it was sent."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from gateway.demo.embedded_fhir import EmbeddedFhir
from gateway.demo.ports import free_port

__all__ = ["FhirServer", "fhir_server", "free_port", "started"]


class FhirServer(EmbeddedFhir):
    def inbound_headers(self) -> list[tuple[str, dict[str, Any]]]:
        """The URL and request headers of every request the server logged, oldest first."""
        conn = sqlite3.connect(self.data_dir / "sekmet.db")
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
