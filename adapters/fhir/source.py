"""The source port over an HL7 FHIR R4 server: one pooled httpx client per member (client.py), the
published mapping (mapping.py, MAPPING.md).

Served: referrals and consultations (ServiceRequest; a consultation's report a DiagnosticReport),
test results (Observation), the lab's quality control (an EQA Observation) and recognition
decisions (Task). Not served: training events and participation, placements (see MAPPING.md for
why); those kinds simply leave this member out of their answers.

Writes of referrals and consultations are transaction Bundles (workflow.py): the ServiceRequest
with the workflow pattern's Task and, when scheduled, Appointment, all or none. Reads stay on the
ServiceRequest.

Paging. The server orders by the sort parameter only (its ties come in its own order) and cannot
search `(date, id) < (v, k)`. So a page asks for the records at or before the bound's value,
newest first (`_sort`, `_count`), follows `Bundle.link[next]` exactly as returned, drops client-side
the ties at or after the bound's key, and orders ties by id (descending, as strings) itself: it
reads on until the tie group at the page's end is complete, so pages never skip or repeat."""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any, TypeVar

from adapters.fhir import mapping, workflow
from adapters.fhir.client import Answer, FhirClient
from adapters.sources import port
from adapters.sources.errors import SourceError, SourceErrorCode
from adapters.sources.port import (
    AggregateRequest,
    AggregateRow,
    Capabilities,
    Children,
    Created,
    CreateRequest,
    LookupRequest,
    Page,
    PageRequest,
    PoolStats,
    RecordKind,
    SourceConfig,
    UpdateRequest,
)
from adapters.sources.records import (
    ConsultationFilter,
    ConsultationRow,
    ListQuery,
    ReferralFilter,
    ReferralRow,
    ResultFilter,
    ResultRow,
)

if TYPE_CHECKING:
    from adapters.fhir.changes import FhirChangeFeed

R = TypeVar("R")

# A FHIR logical id.
KEY = re.compile(r"[A-Za-z0-9\-.]{1,64}")

_MICRO = timedelta(microseconds=1)
_MILLI = timedelta(milliseconds=1)


@dataclass(frozen=True, slots=True)
class _Kind:
    resource: str
    sort_param: str  # the search parameter of the kind's sort field
    to_row: Callable[[Mapping[str, Any]], Any]
    base: tuple[tuple[str, str], ...]  # what every search of it names


_KINDS: dict[str, _Kind] = {
    "referral": _Kind(
        "ServiceRequest",
        "authored",
        mapping.referral_row,
        (("category", f"{mapping.SNOMED}|{mapping.REFERRAL_CATEGORY['code']}"),),
    ),
    "consultation": _Kind(
        "ServiceRequest",
        "authored",
        mapping.consultation_row,
        (("category", f"{mapping.SNOMED}|{mapping.CONSULTATION_CATEGORY['code']}"),),
    ),
    "consultation_report": _Kind(
        "DiagnosticReport",
        "issued",
        mapping.report_row,
        (("code", f"{mapping.REPORT_TYPE}|consultation-opinion"),),
    ),
    "test_result": _Kind(
        "Observation",
        "date",
        mapping.result_row,
        (("category", f"{mapping.RESULT_CATEGORY}|LAB,{mapping.RESULT_CATEGORY}|EXAM"),),
    ),
    "quality_control": _Kind(
        "Observation",
        "date",
        mapping.quality_control_row,
        (("category", f"{mapping.QUALITY_CONTROL}|EQA"),),
    ),
    "recognition_decision": _Kind(
        "Task",
        "authored-on",
        mapping.decision_row,
        (("code", f"{mapping.TASK_TYPE}|recognition-decision"),),
    ),
}
# The kinds whose changes are events (a lab's quality control is not one).
WATCHED = (
    "referral",
    "consultation",
    "consultation_report",
    "test_result",
    "recognition_decision",
)

CAPABILITIES = Capabilities(
    serves=frozenset(
        {
            port.REFERRAL,
            port.CONSULTATION,
            port.CONSULTATION_REPORT,
            port.TEST_RESULT,
            port.QUALITY_CONTROL,
            port.RECOGNITION_DECISION,
        }
    ),
    writable=True,
    notifies=False,  # polled by _lastUpdated; woken by a rest hook where the gateway has one
    pushdown=frozenset(
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
            "patient_pseudonym",
            "item_codes",
        }
    ),
    key_pattern=KEY,
)


