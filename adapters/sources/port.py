"""The source port: the one way the gateway reaches a member hospital's source, whatever its kind
(a PostgreSQL or MySQL exchange database, an HL7 FHIR R4 server).

Each call is a typed request that names the operation it performs, so one guard can run, trace
and explain every call alike and a request is dispatched to whichever adapter serves the member
(`request.send(source)`). Records and requests are plain data (`adapters.sources.records`); no
driver type crosses this line, and an adapter raises only `SourceError` (or TimeoutError)."""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, ClassVar, Generic, Protocol, TypeVar

from adapters.sources.records import (
    CapacityActivityRow,
    CapacityFilter,
    ChangeRow,
    ConsultationFilter,
    ConsultationRow,
    DecisionRow,
    ListQuery,
    ParticipationRow,
    PlacementRow,
    QualityControlRow,
    ReferralFilter,
    ReferralRow,
    ReportRow,
    ResultFilter,
    ResultRow,
    SatisfactionSurveyRow,
    SpecialtyVolumeRow,
    TrainingEventRow,
    TrainingFilter,
)

R = TypeVar("R")
T = TypeVar("T")


@dataclass(frozen=True, slots=True, eq=False)
class RecordKind(Generic[R]):
    """A kind of record a source may hold, with the type its records have."""

    name: str
    record: type[R]
    # The field lists order by, newest first; None for records not listed on their own.
    sort_field: str | None = None
    # The record's fields in the order its constructor takes them.
    fields: tuple[str, ...] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "fields", tuple(self.record.__dataclass_fields__))  # type: ignore[attr-defined]

    def __repr__(self) -> str:
        return self.name

    def wanted(self, fields: frozenset[str] | None) -> frozenset[str] | None:
        """What a page must read of the `fields` a reader asks for: with them, the key and the
        sort field, which the merge and the cursors read."""
        if fields is None:
            return None
        return fields | {"id", self.sort_field or "id"}


REFERRAL = RecordKind("referral", ReferralRow, "created_at")
CONSULTATION = RecordKind("consultation", ConsultationRow, "created_at")
CONSULTATION_REPORT = RecordKind("consultation_report", ReportRow)
TRAINING_EVENT = RecordKind("training_event", TrainingEventRow, "held_on")
TRAINING_PARTICIPATION = RecordKind("training_participation", ParticipationRow)
PLACEMENT = RecordKind("placement", PlacementRow, "starts_on")
TEST_RESULT = RecordKind("test_result", ResultRow, "performed_at")
QUALITY_CONTROL = RecordKind("quality_control", QualityControlRow)
RECOGNITION_DECISION = RecordKind("recognition_decision", DecisionRow, "decided_at")
# What the assessment's N indicators and the work reports count, per hospital and period.
SPECIALTY_VOLUME = RecordKind("specialty_volume", SpecialtyVolumeRow, "month")
SATISFACTION_SURVEY = RecordKind("satisfaction_survey", SatisfactionSurveyRow, "month")
CAPACITY_ACTIVITY = RecordKind("capacity_activity", CapacityActivityRow, "started_on")

RECORD_KINDS: tuple[RecordKind[Any], ...] = (
    REFERRAL,
    CONSULTATION,
    CONSULTATION_REPORT,
    TRAINING_EVENT,
    TRAINING_PARTICIPATION,
    PLACEMENT,
    TEST_RESULT,
    QUALITY_CONTROL,
    RECOGNITION_DECISION,
    SPECIALTY_VOLUME,
    SATISFACTION_SURVEY,
    CAPACITY_ACTIVITY,
)

