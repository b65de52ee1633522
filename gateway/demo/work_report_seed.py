"""The demo's two submitted semi-annual work reports (the last two half years that have ended),
counted from the demo hospitals' sources when the demo is prepared, through the same resolver that
submits them, and dated a few days before their deadline. A report already there is left alone."""

from __future__ import annotations

import logging
from datetime import datetime, time, timedelta
from pathlib import Path

from adapters.registry.work_reports import WorkReportStore
from gateway.app import offline_context
from gateway.settings import load_settings
from resolvers import clock
from resolvers.principal import Principal, Role
from resolvers.work_report.counts import tally
from resolvers.work_report.periods import HalfYear
from resolvers.work_report.report import record_submission

log = logging.getLogger(__name__)

SUBMITTED_BY = "demo-secretariat"
NARRATIVE = (
    "本半年度联盟围绕分级诊疗与能力提升开展工作：牵头医院专家赴成员单位巡诊、带教，"
    "开展远程会诊与远程教学，规范双向转诊，帮助成员单位开展新技术、新项目。"
)


def ended_halves(count: int) -> list[HalfYear]:
    """The last `count` half years that have ended, oldest first."""
    period = HalfYear.containing(clock.today())
    found = []
    for _ in range(count):
        period = HalfYear(period.year - 1, 2) if period.half == 1 else HalfYear(period.year, 1)
        found.append(period)
    return found[::-1]


async def seed(config: Path) -> None:
    settings = load_settings(config)
    office = Principal(SUBMITTED_BY, None, frozenset({Role.SECRETARIAT}), None)
    async with offline_context(settings, office) as ctx:
        store = WorkReportStore(ctx.registry, ctx.alliance_id)
        for period in ended_halves(2):
            if await store.get(period.year, period.half) is not None:
                continue
            due = period.due_on(settings.rules.reporting.due_days_after_half)
            at = datetime.combine(due - timedelta(days=4), time(10), clock.CHINA_STANDARD_TIME)
            await store.save_narrative(period.year, period.half, NARRATIVE, SUBMITTED_BY, at)
            counts = await tally(ctx, period.period)
            await record_submission(ctx, period, counts, by=SUBMITTED_BY, at=at)
            log.info("demo work report %s submitted", period.label())
