"""Relay pagination: opaque cursors and the page size rule."""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from resolvers.errors import bad_input

MAX_PAGE_SIZE = 100

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    items: list[tuple[str, T]]  # (cursor, item)
    has_next_page: bool


def page_size(first: int | None, default: int = 20) -> int:
    if first is None:
        return default
    if first < 0:
        raise bad_input("`first` must not be negative.", argument="first")
    return min(first, MAX_PAGE_SIZE)


def encode_cursor(kind: str, position: Any) -> str:
    raw = json.dumps([kind, position], separators=(",", ":"), ensure_ascii=False)
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str, kind: str) -> Any:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        found_kind, position = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (binascii.Error, UnicodeDecodeError, ValueError, TypeError):
        raise bad_input("`after` is not a cursor issued by this API.", argument="after") from None
    if found_kind != kind:
        raise bad_input("`after` is a cursor of another list.", argument="after")
    return position
