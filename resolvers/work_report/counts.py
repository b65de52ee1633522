"""The counts of seed 003 Annex 1 (近一年内联盟工作开展情况) for a period, from the members' sources at
request time: per member (what its own source holds: each record lives at one hospital, so no
record is counted twice) and in total, with the members that could not be read.

What is counted, in the period (China Standard Time):
- academic events (举办学术活动): training events of every kind but free clinics (义诊), by `held_on`;
- on-site tours (赴联盟单位巡诊): capacity activities ON_SITE_TOUR, by `started_on`;
- remote consultations (开展远程会诊): consultations of every remote kind (not ON_SITE) requested in
  the period, less those declined or cancelled;
- people trained (为联盟单位培训人员): the participants of those academic events sent by hospitals
  other than the host, plus further-training placements (进修) starting in the period;
- referrals up and down (上转/下转病例): referrals created in the period, less those rejected or
  cancelled; a member's referral to the lead is up and the lead's to a member down (seed 001 #16,
  #17); between two members, by grade (the rule the referral resolvers check a new one by);
- new techniques and projects (新技术、新业务): capacity activities NEW_TECHNIQUE, by `started_on`."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, fields, replace
from typing import Any, TypeVar

from adapters.sources import port
from adapters.sources.errors import SourceError
from adapters.sources.port import AggregateRequest, LookupRequest, PageRequest, RecordKind
from adapters.sources.records import (
    Bound,
    CapacityFilter,
    ListQuery,
    TrainingEventRow,
    TrainingFilter,
)
from resolvers import registry
from resolvers.context import RequestContext
from resolvers.federation import fan_out, on_member
from resolvers.referrals import expected_direction
from resolvers.work_report.periods import Period

T = TypeVar("T")

ACADEMIC_KINDS = (
    "TRAINING_COURSE",
    "LECTURE_TOUR",
    "SURGERY_DEMONSTRATION",
    "CLINICAL_TEACHING",
    "TEACHING_ROUND",
    "REMOTE_TEACHING",
    "CASE_DISCUSSION",
    "ACADEMIC_CONFERENCE",
)
NOT_HELD = {"REJECTED", "CANCELLED", "DECLINED"}
ON_SITE_CONSULTATION = "ON_SITE"
ON_SITE_TOUR = "ON_SITE_TOUR"
NEW_TECHNIQUE = "NEW_TECHNIQUE"
# Events per page when reading a member's events of the period (a few dozen a year each).
_EVENT_PAGE = 500


@dataclass(frozen=True, slots=True)
class ActivityCounts:
    academic_events: int = 0
    on_site_tours: int = 0
    remote_consultations: int = 0
    people_trained: int = 0
    referrals_up: int = 0
    referrals_down: int = 0
    new_techniques: int = 0

    def __add__(self, other: ActivityCounts) -> ActivityCounts:
        return ActivityCounts(
            *(getattr(self, f.name) + getattr(other, f.name) for f in fields(self))
        )

    def as_dict(self) -> dict[str, int]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> ActivityCounts:
        return cls(**{f.name: int(values.get(f.name, 0)) for f in fields(cls)})


@dataclass(frozen=True, slots=True)
class MemberCounts:
    hospital: str
    counts: ActivityCounts
    complete: bool  # False: some of its source could not be read, so these are too low


@dataclass(frozen=True, slots=True)
class Tally:
    members: list[MemberCounts]

    @property
    def total(self) -> ActivityCounts:
        return sum((m.counts for m in self.members), ActivityCounts())

    @property
    def unread(self) -> list[str]:
        return [m.hospital for m in self.members if not m.complete]

    @property
    def provisional(self) -> bool:
        return any(not m.complete for m in self.members)

    def as_json(self) -> dict[str, Any]:
        return {
            "members": [
                {"hospital": m.hospital, "complete": m.complete, "counts": m.counts.as_dict()}
                for m in self.members
            ]
        }

    @classmethod
    def from_json(cls, snapshot: dict[str, Any]) -> Tally:
        return cls(
            [
                MemberCounts(m["hospital"], ActivityCounts.from_dict(m["counts"]), m["complete"])
                for m in snapshot["members"]
            ]
        )


async def tally(ctx: RequestContext, period: Period) -> Tally:
    """Every member's counts for the period, its sources asked at once."""
    codes = ctx.federation.codes()
    parts = await asyncio.gather(
        _events_and_trainees(ctx, codes, period),
        _placements(ctx, codes, period),
        _consultations(ctx, codes, period),
        _referrals(ctx, codes, period),
        _capacity(ctx, codes, period),
    )
    counts = {code: ActivityCounts() for code in codes}
    failed: set[str] = set()
    for found, missing in parts:
        failed |= missing
        for code, part in found.items():
            counts[code] += part
    return Tally([MemberCounts(code, counts[code], code not in failed) for code in codes])


Part = tuple[dict[str, ActivityCounts], set[str]]


async def _aggregate(
    ctx: RequestContext, codes: list[str], request: AggregateRequest
) -> tuple[dict[str, list[port.AggregateRow]], set[str]]:
    answered = await fan_out(ctx.federation, codes, lambda _: request, ctx.sources)
    return answered.results, {e.member for e in answered.errors}


async def _placements(ctx: RequestContext, codes: list[str], period: Period) -> Part:
    rows, failed = await _aggregate(
        ctx,
        codes,
        AggregateRequest(port.PLACEMENT, ListQuery(None, since=period.first, until=period.end)),
    )
    return {
        code: ActivityCounts(people_trained=sum(r.count for r in found))
        for code, found in rows.items()
    }, failed


