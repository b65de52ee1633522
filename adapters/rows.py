"""Typed rows built from database records."""

from __future__ import annotations

from dataclasses import fields
from typing import Any, Self

import asyncpg

_FIELD_NAMES: dict[type, tuple[str, ...]] = {}


class FromRow:
    """A dataclass whose fields are read from a record's columns of the same names."""

    @classmethod
    def from_row(cls, row: asyncpg.Record | dict[str, Any]) -> Self:
        # Rows are built by the thousand per page: look the field names up once per class.
        names = _FIELD_NAMES.get(cls)
        if names is None:
            names = _FIELD_NAMES[cls] = tuple(f.name for f in fields(cls))  # type: ignore[arg-type]
        return cls(*[row[n] for n in names])
