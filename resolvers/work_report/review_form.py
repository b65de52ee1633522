"""What seed 003 Annex 1 (专科联盟审核评估表) asks for a year: the registry's facts about the alliance
(name, lead department and hospital, founding, charter, agreements, council, the members that
signed) and the year's counts from the members' sources. The rest of the form is written by hand."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import date

from resolvers import registry
from resolvers.access import OFFICE_ROLES
from resolvers.authorization import require_role
from resolvers.context import RequestContext
from resolvers.principal import Role
from resolvers.work_report.counts import Tally, tally
from resolvers.work_report.periods import calendar_year

LEAD = "LEAD"


@dataclass(frozen=True, slots=True)
class ReviewForm:
    year: int
    alliance_name: str
    lead_department: str
    lead_hospital: str
    founded_on: date
    has_charter: bool
    has_agreements: bool
    has_council: bool
    members: list[tuple[str, str]]  # (code, name) of the members that signed an agreement
    hospital_names: dict[str, str]
    tally: Tally


async def review_form(ctx: RequestContext, year: int) -> ReviewForm:
    require_role(ctx.who, *OFFICE_ROLES, Role.REGULATOR, action="read the alliance's review form")
    period = calendar_year(year)
    alliance = await registry.alliance(ctx)
    counts, seats, members = await asyncio.gather(
        tally(ctx, period),
        registry.council(ctx),
        registry.members_page(ctx, ["ACTIVE"], None, 100, None),
    )
    listed = [m for _, m in members.items]
    codes = list(
        dict.fromkeys(
            [
                alliance.lead_hospital_code,
                *(m.hospital_code for m in listed),
                *(m.hospital for m in counts.members),
            ]
        )
    )
    # Together, so that the loaders fetch each kind in one registry round trip.
    records, agreements = await asyncio.gather(
        asyncio.gather(*(registry.hospital(ctx, code) for code in codes)),
        asyncio.gather(*(registry.latest_agreement(ctx, m.hospital_code) for m in listed)),
    )
    names = {r.code: r.name for r in records if r is not None}
    signed = [
        (m.hospital_code, names.get(m.hospital_code, m.hospital_code))
        for m, agreement in zip(listed, agreements, strict=True)
        if m.role != LEAD and agreement is not None
    ]
    return ReviewForm(
        year=year,
        alliance_name=alliance.name,
        lead_department=alliance.lead_department,
        lead_hospital=names.get(alliance.lead_hospital_code, alliance.lead_hospital_code),
        founded_on=alliance.founded_on,
        has_charter=bool(alliance.charter_version.strip()),
        has_agreements=bool(signed),
        has_council=bool(seats),
        members=signed,
        hospital_names=names,
        tally=counts,
    )
