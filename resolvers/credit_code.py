"""The unified social credit code (统一社会信用代码, GB 32100-2015): 18 characters whose last is a
check character over the first 17, modulo 31 in an alphabet without I, O, S, V and Z."""

from __future__ import annotations

import re

ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_VALUE = {c: i for i, c in enumerate(ALPHABET)}
_WEIGHTS = [pow(3, i, 31) for i in range(17)]
_SHAPE = re.compile(rf"^[{ALPHABET}]{{2}}\d{{6}}[{ALPHABET}]{{10}}$")


def check_character(first17: str) -> str:
    total = sum(_VALUE[c] * w for c, w in zip(first17, _WEIGHTS, strict=True))
    return ALPHABET[(31 - total % 31) % 31]


def normalise(code: str) -> str:
    return code.strip().upper()


def problem(code: str) -> str | None:
    """Why `code` is not a valid credit code, or None when it is."""
    if len(code) != 18:
        return f"must have 18 characters, not {len(code)}"
    if not _SHAPE.match(code):
        return "may hold only digits and the letters of GB 32100 (no I, O, S, V, Z), with a 6-digit division code in positions 3-8"
    expected = check_character(code[:17])
    if code[17] != expected:
        return f"has the wrong check character {code[17]!r} (GB 32100 gives {expected!r})"
    return None