def _as_datetime(value: datetime | date) -> datetime:
    if isinstance(value, datetime):
        return value
    return datetime.combine(value, time(), tzinfo=UTC)


def _fhir_date(value: datetime) -> str:
    """A search value the server reads as exactly this microsecond: it parses the fraction
    through a float and truncates, so a seventh digit of 5 keeps it from landing a microsecond
    early (as it does for about 1 % of six-digit fractions, the resources' own included)."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f") + "5+00:00"


class FhirSource:
    """A member hospital's FHIR R4 server, as a SourcePort."""

    adapter = "fhir"
    capabilities = CAPABILITIES

    def __init__(
        self,
        member: str,
        base_url: str,
        *,
        read_only: bool = False,
        timeout_seconds: float = 2.0,
        pool_max_size: int = 4,
        token: str | None = None,
    ) -> None:
        self.member = member
        self.read_only = read_only
        if read_only:
            self.capabilities = CAPABILITIES.read_only()
        self.base_url = base_url
        self._timeout = timeout_seconds
        self._token = token
        self._pool_max_size = pool_max_size
        self.client = FhirClient(
            member,
            base_url,
            timeout_seconds=timeout_seconds,
            pool_max_size=pool_max_size,
            token=token,
        )
        self._used = False

    @classmethod
    def from_config(cls, config: SourceConfig) -> FhirSource:
        base_url = config.base_url or config.dsn
        if not base_url:
            raise ValueError(f"member {config.member}: a fhir source needs a base_url")
        token = os.environ.get(config.token_env) if config.token_env else None
        return cls(
            config.member,
            base_url,
            read_only=config.read_only,
            timeout_seconds=config.timeout_seconds,
            pool_max_size=config.pool_max_size,
            token=token,
        )

    # -- plumbing --------------------------------------------------------------------------------

    def _kind(self, kind: RecordKind[Any]) -> _Kind:
        served = _KINDS.get(kind.name)
        if served is None:
            raise SourceError(SourceErrorCode.SOURCE_NOT_SERVED, self.member)
        return served

    async def _get(self, url: str, params: list[tuple[str, str]] | None, what: str) -> Answer:
        self._used = True
        return await self.client.request("GET", url, params=params, what=what)

    def _bundle(self, answer: Answer) -> dict[str, Any]:
        body = answer.body
        if body is None or body.get("resourceType") != "Bundle":
            raise SourceError(SourceErrorCode.SOURCE_SCHEMA_MISMATCH, self.member)
        return body

    def _matches(self, bundle: Mapping[str, Any], resource: str) -> list[dict[str, Any]]:
        found = []
        for entry in bundle.get("entry") or ():
            if not isinstance(entry, dict):
                raise SourceError(SourceErrorCode.SOURCE_SCHEMA_MISMATCH, self.member)
            if (entry.get("search") or {}).get("mode", "match") != "match":
                continue
            r = entry.get("resource")
            if not isinstance(r, dict) or r.get("resourceType") != resource:
                raise SourceError(SourceErrorCode.SOURCE_SCHEMA_MISMATCH, self.member)
            found.append(r)
        return found

    def _row(self, k: _Kind, resource: Mapping[str, Any]) -> Any:
        try:
            return k.to_row(resource)
        except mapping.Malformed:
            raise SourceError(SourceErrorCode.SOURCE_SCHEMA_MISMATCH, self.member) from None

    @staticmethod
    def _next(bundle: Mapping[str, Any]) -> str | None:
        for link in bundle.get("link") or ():
            if isinstance(link, dict) and link.get("relation") == "next":
                url = link.get("url")
                return url if isinstance(url, str) else None
        return None

    async def _search(
        self, k: _Kind, params: list[tuple[str, str]], *, enough: Callable[[list[Any]], bool]
    ) -> list[Any]:
        """Rows of every page until `enough(rows so far)` or there is no next page."""
        answer = await self._get(k.resource, [*k.base, *params], f"{k.resource}?")
        rows: list[Any] = []
        while True:
            bundle = self._bundle(answer)
            rows += [self._row(k, r) for r in self._matches(bundle, k.resource)]
            following = self._next(bundle)
            if following is None or enough(rows):
                return rows
            # The next link exactly as the server returned it.
            answer = await self._get(following, None, f"{k.resource}?")

    async def _count(self, k: _Kind, params: list[tuple[str, str]]) -> int:
        answer = await self._get(
            k.resource, [*k.base, *params, ("_summary", "count")], f"{k.resource}?"
        )
        total = self._bundle(answer).get("total")
        if not isinstance(total, int):
            raise SourceError(SourceErrorCode.SOURCE_SCHEMA_MISMATCH, self.member)
        return total

    # -- lists -----------------------------------------------------------------------------------

    def _params(
        self, kind: RecordKind[Any], q: ListQuery, f: port.RecordFilter, *, widened: bool
    ) -> list[tuple[str, str]]:
        """The search parameters of a list, without the bound. The server indexes a time to the
        microsecond but may read one a microsecond early (see _fhir_date), so it cannot tell a
        record exactly at such an edge from one a microsecond outside: `widened` (for pages)
        asks a millisecond more on each side, and the rows are then filtered exactly (`_keep`);
        a count asks the window as it is, its edges first moved to microseconds read exactly
        (`_total`)."""
        k = self._kind(kind)
        p: list[tuple[str, str]] = []
        if kind in (port.REFERRAL, port.CONSULTATION):
            for hospitals in (q.parties, (q.with_party,) if q.with_party else None):
                if hospitals is not None:
                    p.append(("_tag", ",".join(f"{mapping.PARTY}|{h}" for h in hospitals) or "-"))
            if isinstance(f, ReferralFilter):
                if f.directions is not None:
                    p.append(("_tag", _any_tag(mapping.DIRECTION, f.directions)))
                if f.statuses is not None:
                    p.append(("_tag", _any_tag(mapping.STATUS, f.statuses)))
                if f.green_channel is not None:
                    p.append(("_tag", f"{mapping.GREEN}|{'true' if f.green_channel else 'false'}"))
        if isinstance(f, ConsultationFilter):
            if f.kinds is not None:
                p.append(("_tag", _any_tag(mapping.CONSULTATION_KIND, f.kinds)))
            if f.statuses is not None:
                p.append(("_tag", _any_tag(mapping.CONSULTATION_STATUS, f.statuses)))
        if isinstance(f, ResultFilter):
            p.append(("subject:identifier", f"{mapping.PSEUDONYM}|{f.patient_pseudonym}"))
            if f.item_codes is not None:
                p.append(("code", ",".join(f.item_codes) or "-"))
        if q.since is not None:
            since = _as_datetime(q.since) - (_MILLI if widened else _MICRO)
            p.append((k.sort_param, f"gt{_fhir_date(since)}"))
        if q.until is not None:
            until = _as_datetime(q.until) + (_MILLI if widened else timedelta())
            p.append((k.sort_param, f"lt{_fhir_date(until)}"))
        return p

    def _keep(self, kind: RecordKind[Any], q: ListQuery, f: port.RecordFilter, row: Any) -> bool:
        """Exactly what the list asks, on one row (the server's date ranges are approximate)."""
        value = getattr(row, kind.sort_field or "")
        if q.since is not None and value < _as_datetime(q.since):
            return False
        if q.until is not None and value >= _as_datetime(q.until):
            return False
        b = q.bound
        if b is not None:
            at = _as_datetime(b.value)
            if b.key is not None:
                if value > at or (value == at and row.id >= b.key):
                    return False
            elif value > at or (value == at and not b.ties_after):
                return False
        if isinstance(row, ReferralRow):
            parties = {row.from_hospital, row.to_hospital}
            if q.parties is not None and not parties & set(q.parties):
                return False
            if q.with_party is not None and q.with_party not in parties:
                return False
            if isinstance(f, ReferralFilter):
                if f.directions is not None and row.direction not in f.directions:
                    return False
                if f.statuses is not None and row.status not in f.statuses:
                    return False
                if f.green_channel is not None and row.green_channel is not f.green_channel:
                    return False
        if isinstance(row, ConsultationRow):
            parties = {row.requesting_hospital, row.invited_hospital}
            if q.parties is not None and not parties & set(q.parties):
                return False
            if q.with_party is not None and q.with_party not in parties:
                return False
            if isinstance(f, ConsultationFilter):
                if f.kinds is not None and row.kind not in f.kinds:
                    return False
                if f.statuses is not None and row.status not in f.statuses:
                    return False
        if isinstance(row, ResultRow) and isinstance(f, ResultFilter):
            if row.patient_pseudonym != f.patient_pseudonym:
                return False
            if f.item_codes is not None and not (
                row.item_code in f.item_codes
                or (row.loinc is not None and row.loinc in f.item_codes)
            ):
                return False
        return True

    async def page(self, request: PageRequest[R]) -> Page[R]:
        kind, q, f = request.kind, request.query, request.filter
        k = self._kind(kind)
        field = kind.sort_field or ""
        bounded = self._params(kind, q, f, widened=True)
        if q.bound is not None:
            # At or before the bound's value, a millisecond more: `_keep` cuts exactly.
            at = _as_datetime(q.bound.value)
            bounded.append((k.sort_param, f"lt{_fhir_date(at + _MILLI)}"))
        bounded += [("_sort", f"-{k.sort_param}"), ("_count", str(min(q.limit + 1, 1000)))]

        def ordered(rows: list[Any]) -> list[Any]:
            kept = [r for r in rows if self._keep(kind, q, f, r)]
            kept.sort(key=lambda r: (getattr(r, field), r.id), reverse=True)
            return kept

        def enough(rows: list[Any]) -> bool:
            kept = ordered(rows)
            if len(kept) < q.limit:
                return False
            # The server's next rows are no newer than its last: complete once that is older
            # than the page's last record (its tie group is whole).
            return bool(getattr(rows[-1], field) < getattr(kept[q.limit - 1], field))

        async def records() -> list[R]:
            if q.limit <= 0:
                return []
            return ordered(await self._search(k, bounded, enough=enough))[: q.limit]

        if not request.with_total:
            return Page(await records())
        # Both at once: a slow member costs one deadline, not two.
        rows, total = await asyncio.gather(records(), self._total(kind, q, f))
        return Page(rows, total)

    async def _total(self, kind: RecordKind[Any], q: ListQuery, f: port.RecordFilter) -> int:
        """Every record of the list, whatever the bound: `_summary=count` over the window with
        its edges moved (outwards) to microseconds the server reads exactly, less the records
        between a moved edge and the true one, counted exactly (a small search, at once)."""
        k = self._kind(kind)
        since = _as_datetime(q.since) if q.since is not None else None
        until = _as_datetime(q.until) if q.until is not None else None
        counted_since = _read_exactly(since, -1) if since is not None else None
        counted_until = _read_exactly(until, +1) if until is not None else None
        window = replace(q, since=counted_since, until=counted_until, bound=None)
        asks = [self._count(k, self._params(kind, window, f, widened=False))]
        slivers = []
        if since is not None and counted_since is not None and counted_since < since:
            slivers.append(replace(q, since=counted_since, until=since, bound=None))
        if until is not None and counted_until is not None and counted_until > until:
            slivers.append(replace(q, since=until, until=counted_until, bound=None))
        for sliver in slivers:
            asks.append(self._exact_count(kind, sliver, f))
        counts = await asyncio.gather(*asks)
        return counts[0] - sum(counts[1:])

    async def _exact_count(self, kind: RecordKind[Any], q: ListQuery, f: port.RecordFilter) -> int:
        k = self._kind(kind)
        params = [*self._params(kind, q, f, widened=True), ("_count", "100")]
        rows = await self._search(k, params, enough=lambda _: False)
        return sum(1 for r in rows if self._keep(kind, q, f, r))

    async def lookup(self, request: LookupRequest[R]) -> list[R]:
        k = self._kind(request.kind)
        values = [v for v in request.values if v]
        if request.field == "id":
            values = [v for v in values if KEY.fullmatch(v)]
            name, rendered = "_id", values
        elif request.kind is port.REFERRAL and request.field in ("referral_no", "idempotency_key"):
            system = mapping.REFERRAL_NO if request.field == "referral_no" else mapping.IDEMPOTENCY
            name, rendered = "identifier", [f"{system}|{v}" for v in values]
        elif request.kind is port.CONSULTATION_REPORT and request.field == "consultation_id":
            values = [v for v in values if KEY.fullmatch(v)]
            name, rendered = "based-on", [f"ServiceRequest/{v}" for v in values]
        elif request.kind is port.CONSULTATION and request.field == "idempotency_key":
            name, rendered = "identifier", [f"{mapping.IDEMPOTENCY}|{v}" for v in values]
        elif request.kind is port.QUALITY_CONTROL and request.field == "loinc":
            name, rendered = "code", [f"{mapping.LOINC}|{v}" for v in values]
        elif (
            request.kind is port.RECOGNITION_DECISION
            and request.field == "result_id"
            and [n for n, _ in request.where] == ["result_member"]
        ):
            system = mapping.result_system(request.where[0][1])
            name, rendered = "focus:identifier", [f"{system}|{v}" for v in values]
        else:
            raise SourceError(SourceErrorCode.SOURCE_NOT_SERVED, self.member)
        if not values or (request.where and name != "focus:identifier"):
            return []
        rows: list[Any] = []
        for start in range(0, len(rendered), 50):
            chunk = rendered[start : start + 50]
            rows += await self._search(
                k,
                [(name, ",".join(chunk)), ("_count", str(len(chunk) + 1))],
                enough=lambda _: False,
            )
        if request.kind.sort_field:
            field = request.kind.sort_field
            rows.sort(key=lambda r: (getattr(r, field), r.id), reverse=True)
        return rows

    async def aggregate(self, request: AggregateRequest) -> list[AggregateRow]:
        """FHIR search cannot group or sum: the window's records are read (one search, by the
        server's pages of 500) and counted here."""
        kind, q, f = request.kind, request.query, request.filter
        k = self._kind(kind)
        window = replace(q, bound=None)
        params = [*self._params(kind, window, f, widened=True), ("_count", "500")]
        rows = [
            r
            for r in await self._search(k, params, enough=lambda _: False)
            if self._keep(kind, window, f, r)
        ]
        groups: dict[tuple[Any, ...], list[Any]] = {}
        for r in rows:
            groups.setdefault(tuple(getattr(r, g) for g in request.group_by), []).append(r)
        return [
            AggregateRow(
                group=group,
                count=len(members),
                sums=tuple(sum(getattr(r, n) or 0 for r in members) for n in request.sums),
            )
            for group, members in groups.items()
        ]

    # -- writes ----------------------------------------------------------------------------------

    def _refuse_writes(self, kind: RecordKind[Any], children: Children | None) -> None:
        if self.read_only:
            raise SourceError(SourceErrorCode.SOURCE_READ_ONLY, self.member)
        writable = (port.REFERRAL, port.CONSULTATION, port.RECOGNITION_DECISION)
        if kind not in writable or (
            children is not None
            and not (kind is port.CONSULTATION and children.kind is port.CONSULTATION_REPORT)
        ):
            raise SourceError(SourceErrorCode.SOURCE_NOT_SERVED, self.member)

    def _check_referral(self, row: Mapping[str, Any]) -> None:
        """The published contract's checks (exchange.sql's CHECKs), before the server is asked."""
        age = row.get("patient_age")
        ok = (
            row.get("direction") in mapping.DIRECTIONS
            and row.get("status") in mapping.STATUSES
            and row.get("urgency") in mapping.URGENCIES
            and row.get("patient_sex") in mapping.SEXES
            and (age is None or 0 <= int(age) <= 150)
            and all(
                isinstance(row.get(n), str) and row[n]
                for n in (
                    "referral_no",
                    "from_hospital",
                    "to_hospital",
                    "patient_pseudonym",
                    "diagnosis_code",
                    "reason",
                )
            )
        )
        if not ok:
            raise SourceError(SourceErrorCode.SOURCE_REJECTED, self.member)

    async def create(self, request: CreateRequest[R]) -> Created[R]:
        self._refuse_writes(request.kind, request.children)
        k = self._kind(request.kind)
        now = datetime.now(UTC)
        if request.kind is port.RECOGNITION_DECISION:
            return await self._create_decision(k, {"decided_at": now, **request.values})
        if request.children is not None:
            raise SourceError(SourceErrorCode.SOURCE_NOT_SERVED, self.member)
        if request.kind is port.CONSULTATION:
            return await self._create_consultation(
                k,
                {
                    "status": "REQUESTED",
                    "urgency": "ROUTINE",
                    "attached_studies": [],
                    "created_at": now,
                    **request.values,
                },
            )
        row = {
            "status": "INITIATED",
            "urgency": "ROUTINE",
            "green_channel": False,
            "created_at": now,
            **request.values,
        }
        self._check_referral(row)
        key = row.get("idempotency_key")
        # Conditional create: on the idempotency identifier, else on the referral number (unique
        # in the contract: a second one is the source refusing the values).
        condition = (
            f"identifier={mapping.IDEMPOTENCY}|{key}"
            if key
            else f"identifier={mapping.REFERRAL_NO}|{row['referral_no']}"
        )
        answer = await self._transact(workflow.create_entries(workflow.REFERRAL, row, condition))
        status, resource = self._first(answer, k.resource)
        record = self._row(k, resource)
        created = status == 201
        if not created and not key:
            raise SourceError(SourceErrorCode.SOURCE_REJECTED, self.member)
        return Created(record, created)

    async def _transact(self, entries: list[dict[str, Any]]) -> Answer:
        """One transaction Bundle: all its entries or none (412: an ifMatch in it failed)."""
        self._used = True
        return await self.client.request(
            "POST",
            "",
            body=workflow.transaction(entries),
            headers={"Prefer": "return=representation"},
            what="transaction",
        )

    def _first(self, answer: Answer, resource: str) -> tuple[int, dict[str, Any]]:
        """The status and resource of a transaction's first entry (the ServiceRequest): the
        answer's entries come in the order of the request's."""
        body = answer.body
        try:
            if body is None or body.get("resourceType") != "Bundle":
                raise ValueError("not a Bundle")
            first = body["entry"][0]
            status = int(str(first["response"]["status"]).split()[0])
            found = first["resource"]
            if not isinstance(found, dict) or found.get("resourceType") != resource:
                raise ValueError("not the request")
        except (KeyError, IndexError, TypeError, ValueError, AttributeError):
            raise SourceError(SourceErrorCode.SOURCE_SCHEMA_MISMATCH, self.member) from None
        return status, found

    def _check_consultation(self, row: Mapping[str, Any]) -> None:
        age, fee = row.get("patient_age"), row.get("fee_fen")
        ok = (
            row.get("kind") in mapping.CONSULTATION_KINDS
            and row.get("status") in mapping.CONSULTATION_STATUSES
            and row.get("urgency") in mapping.URGENCIES
            and row.get("patient_sex") in mapping.SEXES
            and row.get("consent_obtained") is True
            and (age is None or 0 <= int(age) <= 150)
            and (fee is None or int(fee) >= 0)
            and all(
                isinstance(row.get(n), str) and row[n]
                for n in (
                    "requesting_hospital",
                    "requesting_doctor",
                    "invited_hospital",
                    "patient_pseudonym",
                    "purpose",
                )
            )
        )
        if not ok:
            raise SourceError(SourceErrorCode.SOURCE_REJECTED, self.member)

    async def _create_consultation(self, k: _Kind, row: Mapping[str, Any]) -> Created[Any]:
        self._check_consultation(row)
        key = row.get("idempotency_key")
        condition = f"identifier={mapping.IDEMPOTENCY}|{key}" if key else None
        entries = workflow.create_entries(workflow.CONSULTATION, row, condition)
        status, resource = self._first(await self._transact(entries), k.resource)
        return Created(self._row(k, resource), status == 201)

    async def _update_consultation(self, request: UpdateRequest[Any]) -> Any:
        k = self._kind(port.CONSULTATION)
        current: list[Any] = await self.lookup(LookupRequest(port.CONSULTATION, (request.key,)))
        if not current or current[0].version != request.expected_version:
            return None
        values = {**mapping.row_values(current[0]), **request.changes}
        self._check_consultation(values)
        # The consultation, its Task, its Appointment and its report in one transaction.
        now = datetime.now(UTC)
        entries = workflow.update_entries(
            workflow.CONSULTATION, values, request.key, request.expected_version, now
        )
        for child in request.children.values if request.children is not None else ():
            entries.append(
                {
                    "resource": mapping.report_resource(child, {**values, "id": request.key}, now),
                    "request": {"method": "POST", "url": "DiagnosticReport"},
                }
            )
        answer = await self._transact(entries)
        if answer.status == 412:
            return None  # moved on since it was read: a clean conflict, not a lost update
        return self._row(k, self._first(answer, k.resource)[1])

    async def _create_decision(self, k: _Kind, row: Mapping[str, Any]) -> Created[Any]:
        decisions = ("RECOGNIZED", "DECLINED")
        if row.get("decision") not in decisions or not all(
            isinstance(row.get(n), str) and row[n]
            for n in ("result_member", "result_id", "patient_pseudonym", "decided_by")
        ):
            raise SourceError(SourceErrorCode.SOURCE_REJECTED, self.member)
        self._used = True
        answer = await self.client.request(
            "POST",
            k.resource,
            body=mapping.decision_resource(row, self.member),
            headers={"Prefer": "return=representation"},
            what=k.resource,
        )
        if answer.body is None or answer.body.get("resourceType") != k.resource:
            raise SourceError(SourceErrorCode.SOURCE_SCHEMA_MISMATCH, self.member)
        return Created(self._row(k, answer.body), True)

    async def update(self, request: UpdateRequest[R]) -> R | None:
        self._refuse_writes(request.kind, request.children)
        if request.kind not in (port.REFERRAL, port.CONSULTATION):
            raise SourceError(SourceErrorCode.SOURCE_NOT_SERVED, self.member)
        k = self._kind(request.kind)
        if not KEY.fullmatch(request.key):
            raise SourceError(
                SourceErrorCode.SOURCE_REJECTED,
                self.member,
                f"That is not a key of member {self.member}'s {request.kind.name} records.",
            )
        if request.kind is port.CONSULTATION:
            consultation: R | None = await self._update_consultation(request)
            return consultation
        if request.children is not None:
            raise SourceError(SourceErrorCode.SOURCE_NOT_SERVED, self.member)
        current: list[Any] = await self.lookup(LookupRequest(request.kind, (request.key,)))
        if not current or current[0].version != request.expected_version:
            return None
        values = {**mapping.row_values(current[0]), **request.changes}
        self._check_referral(values)
        entries = workflow.update_entries(
            workflow.REFERRAL, values, request.key, request.expected_version, datetime.now(UTC)
        )
        answer = await self._transact(entries)
        if answer.status == 412:
            return None  # moved on since it was read: a clean conflict, not a lost update
        record: R = self._row(k, self._first(answer, k.resource)[1])
        return record

    async def ping(self) -> None:
        self._used = True
        answer = await self.client.request("GET", "metadata", what="metadata")
        if answer.body is None or answer.body.get("resourceType") != "CapabilityStatement":
            raise SourceError(SourceErrorCode.SOURCE_SCHEMA_MISMATCH, self.member)

    def change_feed(self) -> FhirChangeFeed:
        from adapters.fhir.changes import FhirChangeFeed

        return FhirChangeFeed(
            self.member,
            FhirClient(
                self.member,
                self.base_url,
                timeout_seconds=max(self._timeout, 5.0),
                pool_max_size=1,
                token=self._token,
            ),
        )

    def pool_stats(self) -> PoolStats | None:
        if not self._used:
            return None
        busy = self.client.in_flight
        return PoolStats(size=busy, idle=0, max_size=self.client.max_size)

    async def close(self) -> None:
        await self.client.close()


def _read_early(at: datetime) -> bool:
    """Whether a FHIR server that reads a dateTime's fraction through a float (sekmet-fhir does)
    reads this one's microsecond one early: true of about 1 % of them (.000249, .000251, …)."""
    us = at.microsecond
    return int(float(f".{us:06d}") * 1_000_000) != us


def _read_exactly(at: datetime, step: int) -> datetime:
    """`at`, or the nearest microsecond from it in direction `step` that is read exactly."""
    while _read_early(at):
        at += step * _MICRO
    return at


def _any_tag(system: str, codes: Sequence[str]) -> str:
    return ",".join(f"{system}|{c}" for c in codes) or "-"
