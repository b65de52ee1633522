"""Opaque global IDs. They carry the type and the owning key, so `node(id:)` and mutations can route
to the record's source without asking the client for more."""

from __future__ import annotations

import base64
import binascii
import secrets

from resolvers.errors import bad_input


def encode(type_name: str, *key: str | int) -> str:
    raw = ":".join([type_name, *(str(k) for k in key)])
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode(global_id: str) -> tuple[str, list[str]]:
    try:
        padded = global_id + "=" * (-len(global_id) % 4)
        type_name, *key = base64.urlsafe_b64decode(padded.encode()).decode().split(":")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise bad_input(f"{global_id!r} is not an id issued by this API.") from None
    if not type_name or not key:
        raise bad_input(f"{global_id!r} is not an id issued by this API.")
    return type_name, key


def decode_as(global_id: str, type_name: str) -> list[str]:
    actual, key = decode(global_id)
    if actual != type_name:
        raise bad_input(f"Expected the id of a {type_name}, got the id of a {actual}.")
    return key


def decode_int(global_id: str, type_name: str) -> int:
    key = decode_as(global_id, type_name)
    if len(key) != 1 or not key[0].isdigit():
        raise bad_input(f"{global_id!r} is not an id issued by this API.")
    return int(key[0])


def decode_member_key(global_id: str, type_name: str) -> tuple[str, int]:
    """The (member, row id) of a record that lives in a member's source."""
    key = decode_as(global_id, type_name)
    if len(key) != 2 or not key[1].isdigit():
        raise bad_input(f"{global_id!r} is not the id of a {type_name}.")
    return key[0], int(key[1])


def short_token() -> str:
    """A short random suffix for human-facing numbers (referral numbers)."""
    return secrets.token_hex(3).upper()
