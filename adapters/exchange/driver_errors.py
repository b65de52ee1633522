"""asyncpg's failures in the gateway's words, decided once by SQLSTATE class (PostgreSQL's own
taxonomy of errors) rather than by a list of exception classes that is never complete."""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable
from typing import Concatenate, ParamSpec, Protocol, TypeVar

import asyncpg

from adapters.sources.errors import SourceError, SourceErrorCode

log = logging.getLogger(__name__)

# By SQLSTATE, most specific first: a full code, then its two-character class.
_BY_SQLSTATE: dict[str, SourceErrorCode] = {
    # The server is shutting down, in recovery, out of resources, or the database is closed.
    "08": SourceErrorCode.SOURCE_UNAVAILABLE,
    "53": SourceErrorCode.SOURCE_UNAVAILABLE,
    "55000": SourceErrorCode.SOURCE_UNAVAILABLE,  # e.g. database not accepting connections
    "57P01": SourceErrorCode.SOURCE_UNAVAILABLE,
    "57P02": SourceErrorCode.SOURCE_UNAVAILABLE,
    "57P03": SourceErrorCode.SOURCE_UNAVAILABLE,
    "57P04": SourceErrorCode.SOURCE_UNAVAILABLE,
    "57P05": SourceErrorCode.SOURCE_UNAVAILABLE,
    "3D": SourceErrorCode.SOURCE_UNAVAILABLE,  # no such database
    "40": SourceErrorCode.SOURCE_UNAVAILABLE,  # serialization failure, deadlock
    "58": SourceErrorCode.SOURCE_UNAVAILABLE,
    "XX": SourceErrorCode.SOURCE_UNAVAILABLE,
    # It does not let the gateway in, or not at these tables.
    "28": SourceErrorCode.SOURCE_ACCESS_DENIED,
    "42501": SourceErrorCode.SOURCE_ACCESS_DENIED,
    # It gave up waiting: statement_timeout, lock_timeout.
    "57014": SourceErrorCode.SOURCE_TIMEOUT,
    "55P03": SourceErrorCode.SOURCE_TIMEOUT,
    # Its tables differ from the published contract (missing table, column, type).
    "42601": SourceErrorCode.SOURCE_FAILED,  # a syntax error is ours, not the hospital's
    "42": SourceErrorCode.SOURCE_SCHEMA_MISMATCH,
    # It refused the values: bad data, a constraint.
    "22": SourceErrorCode.SOURCE_REJECTED,
    "23": SourceErrorCode.SOURCE_REJECTED,
}


def translate(error: BaseException, member: str) -> SourceError:
    """The SourceError for a failure of `member`'s database or of the connection to it."""
    code = _code(error)
    if code is SourceErrorCode.SOURCE_FAILED:
        log.error(
            "unexpected exchange database failure",
            extra={"member": member, "error": type(error).__name__},
        )
    return SourceError(code, member)


def _code(error: BaseException) -> SourceErrorCode:
    if isinstance(error, asyncpg.PostgresError):
        state = str(getattr(error, "sqlstate", "") or "")
        return _BY_SQLSTATE.get(state) or _BY_SQLSTATE.get(state[:2], SourceErrorCode.SOURCE_FAILED)
    if isinstance(error, asyncpg.DataError):
        return SourceErrorCode.SOURCE_REJECTED  # a value the driver could not encode
    # Connection lost or refused, pool closed, protocol broken.
    return SourceErrorCode.SOURCE_UNAVAILABLE


class _OfMember(Protocol):
    member: str


S = TypeVar("S", bound=_OfMember)
P = ParamSpec("P")
R = TypeVar("R")


def driver_errors(
    method: Callable[Concatenate[S, P], Awaitable[R]],
) -> Callable[Concatenate[S, P], Awaitable[R]]:
    """The method's asyncpg and network failures as SourceErrors of its member. Timeouts pass
    through as they are: the caller's guard names them."""

    @functools.wraps(method)
    async def translated(self: S, /, *args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return await method(self, *args, **kwargs)
        except (SourceError, TimeoutError):
            raise
        except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError) as e:
            raise translate(e, self.member) from None

    return translated
