"""Per-request DataLoaders over the registry: one round trip per kind of lookup, whatever the page."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import TypeVar

from aiodataloader import DataLoader

from adapters.registry.records import AgreementRecord, HospitalRecord, MembershipRecord
from adapters.registry.store import RegistryStore

K = TypeVar("K")
V = TypeVar("V")


def _in_key_order(keys: Sequence[K], rows: Iterable[V], key_of: Callable[[V], K]) -> list[V | None]:
    by_key = {key_of(r): r for r in rows}
    return [by_key.get(k) for k in keys]


class RegistryLoaders:
    def __init__(self, store: RegistryStore, alliance_id: str) -> None:
        self._store = store
        self._alliance_id = alliance_id
        self.hospital: DataLoader[str, HospitalRecord | None] = DataLoader(self._hospitals)
        self.membership: DataLoader[str, MembershipRecord | None] = DataLoader(self._memberships)
        self.latest_agreement: DataLoader[str, AgreementRecord | None] = DataLoader(
            self._latest_agreements
        )
        # Each member's agreements, newest first: one query for a page's members.
        self.agreements: DataLoader[str, list[AgreementRecord]] = DataLoader(self._agreements)
        # Hospitals fetched ahead for a whole page: read without a DataLoader round per field.
        self.known_hospitals: dict[str, HospitalRecord] = {}

    async def prefetch_hospitals(self, codes: set[str]) -> None:
        missing = sorted(codes - self.known_hospitals.keys())
        if missing:
            for record in await self._store.hospitals_named(missing):
                self.known_hospitals[record.code] = record

    async def _hospitals(self, codes: Sequence[str]) -> list[HospitalRecord | None]:
        return _in_key_order(codes, await self._store.hospitals(codes), lambda h: h.code)

    async def _memberships(self, codes: Sequence[str]) -> list[MembershipRecord | None]:
        rows = await self._store.memberships(self._alliance_id, codes)
        return _in_key_order(codes, rows, lambda m: m.hospital_code)

    async def _latest_agreements(self, codes: Sequence[str]) -> list[AgreementRecord | None]:
        rows = await self._store.latest_agreements(self._alliance_id, codes)
        return _in_key_order(codes, rows, lambda a: a.party_b_code)

    async def _agreements(self, codes: Sequence[str]) -> list[list[AgreementRecord]]:
        by_member: dict[str, list[AgreementRecord]] = {code: [] for code in codes}
        for agreement in await self._store.agreements_of_members(self._alliance_id, codes):
            by_member[agreement.party_b_code].append(agreement)
        return [by_member[code] for code in codes]