RecordFilter = (
    ReferralFilter | ConsultationFilter | TrainingFilter | ResultFilter | CapacityFilter | None
)


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What an adapter can do for its member. A kind it does not serve is not an error: the
    member is simply absent from that kind's answers."""

    serves: frozenset[RecordKind[Any]]
    writable: bool
    notifies: bool  # pushes change notifications (else change capture polls)
    # The ListQuery / filter fields it applies at the source; anything else it does not take.
    pushdown: frozenset[str]
    # The record keys it can have issued: a key that cannot match is refused before any call.
    key_pattern: re.Pattern[str]

    def accepts_key(self, key: str) -> bool:
        return self.key_pattern.fullmatch(key) is not None

    def read_only(self) -> Capabilities:
        """The same, for a member configured `read_only`: it takes no writes."""
        return replace(self, writable=False)


# -- requests and what they answer -----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Page(Generic[R]):
    records: list[R]
    total: int | None = None  # when asked for: every matching record, whatever the bound


@dataclass(frozen=True, slots=True)
class Created(Generic[R]):
    record: R
    created: bool  # False: the idempotency key had been used, and this is that record


@dataclass(frozen=True, slots=True)
class Children:
    """Records created with their parent, in the same transaction, each naming it by `parent_field`."""

    kind: RecordKind[Any]
    parent_field: str
    values: tuple[Mapping[str, Any], ...]


@dataclass(frozen=True, slots=True)
class AggregateRow:
    group: tuple[Any, ...]
    count: int
    sums: tuple[int, ...]


class SourceRequest(ABC, Generic[T]):
    """One call to one member's source."""

    operation: ClassVar[str]
    # A read whose identical twins in flight may share its answer (requests are frozen data).
    coalescible: ClassVar[bool] = False
    kind: RecordKind[Any] | None

    @abstractmethod
    def send(self, source: SourcePort) -> Awaitable[T]:
        """The port method that serves this request, called: the dispatch to the adapter."""

    def describe(self) -> str:
        """What was asked, for spans and explanations: the shape, never a value."""
        return f"{self.operation} {self.kind!r}" if self.kind else self.operation


@dataclass(frozen=True, slots=True)
class PageRequest(SourceRequest[Page[R]]):
    """A page of records, newest first by the kind's sort field then key, after `query.bound`."""

    kind: RecordKind[R]
    query: ListQuery
    filter: RecordFilter = None
    with_total: bool = False
    # The record fields the reader will read (`kind.wanted` adds what the merge reads); None:
    # all of them. A source may leave the others None, to read and build less.
    fields: frozenset[str] | None = None
    operation = "page"
    coalescible = True

    def send(self, source: SourcePort) -> Awaitable[Page[R]]:
        return source.page(self)

    def describe(self) -> str:
        asked = [name for name in _LIST_FIELDS if getattr(self.query, name) is not None]
        if self.filter is not None:
            asked += [
                name
                for name in self.filter.__dataclass_fields__
                if getattr(self.filter, name) is not None
            ]
        total = " +total" if self.with_total else ""
        return f"page {self.kind!r} limit={self.query.limit}{total} by {','.join(asked) or '-'}"


_LIST_FIELDS = ("parties", "with_party", "since", "until", "bound")


@dataclass(frozen=True, slots=True)
class LookupRequest(SourceRequest[list[R]]):
    """The records whose `field` is one of `values` (and whose `where` fields equal theirs)."""

    kind: RecordKind[R]
    values: tuple[str, ...]
    field: str = "id"
    where: tuple[tuple[str, str], ...] = ()
    operation = "lookup"
    coalescible = True

    def send(self, source: SourcePort) -> Awaitable[list[R]]:
        return source.lookup(self)

    def describe(self) -> str:
        where = "".join(f",{name}" for name, _ in self.where)
        return f"lookup {self.kind!r} by {self.field}{where} ×{len(self.values)}"


@dataclass(frozen=True, slots=True)
class CreateRequest(SourceRequest[Created[R]]):
    """A new record; with `idempotency_key` among the values, a retry returns the first one."""

    kind: RecordKind[R]
    values: Mapping[str, Any]
    children: Children | None = None
    operation = "create"

    def send(self, source: SourcePort) -> Awaitable[Created[R]]:
        return source.create(self)


