"""The part of the SQL adapters' queries that does not depend on the engine: which conditions a
list pushes down, over the published exchange schema under a hospital's own column names. Each
engine says only how a value and a list of values are written (`Where.param`, `Where.any_of`)."""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any

from adapters.exchange.columns import ColumnMap, Table
from adapters.sources import port
from adapters.sources.errors import SourceError, SourceErrorCode
from adapters.sources.port import RecordKind
from adapters.sources.records import (
    CapacityFilter,
    ConsultationFilter,
    ListQuery,
    ReferralFilter,
    ResultFilter,
    TrainingFilter,
)

# A bigint row id, as text: what the SQL adapters' keys look like.
INTEGER_KEY = re.compile(r"[1-9][0-9]{0,17}")

# What the SQL adapters apply at the source: every field of a list query and its filters.
PUSHDOWN = frozenset(
    {
        "parties",
        "with_party",
        "since",
        "until",
        "bound",
        "limit",
        "directions",
        "statuses",
        "green_channel",
        "kinds",
        "modes",
        "patient_pseudonym",
        "item_codes",
    }
)

# The columns naming the hospitals a record concerns, for the readers' party filter.
_PARTIES: dict[str, tuple[str, ...]] = {
    "referral": ("from_hospital", "to_hospital"),
    "consultation": ("requesting_hospital", "invited_hospital"),
    "placement": ("host_hospital", "home_hospital"),
    "training_event": (),  # its host, or a hospital that sent participants: see _parties
    "test_result": (),
    "recognition_decision": (),
    "specialty_volume": ("hospital",),
    "satisfaction_survey": ("hospital",),
    "capacity_activity": ("helping_hospital", "helped_hospital"),
}


class Where(ABC):
    """A WHERE clause built from parts, with its parameters in order."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.params: list[Any] = []

    @abstractmethod
    def param(self, value: Any) -> str:
        """Adds `value`; its placeholder."""

    @abstractmethod
    def any_of(self, column: str, values: Sequence[Any]) -> str:
        """`column` is one of the text `values` (added); none matches an empty list."""

    def add(self, sql: str, *values: Any) -> None:
        """`sql` uses {} for each value, in order."""
        self.parts.append(sql.format(*[self.param(v) for v in values]))

    @property
    def sql(self) -> str:
        return " AND ".join(self.parts) if self.parts else "TRUE"


def integer_key(t: Table, logical: str, value: str, member: str) -> Any:
    """A key in its column's own type. A key the source cannot have issued is refused."""
    if not t.is_integer_key(logical):
        return value
    if INTEGER_KEY.fullmatch(value) is None:
        raise SourceError(
            SourceErrorCode.SOURCE_REJECTED,
            member,
            f"{value[:40]!r} is not a key of member {member}'s {t.logical_name} records.",
        )
    return int(value)


def integer_keys(t: Table, logical: str, values: Sequence[str]) -> list[Any]:
    """Keys in their column's own type; those the source cannot have issued match nothing."""
    if not t.is_integer_key(logical):
        return list(values)
    return [int(v) for v in values if INTEGER_KEY.fullmatch(v)]


def list_conditions(
    w: Where,
    columns: ColumnMap,
    kind: RecordKind[Any],
    q: ListQuery,
    f: port.RecordFilter,
    *,
    bounded: bool,
    member: str,
) -> None:
    """Adds to `w` what selects a list's records: the readers' parties, the time window, the
    filter, and with `bounded` the position after which the page starts."""
    t = columns[kind.name]
    sort = kind.sort_field
    assert sort is not None, f"{kind!r} is not listed"
    s, key = t.col(sort), t.col("id")
    _parties(w, columns, kind, t, q)
    if q.since is not None:
        w.add(f"{s} >= {{}}", q.since)
    if q.until is not None:
        w.add(f"{s} < {{}}", q.until)
    if bounded and q.bound is not None:
        b = q.bound
        if b.key is not None:
            # Expanded rather than a row comparison, so that every engine range-scans the
            # (sort, id) index from the bound.
            w.add(
                f"{s} <= {{}} AND ({s} < {{}} OR {key} < {{}})",
                b.value,
                b.value,
                integer_key(t, "id", b.key, member),
            )
        else:
            w.add(f"{s} {'<=' if b.ties_after else '<'} {{}}", b.value)
    if isinstance(f, ReferralFilter):
        _any(w, t, "direction", f.directions)
        _any(w, t, "status", f.statuses)
        if f.green_channel is not None:
            w.add(f"{t.col('green_channel')} = {{}}", f.green_channel)
    elif isinstance(f, ConsultationFilter):
        _any(w, t, "kind", f.kinds)
        _any(w, t, "status", f.statuses)
    elif isinstance(f, CapacityFilter):
        _any(w, t, "kind", f.kinds)
    elif isinstance(f, TrainingFilter):
        _any(w, t, "kind", f.kinds)
        _any(w, t, "mode", f.modes)
    elif isinstance(f, ResultFilter):
        w.add(f"{t.col('patient_pseudonym')} = {{}}", f.patient_pseudonym)
        if f.item_codes:
            codes = list(f.item_codes)
            items = w.any_of(t.col("item_code"), codes)
            loincs = w.any_of(t.col("loinc"), codes)
            w.parts.append(f"({items} OR {loincs})")


def _parties(w: Where, columns: ColumnMap, kind: RecordKind[Any], t: Table, q: ListQuery) -> None:
    wanted = [
        hospitals
        for hospitals in (q.parties, (q.with_party,) if q.with_party else None)
        if hospitals is not None
    ]
    if kind is port.TRAINING_EVENT:
        # An event concerns its host and every hospital that sent participants.
        p = columns["training_participation"]
        for hospitals in wanted:
            host = w.any_of(t.col("host_hospital"), hospitals)
            sent = w.any_of(f"p.{p.col('hospital')}", hospitals)
            w.parts.append(
                f"({host} OR EXISTS (SELECT 1 FROM {p.name} p WHERE "
                f"p.{p.col('event_id')} = {t.name}.{t.col('id')} AND {sent}))"
            )
        return
    party_columns = _PARTIES[kind.name]
    for hospitals in wanted:
        if party_columns:
            w.parts.append(
                "(" + " OR ".join(w.any_of(t.col(c), hospitals) for c in party_columns) + ")"
            )


def _any(w: Where, t: Table, column: str, values: tuple[str, ...] | None) -> None:
    if values:
        w.parts.append(w.any_of(t.col(column), values))
