"""The demo hospitals' figures for the exchange contract's part 2: monthly specialty volumes,
quarterly satisfaction surveys and capacity-building activities (帮扶), from January two years ago
to the last complete month (activities: to yesterday).

The figures follow what the alliance is meant to achieve, so that the assessment's trend
indicators have something to show: the members' volumes, bed occupancy, grade 3/4 operations and
complex cases rise; the lead's average length of stay falls; capacity building grows year on year.
Each hospital's figures come from a `random.Random` of its own, so they do not depend on (or
disturb) the rest of its synthetic activity. Totals and counts only: nothing names a patient."""

from __future__ import annotations

import calendar
import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from typing import Any

from gateway.demo import data as demo_data
from resolvers import clock

Rows = list[dict[str, Any]]

CST = timezone(timedelta(hours=8))
TABLES = ("specialty_volume", "satisfaction_survey", "capacity_activity")

_BEDS = {h.code: h.specialty_beds for h in demo_data.HOSPITALS}
_BEDS_BY_GRADE = {"GRADE_3A": 300, "GRADE_3B": 150, "GRADE_2A": 60, "GRADE_2B": 40}
_SHORT = {h.code: h.name.split("（", 1)[0] for h in demo_data.HOSPITALS}

# Spring Festival empties wards in February; winter falls fill them.
_SEASON = (1.06, 0.84, 1.0, 0.98, 1.0, 0.97, 1.02, 1.03, 0.99, 1.0, 1.04, 1.08)


@dataclass(frozen=True)
class _Profile:
    """A hospital's specialty by its place in the alliance: each pair is (first month, last
    month) of a figure that moves linearly across the period."""

    occupancy: tuple[float, float]
    stay_days: tuple[float, float]
    visits_per_bed: tuple[float, float]
    operated: tuple[float, float]  # share of discharges
    grade34: tuple[float, float]  # share of operations
    complex: tuple[float, float]  # share of discharges
    visit_fen: tuple[float, float]
    stay_fen: tuple[float, float]
    beds_growth: float  # open beds at the end over those at the start


_PROFILES = {
    "LEAD": _Profile(
        (0.97, 0.95),
        (11.6, 9.4),
        (16.0, 17.5),
        (0.64, 0.68),
        (0.72, 0.76),
        (0.15, 0.17),
        (31_000, 32_000),
        (2_050_000, 1_950_000),
        1.0,
    ),
    "BACKBONE": _Profile(
        (0.84, 0.90),
        (10.2, 9.3),
        (13.0, 15.0),
        (0.52, 0.58),
        (0.48, 0.56),
        (0.08, 0.11),
        (23_000, 24_000),
        (1_350_000, 1_380_000),
        1.05,
    ),
    "MEMBER": _Profile(
        (0.62, 0.81),
        (9.6, 9.0),
        (10.5, 14.5),
        (0.34, 0.46),
        (0.20, 0.34),
        (0.03, 0.07),
        (17_500, 18_500),
        (880_000, 940_000),
        1.12,
    ),
}


def _along(pair: tuple[float, float], t: float) -> float:
    return pair[0] + (pair[1] - pair[0]) * t


def months(today: date) -> list[date]:
    """First days of the months with figures: January two years ago to last month."""
    first, last = date(today.year - 2, 1, 1), clock.add_months(today.replace(day=1), -1)
    out: list[date] = []
    while first <= last:
        out.append(first)
        first = clock.add_months(first, 1)
    return out


