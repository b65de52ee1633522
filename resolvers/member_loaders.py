"""DataLoaders over the members' sources: lookups keyed by (member, key) are grouped per member
and sent as one query to each member involved, concurrently, under that member's guard."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Awaitable, Callable, Hashable, Sequence
from typing import Generic, TypeVar

from aiodataloader import DataLoader

from adapters import observe
from adapters.exchange.postgres import ExchangeDatabase
from adapters.exchange.records import (
    ConsultationRow,
    ParticipationRow,
    PlacementRow,
    QualityControlRow,
    ReferralRow,
    ReportRow,
    ResultRow,
    TrainingEventRow,
)
from adapters.resilience import SourceError
from resolvers.federation import Federation, SourceReport, on_member

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

Fetch = Callable[[ExchangeDatabase, list[K]], Awaitable[list[V]]]


class MemberLoader(DataLoader[tuple[str, K], list[V]], Generic[K, V]):
    """Loads every row per (member, key); a failing member yields [] and is reported once."""

    def __init__(
        self,
        federation: Federation,
        report: SourceReport,
        fetch: Fetch[K, V],
        key_of: Callable[[V], K],
    ) -> None:
        super().__init__()
        self._federation = federation
        self._report = report
        self._fetch = fetch
        self._key_of = key_of

    async def batch_load_fn(self, keys: Sequence[tuple[str, K]]) -> list[list[V]]:
        wanted: dict[str, list[K]] = defaultdict(list)
        for member, key in keys:
            if key not in wanted[member]:
                wanted[member].append(key)

        async def one(member: str) -> tuple[str, list[V]]:
            try:
                rows = await on_member(
                    self._federation, member, lambda s: self._fetch(s, wanted[member]), self._report
                )
            except SourceError as e:
                # The rows are missing from the answer; `errors` says which member and why.
                self._report.failures.append(e)
                rows = []
            return member, rows

        found: dict[tuple[str, K], list[V]] = defaultdict(list)
        token = observe.via_dataloader()
        try:
            answers = await asyncio.gather(*(one(m) for m in wanted))
        finally:
            observe.reset_via(token)
        for member, rows in answers:
            for row in rows:
                found[(member, self._key_of(row))].append(row)
        return [found.get(k, []) for k in keys]


class MemberLoaders:
    def __init__(self, federation: Federation, report: SourceReport) -> None:
        def loader(fetch: Fetch[K, V], key_of: Callable[[V], K]) -> MemberLoader[K, V]:
            return MemberLoader(federation, report, fetch, key_of)

        self.referral: MemberLoader[int, ReferralRow] = loader(
            lambda s, ids: s.referrals_by_id(ids), lambda r: r.id
        )
        self.consultation: MemberLoader[int, ConsultationRow] = loader(
            lambda s, ids: s.consultations_by_id(ids), lambda r: r.id
        )
        self.report: MemberLoader[int, ReportRow] = loader(
            lambda s, ids: s.reports(ids), lambda r: r.consultation_id
        )
        self.training_event: MemberLoader[int, TrainingEventRow] = loader(
            lambda s, ids: s.training_events_by_id(ids), lambda r: r.id
        )
        self.placement: MemberLoader[int, PlacementRow] = loader(
            lambda s, ids: s.placements_by_id(ids), lambda r: r.id
        )
        self.participation: MemberLoader[int, ParticipationRow] = loader(
            lambda s, ids: s.participation(ids), lambda r: r.event_id
        )
        self.result: MemberLoader[int, ResultRow] = loader(
            lambda s, ids: s.results_by_id(ids), lambda r: r.id
        )
        self.quality_control: MemberLoader[str, QualityControlRow] = loader(
            lambda s, loincs: s.quality_control(loincs), lambda r: r.loinc
        )
