"""What the F and N indicators count, read live from the members' sources for one window: one
aggregate per record kind and member, concurrently, never a record moved.

Each figure is kept per hospital, so the indicator shows the member figures that make it, and per
kind the members that failed (the indicator is then provisional) or hold no such records (a FHIR
member serves no training, placements or exchange-contract volumes: absent, not an error)."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, time
from typing import Any

from adapters.sources import port
from adapters.sources.port import AggregateRequest, AggregateRow, RecordKind
from adapters.sources.records import ListQuery, SpecialtyVolumeRow
from resolvers import clock
from resolvers.assessment.rules import AssessmentRules
from resolvers.context import RequestContext
from resolvers.federation import fan_out

# Referrals that did not go ahead are no referral.
_NOT_REFERRED = frozenset({"REJECTED", "CANCELLED"})
_CARRIED_OUT = frozenset({"REPORTED", "CLOSED"})
# Teaching that counts as remote teaching (#12) when it is held online.
_TEACHING = frozenset(
    {
        "REMOTE_TEACHING",
        "TRAINING_COURSE",
        "LECTURE_TOUR",
        "CLINICAL_TEACHING",
        "TEACHING_ROUND",
        "CASE_DISCUSSION",
        "SURGERY_DEMONSTRATION",
    }
)
# Every monthly total a hospital publishes: the record's fields after its key, hospital and month.
VOLUME_FIELDS = tuple(
    name
    for name in SpecialtyVolumeRow.__dataclass_fields__
    if name not in ("id", "hospital", "month")
)

PerHospital = dict[str, float]


@dataclass(frozen=True, slots=True)
class Window:
    """[since, until) in China Standard Time."""

    since: date
    until: date

    def instants(self) -> tuple[datetime, datetime]:
        cst = clock.CHINA_STANDARD_TIME
        return (
            datetime.combine(self.since, time(), cst),
            datetime.combine(self.until, time(), cst),
        )


@dataclass
class KindRead:
    """Which members a kind was read from, and which failed or do not hold it."""

    answered: set[str] = field(default_factory=set)
    failed: set[str] = field(default_factory=set)
    not_serving: set[str] = field(default_factory=set)


@dataclass
class Figures:
    """One window's counts, each by hospital."""

    metrics: dict[str, PerHospital] = field(default_factory=lambda: defaultdict(dict))
    reads: dict[str, KindRead] = field(default_factory=dict)

    def add(self, metric: str, hospital: str, amount: float) -> None:
        per = self.metrics[metric]
        per[hospital] = per.get(hospital, 0) + amount

    def get(self, metric: str) -> PerHospital:
        return self.metrics.get(metric, {})


@dataclass(frozen=True, slots=True)
class Roles:
    lead: str
    members: tuple[str, ...]  # every other hospital of the alliance in the year

    @property
    def everyone(self) -> tuple[str, ...]:
        return (self.lead, *self.members)


