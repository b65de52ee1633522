"""Errors that are part of the API: each has a stable code that clients may branch on."""

from __future__ import annotations

from enum import StrEnum
from typing import Any


class ErrorCode(StrEnum):
    BAD_USER_INPUT = "BAD_USER_INPUT"
    NOT_FOUND = "NOT_FOUND"
    FORBIDDEN = "FORBIDDEN"
    UNAUTHENTICATED = "UNAUTHENTICATED"
    INVALID_TRANSITION = "INVALID_TRANSITION"
    CONFLICT = "CONFLICT"
    # Subscriptions: resume with an `after` cursor the log still holds, or from the one given.
    EVENTS_EXPIRED = "EVENTS_EXPIRED"
    SUBSCRIBER_TOO_SLOW = "SUBSCRIBER_TOO_SLOW"
    TOKEN_EXPIRED = "TOKEN_EXPIRED"
    INTERNAL_SERVER_ERROR = "INTERNAL_SERVER_ERROR"


class GatewayError(Exception):
    """A refusal the client can act on. `extensions` adds machine-readable detail to the code."""

    def __init__(self, code: ErrorCode, message: str, **extensions: Any) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.extensions = extensions


def bad_input(message: str, **extensions: Any) -> GatewayError:
    return GatewayError(ErrorCode.BAD_USER_INPUT, message, **extensions)


def optional_text(value: str | None, name: str, limit: int, *, where: str = "field") -> str | None:
    """Free text as stored: trimmed, None when empty; BAD_USER_INPUT past `limit` characters.
    `where` names the extension that points at it: `field` (an input's) or `argument`."""
    text = value.strip() if value else ""
    if len(text) > limit:
        raise bad_input(f"{name} holds at most {limit} characters.", **{where: name})
    return text or None


def required_text(value: str | None, name: str, limit: int, *, where: str = "field") -> str:
    """`optional_text` that must not be empty."""
    text = optional_text(value, name, limit, where=where)
    if text is None:
        raise bad_input(f"{name} must not be empty.", **{where: name})
    return text


def not_found(what: str, ident: str) -> GatewayError:
    return GatewayError(ErrorCode.NOT_FOUND, f"No {what} with id {ident!r}.")


def forbidden(message: str) -> GatewayError:
    return GatewayError(ErrorCode.FORBIDDEN, message)


def invalid_transition(message: str, *, status: str) -> GatewayError:
    return GatewayError(ErrorCode.INVALID_TRANSITION, message, status=status)