def _volumes(code: str, grade: str, role: str, rng: random.Random, today: date) -> Rows:
    profile = _PROFILES.get(role, _PROFILES["MEMBER"])
    beds = _BEDS.get(code) or _BEDS_BY_GRADE.get(grade, 30)
    span = months(today)
    rows: Rows = []
    for i, month in enumerate(span):
        t = i / max(1, len(span) - 1)
        days = calendar.monthrange(month.year, month.month)[1]
        season = _SEASON[month.month - 1]
        noise = rng.uniform(0.96, 1.04)
        open_bed_days = round(beds * (1 + (profile.beds_growth - 1) * t)) * days
        # Beds added in corridors (加床) can take occupancy a little past 100 %.
        occupied = min(
            round(open_bed_days * _along(profile.occupancy, t) * season * noise),
            round(open_bed_days * 1.08),
        )
        stay = _along(profile.stay_days, t) * rng.uniform(0.97, 1.03)
        discharges = round(occupied / stay)
        operations = round(discharges * _along(profile.operated, t) * rng.uniform(0.95, 1.05))
        visits = round(beds * _along(profile.visits_per_bed, t) * season * rng.uniform(0.95, 1.05))
        rows.append(
            {
                "hospital": code,
                "month": month,
                "outpatient_visits": visits,
                "admissions": round(discharges * rng.uniform(0.98, 1.04)),
                "discharges": discharges,
                "discharged_bed_days": round(discharges * stay * rng.uniform(0.98, 1.02)),
                "occupied_bed_days": occupied,
                "open_bed_days": open_bed_days,
                "operations": operations,
                "grade34_operations": round(
                    operations * _along(profile.grade34, t) * rng.uniform(0.95, 1.05)
                ),
                "complex_critical_cases": round(
                    discharges * _along(profile.complex, t) * rng.uniform(0.9, 1.1)
                ),
                "outpatient_cost_fen": round(
                    visits * _along(profile.visit_fen, t) * rng.uniform(0.97, 1.03)
                ),
                "inpatient_cost_fen": round(
                    discharges * _along(profile.stay_fen, t) * rng.uniform(0.97, 1.03)
                ),
            }
        )
    return rows


# The share satisfied, by population: (first quarter, last quarter).
_SATISFIED = {
    "OUTPATIENT": (0.85, 0.92),
    "INPATIENT": (0.90, 0.96),
    "STAFF": (0.70, 0.85),
}


def _surveys(code: str, rng: random.Random, today: date) -> Rows:
    """One survey per population in the last month of every complete quarter."""
    quarters = [m for m in months(today) if m.month % 3 == 0]
    rows: Rows = []
    for i, month in enumerate(quarters):
        t = i / max(1, len(quarters) - 1)
        for population, (low, high) in _SATISFIED.items():
            respondents = rng.randint(50, 300) if population != "STAFF" else rng.randint(50, 120)
            share = min(high, max(low, _along((low, high), t) + rng.uniform(-0.02, 0.02)))
            rows.append(
                {
                    "hospital": code,
                    "month": month,
                    "population": population,
                    "respondents": respondents,
                    "satisfied": round(respondents * share),
                }
            )
    return rows


_TECHNIQUES = (
    "经皮椎体成形术（PVP）",
    "关节镜下膝关节半月板修复术",
    "微创经皮椎弓根螺钉内固定术",
    "人工全髋关节置换术",
    "人工全膝关节置换术",
    "股骨近端防旋髓内钉（PFNA）内固定术",
    "单侧双通道脊柱内镜（UBE）技术",
    "中医手法整复小夹板外固定",
    "骨质疏松性骨折联络服务（FLS）",
    "加速康复外科（ERAS）骨科路径",
    "超声引导下神经阻滞麻醉",
    "胸腰椎骨折后路短节段固定术",
)
_MENTORING = (
    "创伤骨科手术技能",
    "脊柱外科基本技能",
    "关节外科围手术期管理",
    "骨伤科中医手法复位",
    "骨科护理与康复",
    "骨科影像阅片",
)
_DISPATCHED = (
    "骨科主任医师",
    "脊柱外科副主任医师",
    "创伤骨科主治医师",
    "关节外科主治医师",
    "骨科护士长",
)

# Per helped hospital and year: (kind, fewest, most), by who helps whom.
_PLAN = {
    ("LEAD", "MEMBER"): (
        ("DISPATCH", 1, 2),
        ("MENTORING", 1, 2),
        ("NEW_TECHNIQUE", 1, 2),
        ("ON_SITE_TOUR", 3, 6),
    ),
    ("LEAD", "BACKBONE"): (("NEW_TECHNIQUE", 0, 1), ("ON_SITE_TOUR", 0, 2)),
    ("BACKBONE", "MEMBER"): (("MENTORING", 0, 1), ("ON_SITE_TOUR", 1, 3)),
}
# Capacity building grows as the alliance matures: by year, the oldest first.
_GROWTH = (1.0, 1.4, 1.8)


