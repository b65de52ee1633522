"""What every GraphQL request must satisfy before it is parsed or executed, over HTTP, Server-Sent
Events and WebSocket alike, and how every answer is rendered.

- JSON is read with a nesting limit (`MAX_JSON_DEPTH`), so no input reaches a recursion limit, and
  without the non-JSON numbers Python's reader accepts (`NaN`, `Infinity`, `1e400`).
- No string anywhere in the request (the document, its string literals with their escapes
  decoded, `operationName`, `variables`, `extensions`, object keys) may hold U+0000 or an
  unpaired UTF-16 surrogate: PostgreSQL cannot store the one, UTF-8 cannot encode the other.
- The request must say which operation to run when its document defines several, and an
  `operationName` must name one of them (the GraphQL specification's GetOperation).

Each refusal is a `RequestRefused`: code `BAD_REQUEST`, a message saying what to fix, and
`parameter`, where in the request the problem is (`variables.input.reason`, `query`, ...). The
value itself is never quoted. Over HTTP it is answered 400; over WebSocket as an `error` message.

`render_json` / `dumps_json` write any answer as JSON in UTF-8 even if it echoes an unpaired
surrogate (from a token's claims, say): that becomes U+FFFD instead of failing the response."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from itertools import islice
from typing import Any

import orjson
from graphql import GraphQLFormattedError, GraphQLSyntaxError
from graphql.language import Lexer, Source, TokenKind
from starlette.responses import JSONResponse

BAD_REQUEST = "BAD_REQUEST"
# The `parameter` of a refusal about the request body as a whole.
BODY = "body"
# Levels of JSON arrays and objects in a request body (the body itself is level 1). Inputs of this
# schema nest a few levels; nothing a client sends needs more.
MAX_JSON_DEPTH = 32
# Digits in one JSON number; Python refuses more than 4300 anyway, with a message of its own.
MAX_NUMBER_DIGITS = 400
# The document is lexed only when needed and at most this far: a longer one is refused by the
# parser's token limit (`[limits] max_tokens`, 4000 by default; keep it below this) before
# anything it defines runs.
MAX_LEXED_TOKENS = 20_000
# How much of a client's name or key an error message repeats.
ECHO_CHARS = 64

_SURROGATE = re.compile("[\ud800-\udfff]")
_OPERATION_KEYWORD = re.compile(r"(?<![_0-9A-Za-z])(?:query|mutation|subscription)(?![_0-9A-Za-z])")
_CLEAN = (
    "Strings sent to this gateway may not contain U+0000 or unpaired UTF-16 surrogates "
    "(U+D800 to U+DFFF): remove the character, or send the text as well-formed Unicode."
)


class RequestRefused(Exception):
    """The request cannot be executed as sent; `message` says what to fix."""

    def __init__(self, message: str, parameter: str | None = None) -> None:
        super().__init__(message)
        self.code = BAD_REQUEST
        self.message = message
        self.parameter = parameter

    @property
    def extensions(self) -> dict[str, Any]:
        extensions: dict[str, Any] = {"code": self.code}
        if self.parameter is not None:
            extensions["parameter"] = self.parameter
        return extensions

    def formatted(self) -> GraphQLFormattedError:
        """The error as it appears in `errors`."""
        return {"message": self.message, "extensions": self.extensions}


class NestedTooDeeply(RequestRefused):
    """JSON nested past MAX_JSON_DEPTH."""


def echo(name: str) -> str:
    """A client's name, short enough to repeat in a message."""
    return name if len(name) <= ECHO_CHARS else name[: ECHO_CHARS - 1] + "…"


# -- strings ------------------------------------------------------------------------------------


def bad_character(text: str) -> str | None:
    """What makes `text` unacceptable (a NUL or an unpaired surrogate), or None."""
    if "\x00" in text:
        return "a NUL character (U+0000)"
    if not text.isascii():
        found = _SURROGATE.search(text)
        if found is not None:
            return f"an unpaired UTF-16 surrogate (U+{ord(found.group()):04X})"
    return None


def _named(parameter: str) -> str:
    return "The body" if parameter == BODY else f"`{parameter}`"


def _too_deep(parameter: str) -> NestedTooDeeply:
    return NestedTooDeeply(
        f"{_named(parameter)} is JSON nested too deeply: at most {MAX_JSON_DEPTH} levels of arrays and objects "
        "are accepted in a request.",
        parameter,
    )


# A path into a JSON value, built as a linked list while walking (a key or index, and the rest).
_Trail = tuple[str | int, "_Trail"] | None


def _parts(trail: _Trail) -> list[str | int]:
    parts: list[str | int] = []
    while trail is not None:
        parts.append(trail[0])
        trail = trail[1]
    return parts[::-1]


def _path(root: str, trail: _Trail) -> str:
    """`root` and the keys and indexes of `trail`: `variables.input.items[2]`. For the body
    itself, the path starts at its own key (`variables`, not `body.variables`)."""
    path = "" if root == BODY else root
    for part in _parts(trail):
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{echo(part)}" if path else echo(part)
    return path or root


