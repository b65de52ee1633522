"""DataLoaders over the members' sources: lookups keyed by (member, key) are grouped per member
and sent as one query to each member involved, concurrently, under that member's guard."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Sequence
from typing import Generic, TypeVar

from aiodataloader import DataLoader

from adapters import observe
from adapters.sources import port
from adapters.sources.errors import SourceError
from adapters.sources.port import LookupRequest, RecordKind
from adapters.sources.records import (
    ConsultationRow,
    ParticipationRow,
    PlacementRow,
    QualityControlRow,
    ReferralRow,
    ReportRow,
    ResultRow,
    TrainingEventRow,
)
from resolvers.federation import Federation, SourceReport, on_member

V = TypeVar("V")


class MemberLoader(DataLoader[tuple[str, str], list[V]], Generic[V]):
    """Loads every record per (member, value of `field`); a failing member yields [] and is
    reported once, and a member whose source does not hold the kind yields []."""

    def __init__(
        self, federation: Federation, report: SourceReport, kind: RecordKind[V], field: str = "id"
    ) -> None:
        super().__init__()
        self._federation = federation
        self._report = report
        self._kind = kind
        self._field = field

    async def batch_load_fn(self, keys: Sequence[tuple[str, str]]) -> list[list[V]]:
        wanted: dict[str, list[str]] = defaultdict(list)
        for member, key in keys:
            if key not in wanted[member]:
                wanted[member].append(key)

        async def one(member: str) -> tuple[str, list[V]]:
            source = self._federation.members.get(member)
            if source is None or not source.serves(self._kind):
                return member, []
            request = LookupRequest(self._kind, tuple(wanted[member]), self._field)
            try:
                rows = await on_member(self._federation, member, request, self._report)
            except SourceError as e:
                # The rows are missing from the answer; `errors` says which member and why.
                self._report.failures.append(e)
                rows = []
            return member, rows

        found: dict[tuple[str, str], list[V]] = defaultdict(list)
        token = observe.via_dataloader()
        try:
            answers = await asyncio.gather(*(one(m) for m in wanted))
        finally:
            observe.reset_via(token)
        for member, rows in answers:
            for row in rows:
                found[(member, getattr(row, self._field))].append(row)
        return [found.get(k, []) for k in keys]


class MemberLoaders:
    def __init__(self, federation: Federation, report: SourceReport) -> None:
        def loader(kind: RecordKind[V], field: str = "id") -> MemberLoader[V]:
            return MemberLoader(federation, report, kind, field)

        self.referral: MemberLoader[ReferralRow] = loader(port.REFERRAL)
        self.consultation: MemberLoader[ConsultationRow] = loader(port.CONSULTATION)
        self.report: MemberLoader[ReportRow] = loader(port.CONSULTATION_REPORT, "consultation_id")
        self.training_event: MemberLoader[TrainingEventRow] = loader(port.TRAINING_EVENT)
        self.placement: MemberLoader[PlacementRow] = loader(port.PLACEMENT)
        self.participation: MemberLoader[ParticipationRow] = loader(
            port.TRAINING_PARTICIPATION, "event_id"
        )
        self.result: MemberLoader[ResultRow] = loader(port.TEST_RESULT)
        self.quality_control: MemberLoader[QualityControlRow] = loader(
            port.QUALITY_CONTROL, "loinc"
        )