def _title(kind: str, helping: str, helped: str, rng: random.Random, start: date) -> str:
    there = _SHORT.get(helped, helped)
    if kind == "DISPATCH":
        return f"派驻{rng.choice(_DISPATCHED)}下沉{there}骨伤科"
    if kind == "MENTORING":
        return f"一对一带教：{rng.choice(_MENTORING)}"
    if kind == "NEW_TECHNIQUE":
        return f"{there}开展新技术：{rng.choice(_TECHNIQUES)}"
    return f"{_SHORT.get(helping, helping)}专家团队{start.month}月赴{there}巡诊及教学查房"


def _ended(kind: str, start: date, rng: random.Random) -> date:
    if kind == "DISPATCH":
        return clock.add_months(start, rng.choice((3, 6, 12))) - timedelta(days=1)
    if kind == "MENTORING":
        return clock.add_months(start, rng.randint(3, 6)) - timedelta(days=1)
    if kind == "NEW_TECHNIQUE":
        return start + timedelta(days=rng.randint(30, 90))
    return start + timedelta(days=rng.randint(0, 1))


_PEOPLE = {"DISPATCH": (1, 3), "MENTORING": (1, 2), "NEW_TECHNIQUE": (2, 5), "ON_SITE_TOUR": (3, 8)}


def _activities(
    code: str,
    role: str,
    hospitals: Sequence[tuple[str, str]],
    joined: dict[str, date],
    rng: random.Random,
    today: date,
) -> Rows:
    """What `code` gives the others, recorded at `code`: nothing for a member."""
    yesterday = today - timedelta(days=1)
    rows: Rows = []
    for helped, helped_role in hospitals:
        plan = _PLAN.get((role, helped_role), ())
        for y, year in enumerate(range(today.year - 2, today.year + 1)):
            first = max(date(year, 1, 1), joined.get(helped, date.min), joined.get(code, date.min))
            last = min(date(year, 12, 31), yesterday)
            if first > last:
                continue
            share = ((last - first).days + 1) / 365
            for kind, low, high in plan:
                count = round(rng.randint(low, high) * _GROWTH[y] * share + rng.random() - 0.5)
                for _ in range(max(0, count)):
                    start = first + timedelta(days=rng.randint(0, (last - first).days))
                    ended: date | None = _ended(kind, start, rng)
                    if ended is not None and ended > yesterday:
                        ended = None  # still going on: nothing is dated in the future
                    created = datetime.combine(
                        start - timedelta(days=rng.randint(3, 20)), time(rng.randint(8, 17)), CST
                    )
                    rows.append(
                        {
                            "kind": kind,
                            "helping_hospital": code,
                            "helped_hospital": helped,
                            "title": _title(kind, code, helped, rng, start),
                            "started_on": start,
                            "ended_on": ended,
                            "people": rng.randint(*_PEOPLE[kind]),
                            "created_by": f"{code.lower()}-office",
                            "created_at": created,
                            "updated_at": (
                                datetime.combine(ended, time(17), CST) if ended else created
                            ),
                            "version": 2 if ended else 1,
                        }
                    )
    rows.sort(key=lambda r: (r["started_on"], r["created_at"], r["helped_hospital"]))
    return rows


def figures_rows(
    code: str, grade: str, role: str, hospitals: Sequence[tuple[str, str]], today: date
) -> dict[str, Rows]:
    """Part 2 of the exchange contract at hospital `code` (of `grade` and alliance `role`), among
    `hospitals` (code, role), as rows per table with explicit ids from 1. Pure."""
    rng = random.Random(f"figures/{code}/{today.isoformat()}")
    joined = {
        m.code: today - timedelta(days=m.joined_days_ago) for m in demo_data.demo_members(today)
    }
    others = [(c, r) for c, r in hospitals if c != code]
    out = {
        "specialty_volume": _volumes(code, grade, role, rng, today),
        "satisfaction_survey": _surveys(code, rng, today),
        "capacity_activity": _activities(code, role, others, joined, rng, today),
    }
    for rows in out.values():
        for i, row in enumerate(rows, start=1):
            row["id"] = i
    return out