@dataclass(frozen=True, slots=True)
class UpdateRequest(SourceRequest[R | None]):
    """Changes to one record if it is still at `expected_version`; None when it moved on (or is
    gone). The source bumps the version and the update time itself."""

    kind: RecordKind[R]
    key: str
    expected_version: int
    changes: Mapping[str, Any]
    children: Children | None = None
    operation = "update"

    def send(self, source: SourcePort) -> Awaitable[R | None]:
        return source.update(self)


@dataclass(frozen=True, slots=True)
class AggregateRequest(SourceRequest[list[AggregateRow]]):
    """Counts (and sums) of the records in a time window, grouped: what statistics and
    assessments need without moving records."""

    kind: RecordKind[Any]
    query: ListQuery
    group_by: tuple[str, ...] = ()
    sums: tuple[str, ...] = ()
    filter: RecordFilter = None
    operation = "aggregate"
    coalescible = True

    def send(self, source: SourcePort) -> Awaitable[list[AggregateRow]]:
        return source.aggregate(self)

    def describe(self) -> str:
        return f"aggregate {self.kind!r} by {','.join(self.group_by) or '-'}"


@dataclass(frozen=True, slots=True)
class PingRequest(SourceRequest[None]):
    kind: RecordKind[Any] | None = None
    operation = "ping"

    def send(self, source: SourcePort) -> Awaitable[None]:
        return source.ping()


# -- change capture ----------------------------------------------------------------------------


class ChangeFeed(Protocol):
    """A member's changed records since a watermark, oldest first, with an optional push of
    "something changed" (LISTEN/NOTIFY, a FHIR subscription) that says when to look."""

    member: str
    kinds: Sequence[str]  # the RecordKind names it reports changes of

    async def connect(self, on_notify: Callable[[], None]) -> bool:
        """Opens the feed; True when the source will call `on_notify` on changes."""
        ...

    @property
    def connected(self) -> bool: ...

    async def close(self) -> None: ...

    async def changes(self, table: str, after: tuple[datetime, str], limit: int) -> list[ChangeRow]:
        """Changes after (updated_at, key), oldest first; key "" is before every key."""
        ...

    async def now_or_latest(self, table: str) -> datetime:
        """Where a first watch begins: the source's own present, or its newest change if later."""
        ...


# -- the port ----------------------------------------------------------------------------------


class SourcePort(Protocol):
    """A member's source. Every method raises only SourceError (or TimeoutError); none retries."""

    member: str
    adapter: str  # the `kind` it was configured as: "postgres", "fhir", …

    @property
    def capabilities(self) -> Capabilities: ...

    async def page(self, request: PageRequest[R]) -> Page[R]: ...

    async def lookup(self, request: LookupRequest[R]) -> list[R]: ...

    async def create(self, request: CreateRequest[R]) -> Created[R]: ...

    async def update(self, request: UpdateRequest[R]) -> R | None: ...

    async def aggregate(self, request: AggregateRequest) -> list[AggregateRow]: ...

    async def ping(self) -> None: ...

    def change_feed(self) -> ChangeFeed:
        """A feed of its own (its own connection), for the replica that watches this member."""
        ...

    def pool_stats(self) -> PoolStats | None:
        """Connections in use and idle, for metrics; None before the first call."""
        ...

    async def close(self) -> None: ...


@dataclass(frozen=True, slots=True)
class PoolStats:
    size: int
    idle: int
    max_size: int


@dataclass(frozen=True, slots=True)
class SourceConfig:
    """What the gateway's configuration says of one member's source, for its adapter."""

    member: str
    kind: str
    dsn: str | None = None
    read_only: bool = False
    timeout_seconds: float = 2.0
    pool_max_size: int = 4
    columns: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    # An HTTP source (FHIR): its service base URL, and the environment variable holding its
    # bearer token, if it needs one.
    base_url: str | None = None
    token_env: str | None = None