async def read(
    ctx: RequestContext, roles: Roles, window: Window, rules: AssessmentRules
) -> Figures:
    figures = Figures()
    codes = [c for c in roles.everyone if c in ctx.federation.members]
    instants = window.instants()
    asks: list[tuple[str, RecordKind[Any], ListQuery, tuple[str, ...], tuple[str, ...]]] = [
        (
            "referral",
            port.REFERRAL,
            ListQuery(parties=None, since=instants[0], until=instants[1]),
            ("from_hospital", "to_hospital", "status", "urgency", "green_channel"),
            (),
        ),
        (
            "consultation",
            port.CONSULTATION,
            ListQuery(parties=None, since=instants[0], until=instants[1]),
            ("kind", "status"),
            (),
        ),
        ("training", port.TRAINING_EVENT, _dates(window), ("kind", "mode"), ()),
        ("placement", port.PLACEMENT, _dates(window), ("host_hospital", "home_hospital"), ()),
        ("volume", port.SPECIALTY_VOLUME, _dates(window), ("hospital",), VOLUME_FIELDS),
        (
            "survey",
            port.SATISFACTION_SURVEY,
            _dates(window),
            ("hospital", "population"),
            ("respondents", "satisfied"),
        ),
        (
            "capacity",
            port.CAPACITY_ACTIVITY,
            _dates(window),
            ("kind", "helping_hospital", "helped_hospital"),
            ("people",),
        ),
    ]

    async def one(
        name: str,
        kind: RecordKind[Any],
        q: ListQuery,
        group: tuple[str, ...],
        sums: tuple[str, ...],
    ) -> tuple[str, dict[str, list[AggregateRow]]]:
        request = AggregateRequest(kind, q, group_by=group, sums=sums)
        answer = await fan_out(ctx.federation, codes, lambda _: request, ctx.sources)
        figures.reads[name] = KindRead(
            answered=set(answer.results),
            failed={e.member for e in answer.errors},
            not_serving={c for c in codes if not ctx.federation.members[c].serves(kind)},
        )
        return name, answer.results

    answers = dict(await asyncio.gather(*(one(*ask) for ask in asks)))
    _referrals(figures, roles, answers["referral"], rules)
    _consultations(figures, answers["consultation"])
    _training(figures, answers["training"])
    _placements(figures, roles, answers["placement"])
    _volumes(figures, answers["volume"])
    _surveys(figures, answers["survey"])
    _capacity(figures, roles, answers["capacity"])
    return figures


def _dates(window: Window) -> ListQuery:
    return ListQuery(parties=None, since=window.since, until=window.until)


def _referrals(
    f: Figures, roles: Roles, answers: dict[str, list[AggregateRow]], rules: AssessmentRules
) -> None:
    members = set(roles.members)
    critical = set(rules.complex_critical_urgencies)
    for rows in answers.values():
        for row in rows:
            sender, receiver, status, urgency, green = row.group
            if status in _NOT_REFERRED:
                continue
            # Up and down by role in the alliance (seed 001 #16, #17), whatever the grades.
            if sender in members and receiver == roles.lead:
                if not critical or green or urgency in critical:
                    f.add("up_referrals", sender, row.count)
            elif sender == roles.lead and receiver in members:
                f.add("down_referrals", receiver, row.count)


def _consultations(f: Figures, answers: dict[str, list[AggregateRow]]) -> None:
    for holder, rows in answers.items():
        for row in rows:
            kind, status = row.group
            if kind != "ON_SITE" and status in _CARRIED_OUT:
                f.add("remote_consultations", holder, row.count)


def _training(f: Figures, answers: dict[str, list[AggregateRow]]) -> None:
    for host, rows in answers.items():
        for row in rows:
            kind, mode = row.group
            if kind == "REMOTE_TEACHING" or (mode == "ONLINE" and kind in _TEACHING):
                f.add("remote_teaching", host, row.count)


def _placements(f: Figures, roles: Roles, answers: dict[str, list[AggregateRow]]) -> None:
    members = set(roles.members)
    for rows in answers.values():
        for row in rows:
            host, home = row.group
            if host == roles.lead and home in members:
                f.add("placements_at_lead", home, row.count)


def _volumes(f: Figures, answers: dict[str, list[AggregateRow]]) -> None:
    for rows in answers.values():
        for row in rows:
            (hospital,) = row.group
            for name, amount in zip(VOLUME_FIELDS, row.sums, strict=True):
                f.add(name, hospital, amount)


def _surveys(f: Figures, answers: dict[str, list[AggregateRow]]) -> None:
    for rows in answers.values():
        for row in rows:
            hospital, population = row.group
            respondents, satisfied = row.sums
            f.add(f"{population.lower()}_respondents", hospital, respondents)
            f.add(f"{population.lower()}_satisfied", hospital, satisfied)


def _capacity(f: Figures, roles: Roles, answers: dict[str, list[AggregateRow]]) -> None:
    members = set(roles.members)
    for rows in answers.values():
        for row in rows:
            kind, helping, helped = row.group
            if helping != roles.lead or helped not in members:
                continue
            if kind == "DISPATCH":
                f.add("dispatched", helped, row.sums[0])
            elif kind == "NEW_TECHNIQUE":
                f.add("new_techniques", helped, row.count)