def _top(root: str, trail: _Trail) -> str:
    """The request parameter the path is in: `variables` for `variables.input.items[2]`."""
    parts = _parts(trail)
    if root != BODY or not parts or isinstance(parts[0], int):
        return root
    return echo(parts[0])


def check_json(value: Any, parameter: str, *, depth: int = 1, strings: bool = True) -> None:
    """RequestRefused unless `value` (JSON, as parsed) nests at most MAX_JSON_DEPTH levels
    (`depth`: the level `value` itself is at) and, with `strings`, holds no string or key with a
    NUL or an unpaired surrogate. Iterative: any depth is refused, never recursed into."""
    stack: list[tuple[Any, int, _Trail]] = [(value, depth, None)]
    while stack:
        item, level, trail = stack.pop()
        if isinstance(item, str) and strings:
            problem = bad_character(item)
            if problem is not None:
                where = _path(parameter, trail)
                raise RequestRefused(f"`{where}` contains {problem}. {_CLEAN}", where)
        elif isinstance(item, dict):
            if level > MAX_JSON_DEPTH:
                raise _too_deep(_top(parameter, trail))
            for key, member in item.items():
                problem = bad_character(key) if strings else None
                if problem is not None:
                    where = _path(parameter, trail)
                    raise RequestRefused(f"A key of `{where}` contains {problem}. {_CLEAN}", where)
                stack.append((member, level + 1, (key, trail)))
        elif isinstance(item, list):
            if level > MAX_JSON_DEPTH:
                raise _too_deep(_top(parameter, trail))
            stack.extend((member, level + 1, (i, trail)) for i, member in enumerate(item))


# -- reading JSON -------------------------------------------------------------------------------


class _NotJson(ValueError):
    pass


def _constant(name: str) -> Any:
    raise _NotJson(f"{name} is not a JSON number")


def _float(text: str) -> float:
    if len(text) > MAX_NUMBER_DIGITS:
        raise _NotJson("a number has too many digits")
    number = float(text)
    if not math.isfinite(number):
        raise _NotJson(f"{echo(text)} is too large for a number")
    return number


def _int(text: str) -> int:
    if len(text) > MAX_NUMBER_DIGITS:
        raise _NotJson("a number has too many digits")
    return int(text)


def load_json(text: str | bytes, parameter: str, *, depth: int = 1, strings: bool = True) -> Any:
    """Parse and `check_json`; RequestRefused for anything but acceptable JSON."""
    try:
        if isinstance(text, bytes):
            text = text.decode("utf-8")  # strictly: json.loads would guess UTF-16 and UTF-32 too
        value = json.loads(text, parse_constant=_constant, parse_float=_float, parse_int=_int)
    except RecursionError:
        raise _too_deep(parameter) from None
    except _NotJson as e:
        raise RequestRefused(f"{_named(parameter)} is not valid JSON: {e}.", parameter) from None
    except ValueError:
        # Also UnicodeDecodeError: a body that is not UTF-8.
        raise RequestRefused(
            f"{_named(parameter)} is not valid JSON in UTF-8.", parameter
        ) from None
    check_json(value, parameter, depth=depth, strings=strings)
    return value


# -- the document -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Lexed:
    # The operations the document defines, by name (None: anonymous), in order; None when that
    # cannot be told without the parser (which then refuses the document itself).
    operations: tuple[str | None, ...] | None
    # A string literal whose decoded value is unacceptable: (what, line, column).
    bad_literal: tuple[str, int, int] | None


def _tokens(document: str) -> Iterator[Any]:
    lexer = Lexer(Source(document))
    for _ in range(MAX_LEXED_TOKENS):
        token = lexer.advance()
        if token.kind is TokenKind.EOF:
            return
        yield token
    raise OverflowError


_OPENING = (TokenKind.BRACE_L, TokenKind.BRACKET_L, TokenKind.PAREN_L)
_CLOSING = (TokenKind.BRACE_R, TokenKind.BRACKET_R, TokenKind.PAREN_R)


class _Operations:
    """Follows the top level of a document token by token and collects its operations; gives
    up (`known` False) at anything an executable document does not have there."""

    def __init__(self) -> None:
        self.names: list[str | None] = []
        self.known = True
        self._nesting = 0  # braces, brackets and parentheses
        # "definition" between definitions, "name" after an operation keyword, "" inside one.
        self._expecting = "definition"

    def see(self, kind: TokenKind, value: str | None) -> None:
        if kind in _OPENING:
            if self._expecting == "definition":
                if kind is not TokenKind.BRACE_L:
                    self.known = False
                self.names.append(None)  # the query shorthand `{ ... }`
            elif self._expecting == "name":
                self.names.append(None)  # `query ($x: Int) { ... }`, `query { ... }`
            self._expecting = ""
            self._nesting += 1
        elif kind in _CLOSING:
            self._nesting -= 1
            if self._nesting < 0:
                self.known = False
            elif self._nesting == 0 and kind is TokenKind.BRACE_R:
                self._expecting = "definition"
        elif self._nesting:
            pass
        elif self._expecting == "definition":
            if kind is TokenKind.NAME and value in ("query", "mutation", "subscription"):
                self._expecting = "name"
            elif kind is TokenKind.NAME and value == "fragment":
                self._expecting = ""
            else:
                self.known = False  # not an executable definition: validation says so
        elif self._expecting == "name":
            self.names.append(value if kind is TokenKind.NAME else None)
            self._expecting = ""

    def end(self) -> tuple[str | None, ...] | None:
        if self._expecting == "name":
            self.names.append(None)
        return tuple(self.names) if self.known and self._nesting == 0 else None


