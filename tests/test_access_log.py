"""The access line of each HTTP request (gateway/access_log.py): written once the response is
sent, with the status sent, the path and never the query string, over the real app."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest

from gateway.logs import JsonFormatter
from tests.conftest import Api


class _Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.lines: list[dict[str, object]] = []
        self.setFormatter(JsonFormatter())

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(json.loads(self.format(record)))


@pytest.fixture
def access_lines() -> Iterator[list[dict[str, object]]]:
    logger = logging.getLogger("alliance_gateway.access")
    handler, level = _Lines(), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    yield handler.lines
    logger.removeHandler(handler)
    logger.setLevel(level)


async def test_each_request_has_one_access_line_with_its_status_and_no_query(
    api: Api, access_lines: list[dict[str, object]]
) -> None:
    token = api.demo.token("SECRETARIAT", None)
    ok = await api.http.get(
        "/graphql",
        params={"query": "{ __typename }"},
        headers={"authorization": f"Bearer {token}", "accept": "application/json"},
    )
    refused = await api.http.post("/graphql", json={"query": "{ __typename }"})
    assert (ok.status_code, refused.status_code) == (200, 401)
    messages = [str(line["message"]) for line in access_lines]
    assert len(messages) == 2, messages
    assert messages[0].endswith('"GET /graphql HTTP/1.1" 200'), messages
    assert messages[1].endswith('"POST /graphql HTTP/1.1" 401'), messages
    assert all("__typename" not in str(line) for line in access_lines)
