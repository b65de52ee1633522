"""The demo alliance's filing (备案): its whole history, from the draft to FILED under the number the
demo alliance carries, taken through the workflow's own steps at the dates they happened."""

from __future__ import annotations

from datetime import datetime, time, timedelta

from adapters.registry.filings import FilingStore
from adapters.registry.store import RegistryStore
from gateway.demo import data as demo_data
from resolvers import clock, filing
from resolvers.principal import Role
from resolvers.rules import AllianceRules

# As the demo's tokens name their subjects (gateway/demo/provision.py).
_OFFICE = f"demo-secretariat-{demo_data.LEAD.lower()}"
_LEAD_ADMIN = f"demo-member_admin-{demo_data.LEAD.lower()}"
_REGULATOR = "demo-regulator-alliance"


def _at(day_offset: int, founded: datetime) -> datetime:
    return founded + timedelta(days=day_offset)


async def seed_filing(store: RegistryStore) -> bool:
    """Seed the filing history once; False when the alliance already has one (a re-run)."""
    async with store.transaction() as tx:
        filings = FilingStore(tx)
        await filings.lock(demo_data.ALLIANCE_ID)
        if await filings.latest(demo_data.ALLIANCE_ID) is not None:
            return False
        alliance = await tx.alliance(demo_data.ALLIANCE_ID)
        if alliance is None:
            return False
        founded = datetime.combine(alliance.founded_on, time(9, 30), clock.CHINA_STANDARD_TIME)
        drafted = _at(20, founded)
        form = await filing.snapshot(
            tx,
            alliance,
            filing.FilingDraft(
                department_head="郭晓峰",
                # 河南省洛阳正骨医院 answers to the provincial commission (委直委管): no city opinion.
                lead_hospital_affiliation=filing.LeadHospitalAffiliation.PROVINCIAL,
                discipline_building="骨伤科为国家临床重点专科、国家中医药管理局重点学科，开放床位逾千张，"
                "拥有正骨手法、创伤骨科、脊柱、关节、骨病等亚专业团队及省级骨伤质控中心。",
            ),
            AllianceRules(),
            drafted.date(),
        )
        application = await filing.start(
            filings, alliance, form, _OFFICE, Role.SECRETARIAT, drafted
        )
        for day, step, role, subject, hospital, text in (
            (
                27,
                filing.FilingStep.LEAD_HOSPITAL_OPINION,
                Role.MEMBER_ADMIN,
                _LEAD_ADMIN,
                demo_data.LEAD,
                "同意骨伤科牵头组建专科联盟，医院在人员、经费、信息化方面给予支持。",
            ),
            (
                61,
                filing.FilingStep.ASSESSMENT_OPINION,
                Role.REGULATOR,
                _REGULATOR,
                None,
                "牵头学科实力居全省前列，成员单位覆盖漯河市各级医院，组建必要、可行，建议予以备案。",
            ),
        ):
            application = await filing.take_opinion(
                filings,
                alliance,
                application,
                filing.Opinion(step=step, text=text),
                role=role,
                subject=subject,
                hospital_code=hospital,
                at=_at(day, founded),
            )
        await filing.conclude(
            filings,
            alliance,
            application,
            filed=True,
            reason="同意备案。",
            subject=_REGULATOR,
            role=Role.REGULATOR,
            at=_at(90, founded),
            number=alliance.filing_number,
        )
        return True
