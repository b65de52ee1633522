"""Opaque global IDs. They carry the type and the owning key, so `node(id:)` and mutations can route
to the record's source without asking the client for more."""

from __future__ import annotations

import base64
import binascii
import secrets

from resolvers.errors import bad_input


def encode(type_name: str, *key: str | int) -> str:
    raw = ":".join((type_name, *map(str, key)))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


_MAX_LENGTH = 512
# Longest registry key: a bigint.
_MAX_DIGITS = 18


def _not_ours(global_id: str) -> Exception:
    shown = global_id[:40].encode("utf-8", "replace").decode()
    return bad_input(f"{shown!r} is not an id issued by this API.")


def decode(global_id: str) -> tuple[str, list[str]]:
    if len(global_id) > _MAX_LENGTH:
        raise _not_ours(global_id)
    try:
        padded = global_id + "=" * (-len(global_id) % 4)
        raw = base64.urlsafe_b64decode(padded.encode("ascii")).decode()
    except (binascii.Error, ValueError):
        raise _not_ours(global_id) from None
    type_name, *key = raw.split(":")
    if not type_name or not key or any(not part or not part.isprintable() for part in key):
        raise _not_ours(global_id)
    return type_name, key


def decode_as(global_id: str, type_name: str) -> list[str]:
    actual, key = decode(global_id)
    if actual != type_name:
        raise bad_input(f"Expected the id of a {type_name}, got the id of a {actual}.")
    return key


def decode_int(global_id: str, type_name: str) -> int:
    key = decode_as(global_id, type_name)
    if len(key) != 1 or not (key[0].isascii() and key[0].isdigit()) or len(key[0]) > _MAX_DIGITS:
        raise _not_ours(global_id)
    return int(key[0])


def decode_member_key(global_id: str, type_name: str) -> tuple[str, str]:
    """The (member, key) of a record that lives in a member's source. Whether the member's source
    could hold such a key is its adapter's to say (`Federation.holds`)."""
    key = decode_as(global_id, type_name)
    if len(key) < 2:
        raise bad_input(f"{global_id[:40]!r} is not the id of a {type_name}.")
    return key[0], ":".join(key[1:])


def short_token() -> str:
    """A short random suffix for human-facing numbers (referral numbers)."""
    return secrets.token_hex(3).upper()
