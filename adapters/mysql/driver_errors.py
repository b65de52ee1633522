"""aiomysql's failures (PyMySQL's exceptions, with the server's or the client's error number) in
the gateway's words, decided once by error number, then by exception class. The driver's text is
never passed on: it may quote a value."""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable
from typing import Concatenate, ParamSpec, Protocol, TypeVar

import pymysql

from adapters.sources.errors import SourceError, SourceErrorCode

log = logging.getLogger(__name__)

_UNAVAILABLE = SourceErrorCode.SOURCE_UNAVAILABLE
_DENIED = SourceErrorCode.SOURCE_ACCESS_DENIED
_TIMEOUT = SourceErrorCode.SOURCE_TIMEOUT
_MISMATCH = SourceErrorCode.SOURCE_SCHEMA_MISMATCH
_REJECTED = SourceErrorCode.SOURCE_REJECTED

# By error number: the server's (1xxx, 3xxx, 4xxx) and the client library's (2xxx).
BY_NUMBER: dict[int, SourceErrorCode] = {
    # The connection: refused, lost, broken, the server going away or shutting down.
    2002: _UNAVAILABLE,  # CR_CONNECTION_ERROR (Unix socket)
    2003: _UNAVAILABLE,  # CR_CONN_HOST_ERROR (TCP refused or unreachable)
    2005: _UNAVAILABLE,  # CR_UNKNOWN_HOST
    2006: _UNAVAILABLE,  # CR_SERVER_GONE_ERROR
    2013: _UNAVAILABLE,  # CR_SERVER_LOST
    2014: _UNAVAILABLE,  # CR_COMMANDS_OUT_OF_SYNC: a connection left in a broken state
    1040: _UNAVAILABLE,  # ER_CON_COUNT_ERROR: too many connections
    1053: _UNAVAILABLE,  # ER_SERVER_SHUTDOWN
    1077: _UNAVAILABLE,  # ER_NORMAL_SHUTDOWN
    1079: _UNAVAILABLE,  # ER_SHUTDOWN_COMPLETE
    1081: _UNAVAILABLE,  # ER_IPSOCK_ERROR
    1129: _UNAVAILABLE,  # ER_HOST_IS_BLOCKED
    1152: _UNAVAILABLE,  # ER_ABORTING_CONNECTION
    1158: _UNAVAILABLE,  # ER_NET_READ_ERROR
    1159: _UNAVAILABLE,  # ER_NET_READ_INTERRUPTED
    1160: _UNAVAILABLE,  # ER_NET_ERROR_ON_WRITE
    1161: _UNAVAILABLE,  # ER_NET_WRITE_INTERRUPTED
    1203: _UNAVAILABLE,  # ER_TOO_MANY_USER_CONNECTIONS
    1213: _UNAVAILABLE,  # ER_LOCK_DEADLOCK (as PostgreSQL's class 40)
    1226: _UNAVAILABLE,  # ER_USER_LIMIT_REACHED (max_queries_per_hour, …)
    1927: _UNAVAILABLE,  # ER_CONNECTION_KILLED (MariaDB)
    4031: _UNAVAILABLE,  # ER_CLIENT_INTERACTION_TIMEOUT (MySQL 8: idle connection closed)
    1049: _UNAVAILABLE,  # ER_BAD_DB_ERROR: no such database (as PostgreSQL's 3D000)
    1021: _UNAVAILABLE,  # ER_DISK_FULL
    1037: _UNAVAILABLE,  # ER_OUTOFMEMORY
    1041: _UNAVAILABLE,  # ER_OUT_OF_RESOURCES
    # It does not let the gateway in, or not at these tables.
    1044: _DENIED,  # ER_DBACCESS_DENIED_ERROR
    1045: _DENIED,  # ER_ACCESS_DENIED_ERROR: wrong password, no such user
    1142: _DENIED,  # ER_TABLEACCESS_DENIED_ERROR
    1143: _DENIED,  # ER_COLUMNACCESS_DENIED_ERROR
    1227: _DENIED,  # ER_SPECIFIC_ACCESS_DENIED_ERROR
    1251: _DENIED,  # ER_NOT_SUPPORTED_AUTH_MODE
    1698: _DENIED,  # ER_ACCESS_DENIED_NO_PASSWORD_ERROR
    1820: _DENIED,  # ER_MUST_CHANGE_PASSWORD
    1862: _DENIED,  # ER_MUST_CHANGE_PASSWORD_LOGIN
    3118: _DENIED,  # ER_ACCOUNT_HAS_BEEN_LOCKED (MySQL)
    4151: _DENIED,  # ER_ACCOUNT_HAS_BEEN_LOCKED (MariaDB)
    # It gave up itself: the statement limit, a lock wait, a query killed.
    1969: _TIMEOUT,  # ER_STATEMENT_TIMEOUT (MariaDB max_statement_time)
    3024: _TIMEOUT,  # ER_QUERY_TIMEOUT (MySQL MAX_EXECUTION_TIME)
    1205: _TIMEOUT,  # ER_LOCK_WAIT_TIMEOUT (innodb_lock_wait_timeout, lock_wait_timeout)
    1317: _TIMEOUT,  # ER_QUERY_INTERRUPTED (KILL QUERY, as PostgreSQL's 57014)
    3572: _TIMEOUT,  # ER_LOCK_NOWAIT
    # Its tables differ from the published contract.
    1146: _MISMATCH,  # ER_NO_SUCH_TABLE
    1054: _MISMATCH,  # ER_BAD_FIELD_ERROR: unknown column
    1109: _MISMATCH,  # ER_UNKNOWN_TABLE
    1356: _MISMATCH,  # ER_VIEW_INVALID
    # A syntax error is ours, not the hospital's: SOURCE_FAILED, logged (see translate).
    1064: SourceErrorCode.SOURCE_FAILED,
    # It refused the values: a duplicate, a missing reference, a check, a value out of range.
    1048: _REJECTED,  # ER_BAD_NULL_ERROR
    1062: _REJECTED,  # ER_DUP_ENTRY
    1169: _REJECTED,  # ER_DUP_UNIQUE
    1264: _REJECTED,  # ER_WARN_DATA_OUT_OF_RANGE
    1265: _REJECTED,  # WARN_DATA_TRUNCATED
    1292: _REJECTED,  # ER_TRUNCATED_WRONG_VALUE (a bad date or number)
    1364: _REJECTED,  # ER_NO_DEFAULT_FOR_FIELD
    1366: _REJECTED,  # ER_TRUNCATED_WRONG_VALUE_FOR_FIELD
    1367: _REJECTED,  # ER_ILLEGAL_VALUE_FOR_TYPE
    1406: _REJECTED,  # ER_DATA_TOO_LONG
    1451: _REJECTED,  # ER_ROW_IS_REFERENCED_2
    1452: _REJECTED,  # ER_NO_REFERENCED_ROW_2
    1690: _REJECTED,  # ER_DATA_OUT_OF_RANGE
    3140: _REJECTED,  # ER_INVALID_JSON_TEXT (MySQL)
    3819: _REJECTED,  # ER_CHECK_CONSTRAINT_VIOLATED (MySQL)
    4025: _REJECTED,  # ER_CONSTRAINT_FAILED (MariaDB)
    # The server or the transaction is read-only (a replica, --read-only).
    1290: SourceErrorCode.SOURCE_READ_ONLY,  # ER_OPTION_PREVENTS_STATEMENT
    1792: SourceErrorCode.SOURCE_READ_ONLY,  # ER_CANT_EXECUTE_IN_READ_ONLY_TRANSACTION
}