async def _consultations(ctx: RequestContext, codes: list[str], period: Period) -> Part:
    rows, failed = await _aggregate(
        ctx,
        codes,
        AggregateRequest(
            port.CONSULTATION,
            ListQuery(None, since=period.since, until=period.until),
            group_by=("kind", "status"),
        ),
    )
    return {
        code: ActivityCounts(
            remote_consultations=sum(
                r.count
                for r in found
                if r.group[0] != ON_SITE_CONSULTATION and r.group[1] not in NOT_HELD
            )
        )
        for code, found in rows.items()
    }, failed


async def _direction_rule(
    ctx: RequestContext, pairs: set[tuple[str, str]]
) -> Callable[[str, str, str], str]:
    """How each referral counts: by the parties' roles and grades, as the referral resolvers
    check a new one (referrals.expected_direction); as it was sent when that gives none (two
    members of the same grade) or a party is unknown to the registry."""
    codes = sorted({code for pair in pairs for code in pair})
    memberships, hospitals = await asyncio.gather(
        asyncio.gather(*(registry.membership(ctx, c) for c in codes)),
        asyncio.gather(*(registry.hospital(ctx, c) for c in codes)),
    )
    role = {c: m.role for c, m in zip(codes, memberships, strict=True) if m is not None}
    grade = {c: h.grade for c, h in zip(codes, hospitals, strict=True) if h is not None}

    def direction(sent: str, sender: str, receiver: str) -> str:
        if sender not in grade or receiver not in grade:
            return sent
        expected = expected_direction(
            role.get(sender, "MEMBER"), grade[sender], role.get(receiver, "MEMBER"), grade[receiver]
        )
        return sent if expected is None else expected.value

    return direction


async def _referrals(ctx: RequestContext, codes: list[str], period: Period) -> Part:
    rows, failed = await _aggregate(
        ctx,
        codes,
        AggregateRequest(
            port.REFERRAL,
            ListQuery(None, since=period.since, until=period.until),
            group_by=("direction", "status", "from_hospital", "to_hospital"),
        ),
    )
    held = [
        (code, r) for code, groups in rows.items() for r in groups if r.group[1] not in NOT_HELD
    ]
    direction = await _direction_rule(ctx, {(r.group[2], r.group[3]) for _, r in held})
    up: dict[str, int] = dict.fromkeys(rows, 0)
    down: dict[str, int] = dict.fromkeys(rows, 0)
    for code, r in held:
        sent, _, sender, receiver = r.group
        if direction(sent, sender, receiver) == "UP":
            up[code] += r.count
        else:
            down[code] += r.count
    return {
        code: ActivityCounts(referrals_up=up[code], referrals_down=down[code]) for code in rows
    }, failed


async def _capacity(ctx: RequestContext, codes: list[str], period: Period) -> Part:
    rows, failed = await _aggregate(
        ctx,
        codes,
        AggregateRequest(
            port.CAPACITY_ACTIVITY,
            ListQuery(None, since=period.first, until=period.end),
            group_by=("kind",),
            filter=CapacityFilter(kinds=(ON_SITE_TOUR, NEW_TECHNIQUE)),
        ),
    )
    return {
        code: ActivityCounts(
            on_site_tours=sum(r.count for r in found if r.group[0] == ON_SITE_TOUR),
            new_techniques=sum(r.count for r in found if r.group[0] == NEW_TECHNIQUE),
        )
        for code, found in rows.items()
    }, failed


async def _events_and_trainees(ctx: RequestContext, codes: list[str], period: Period) -> Part:
    async def one(code: str) -> ActivityCounts:
        events = await _all_events(ctx, code, period)
        trainees = 0
        if events:
            attendance = await on_member(
                ctx.federation,
                code,
                LookupRequest(
                    port.TRAINING_PARTICIPATION,
                    tuple(e.id for e in events),
                    field="event_id",
                ),
                ctx.sources,
            )
            host = {e.id: e.host_hospital for e in events}
            trainees = sum(p.participants for p in attendance if p.hospital != host.get(p.event_id))
        return ActivityCounts(academic_events=len(events), people_trained=trainees)

    return await _each_member(ctx, codes, port.TRAINING_EVENT, one)


async def _all_events(ctx: RequestContext, code: str, period: Period) -> list[TrainingEventRow]:
    query = ListQuery(None, since=period.first, until=period.end, limit=_EVENT_PAGE)
    events: list[TrainingEventRow] = []
    while True:
        page = await on_member(
            ctx.federation,
            code,
            PageRequest(port.TRAINING_EVENT, query, TrainingFilter(kinds=ACADEMIC_KINDS)),
            ctx.sources,
        )
        events += page.records
        if len(page.records) < _EVENT_PAGE:
            return events
        last = page.records[-1]
        query = replace(query, bound=Bound(last.held_on, last.id))


async def _each_member(
    ctx: RequestContext,
    codes: list[str],
    kind: RecordKind[Any],
    work: Callable[[str], Awaitable[ActivityCounts]],
) -> Part:
    """`work` for every member whose source holds `kind`, at once; one that fails is reported
    as fan_out reports it, and costs its part."""
    serving = [c for c in codes if ctx.federation.get(c).serves(kind)]
    outcomes = await asyncio.gather(*(work(c) for c in serving), return_exceptions=True)
    found: dict[str, ActivityCounts] = {}
    failed: set[str] = set()
    for code, outcome in zip(serving, outcomes, strict=True):
        if isinstance(outcome, SourceError):
            ctx.sources.failures.append(outcome)
            failed.add(code)
        elif isinstance(outcome, BaseException):
            raise outcome
        else:
            found[code] = outcome
    return found, failed
