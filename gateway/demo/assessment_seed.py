"""The demo's annual assessments: last year's scored by the provincial office's panel and
concluded from the members' live data (the standing follows), this year's in progress with a few
qualitative indicators scored and some QC centre results entered. Idempotent: a concluded year is
left alone, and this year's entries are made once."""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

from adapters.registry.assessments import AssessmentStore
from gateway.app import offline_context
from gateway.settings import load_settings
from resolvers import clock
from resolvers.assessment import conclusion, entries, service
from resolvers.assessment.indicators import CATALOGUE, Kind
from resolvers.assessment.model import Evidence, Status
from resolvers.context import RequestContext
from resolvers.errors import GatewayError
from resolvers.principal import Principal, Role

log = logging.getLogger(__name__)

PANEL = ("王雷琛（省专科联盟管理办公室）", "余晴（省骨科质控中心）")
# Last year's panel scores, as shares of each A indicator's points; this year's first few.
LAST_YEAR_SHARE = 0.9
THIS_YEAR = (1, 6, 8, 11)


def _evidence(title: str, where: str) -> tuple[Evidence, ...]:
    digest = hashlib.sha256(f"{title}|{where}".encode()).hexdigest()
    return (Evidence(title, where, f"sha256:{digest}"),)


async def _score_all(
    ctx: RequestContext, year: int, numbers: tuple[int, ...], share: float
) -> None:
    for i, indicator in enumerate(i for i in CATALOGUE if i.number in numbers):
        await entries.score_indicator(
            ctx,
            entries.NewScore(
                year=year,
                number=indicator.number,
                score=round(indicator.points * share * 2) / 2,
                comment=f"{year} 年度：查阅{indicator.method}，符合要求。",
                assessor=PANEL[i % len(PANEL)],
                evidence=_evidence(
                    f"{year} 年度考核佐证：指标 {indicator.number}",
                    f"联盟秘书处档案室 {year}-KH-{indicator.number:02d}",
                ),
            ),
        )


async def _quality_control(
    ctx: RequestContext, year: int, members: tuple[str, ...], every: bool
) -> None:
    for n, code in enumerate(members):
        if not every and n % 2:
            continue
        await entries.record_quality_control(
            ctx,
            entries.NewQualityControlResult(
                year=year,
                hospital=code,
                passed=True,
                qc_score=88.0 - n,
                comment="省骨科专业质控中心年度考核：合格",
                evidence=_evidence(f"{year} 年度质控考核结果 {code}", "省骨科质控中心通报"),
            ),
        )


async def seed_assessments(config: Path) -> None:
    settings = load_settings(config, events={"watch": False})
    regulator = Principal("demo-regulator", None, frozenset({Role.REGULATOR}), None)
    async with offline_context(settings, regulator) as ctx:
        store = AssessmentStore(ctx.registry, ctx.alliance_id)
        this_year = clock.today().year
        last_year = this_year - 1
        record = await store.get(last_year)
        if record is None or record.status != Status.CONCLUDED:
            roles = await service.roles_of(ctx, last_year)
            numbers = tuple(i.number for i in CATALOGUE if i.kind is Kind.A)
            await _score_all(ctx, last_year, numbers, LAST_YEAR_SHARE)
            await _quality_control(ctx, last_year, roles.members, every=True)
            try:
                done = await conclusion.conclude(ctx, last_year)
                log.info("demo assessment %s concluded: %s", last_year, done.total_score)
            except GatewayError as e:
                log.warning("demo assessment %s not concluded: %s", last_year, e.message)
        if not await store.scores(this_year):
            roles = await service.roles_of(ctx, this_year)
            await _score_all(ctx, this_year, THIS_YEAR, 0.8)
            await _quality_control(ctx, this_year, roles.members, every=False)