def error_number(error: BaseException) -> int | None:
    if isinstance(error, pymysql.err.MySQLError) and error.args and isinstance(error.args[0], int):
        return error.args[0]
    return None


def translate(error: BaseException, member: str) -> SourceError:
    """The SourceError for a failure of `member`'s database or of the connection to it."""
    code = _code(error)
    if code is SourceErrorCode.SOURCE_FAILED:
        log.error(
            "unexpected exchange database failure",
            extra={"member": member, "error": type(error).__name__, "errno": error_number(error)},
        )
    return SourceError(code, member)


def _code(error: BaseException) -> SourceErrorCode:
    number = error_number(error)
    if number is not None and number in BY_NUMBER:
        return BY_NUMBER[number]
    if isinstance(error, pymysql.err.IntegrityError | pymysql.err.DataError):
        return _REJECTED
    if isinstance(error, pymysql.err.ProgrammingError):
        return SourceErrorCode.SOURCE_FAILED
    if isinstance(error, pymysql.err.MySQLError):
        if isinstance(error, pymysql.err.OperationalError | pymysql.err.InterfaceError):
            return _UNAVAILABLE  # the connection or the server, whatever the number
        return SourceErrorCode.SOURCE_FAILED
    # The network (OSError), a pool that was closed under the call (RuntimeError).
    return _UNAVAILABLE


DRIVER_FAILURES = (pymysql.err.MySQLError, OSError)


class _OfMember(Protocol):
    member: str


S = TypeVar("S", bound=_OfMember)
P = ParamSpec("P")
R = TypeVar("R")


def driver_errors(
    method: Callable[Concatenate[S, P], Awaitable[R]],
) -> Callable[Concatenate[S, P], Awaitable[R]]:
    """The method's aiomysql and network failures as SourceErrors of its member. Timeouts pass
    through as they are: the caller's guard names them."""

    @functools.wraps(method)
    async def translated(self: S, /, *args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return await method(self, *args, **kwargs)
        except (SourceError, TimeoutError):
            raise
        except DRIVER_FAILURES as e:
            raise translate(e, self.member) from None

    return translated