def _lex(document: str) -> _Lexed | None:
    """The operations and the first bad string literal of `document`; None when it does not lex
    (a syntax error, too many tokens): the parser then refuses it itself."""
    operations = _Operations()
    bad: tuple[str, int, int] | None = None
    try:
        for token in _tokens(document):
            kind = token.kind
            if bad is None and kind in (TokenKind.STRING, TokenKind.BLOCK_STRING):
                problem = bad_character(token.value)
                if problem is not None:
                    bad = (problem, token.line, token.column)
            if operations.known:
                operations.see(kind, token.value)
    except (GraphQLSyntaxError, OverflowError):
        return None
    return _Lexed(operations.end(), bad)


_lex_cached = lru_cache(maxsize=256)(_lex)


def _lexed(document: str) -> _Lexed | None:
    # Only short documents are remembered: the cache must not hold megabytes of text.
    return _lex_cached(document) if len(document) <= 16_384 else _lex(document)


def _names(operations: tuple[str | None, ...]) -> str:
    shown = [f"`{echo(n)}`" if n else "an anonymous one" for n in operations[:5]]
    return ", ".join(shown) + (", …" if len(operations) > 5 else "")


def check_document(document: str, operation_name: str | None) -> None:
    """RequestRefused when a string literal of `document` holds NUL (an escape such as
    `\\u0000`), when it defines several operations and `operation_name` is None, or when
    `operation_name` names none of them. The raw text is checked by `check_json`."""
    cheap = (
        operation_name is None
        and "\\u" not in document
        and len(list(islice(_OPERATION_KEYWORD.finditer(document), 2))) < 2
    )
    if cheap:
        return  # at most one operation keyword and no escapes: nothing to find
    lexed = _lexed(document)
    if lexed is None:
        return
    if lexed.bad_literal is not None:
        problem, line, column = lexed.bad_literal
        raise RequestRefused(
            f"A string in `query` (line {line}, column {column}) contains {problem}. {_CLEAN}",
            "query",
        )
    operations = lexed.operations
    if operations is None:
        return
    if operation_name is None and len(operations) > 1:
        raise RequestRefused(
            f"The document defines {len(operations)} operations ({_names(operations)}): pass "
            "`operationName` to say which one to run.",
            "operationName",
        )
    if operation_name is not None and operations and operation_name not in operations:
        raise RequestRefused(
            f"`operationName` is `{echo(operation_name)}`, but the document defines no operation "
            f"of that name; it defines {_names(operations)}.",
            "operationName",
        )


def check_operation_request(
    query: Any, operation_name: Any, variables: Any, extensions: Any
) -> None:
    """All the checks, on an operation request whose JSON has been read (a WebSocket `subscribe`
    payload; the HTTP endpoint checks its parameters as it reads them)."""
    check_json(query, "query")
    check_json(operation_name, "operationName")
    check_json(variables, "variables", depth=2)
    check_json(extensions, "extensions", depth=2)
    if isinstance(query, str) and (operation_name is None or isinstance(operation_name, str)):
        check_document(query, operation_name or None)


# -- writing JSON -------------------------------------------------------------------------------


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def _dumps_slowly(content: Any) -> str:
    try:
        text = json.dumps(content, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    except ValueError:
        text = json.dumps(
            _finite(content), ensure_ascii=False, allow_nan=False, separators=(",", ":")
        )
    if not text.isascii() and _SURROGATE.search(text):
        text = _SURROGATE.sub("\ufffd", text)
    return text


def render_json(content: Any) -> bytes:
    """`dumps_json`, as UTF-8. orjson writes a page of 50 referrals in about 8 µs where the
    standard library takes 150; it writes NaN and infinities as null itself, and refuses what
    it cannot write as valid UTF-8 (an unpaired surrogate) or at all (an integer past 64 bits),
    which the standard library then writes instead."""
    try:
        return orjson.dumps(content)
    except orjson.JSONEncodeError:
        return _dumps_slowly(content).encode("utf-8")


def dumps_json(content: Any) -> str:
    """JSON text that encodes to UTF-8 whatever `content` holds: unpaired surrogates become
    U+FFFD, and numbers JSON has not (NaN, infinities) become null."""
    return render_json(content).decode("utf-8")


class JSONBody(JSONResponse):
    """A JSONResponse that always renders: see `dumps_json`."""

    def render(self, content: Any) -> bytes:
        return render_json(content)
