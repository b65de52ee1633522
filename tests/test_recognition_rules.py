"""Pure recognition rules (检查检验结果互认): the reasons, their order, the level rules, decisions."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import pytest

from resolvers.errors import ErrorCode, GatewayError
from resolvers.recognition import (
    NATIONAL_DECLINE_REASONS,
    PROVINCIAL_DECLINE_REASONS,
    Decision,
    DeclineReason,
    Party,
    RecognitionReason,
    assess,
    check_decision,
    level_accepts,
    performed_on,
    quality_control_valid,
    retest_cost_avoided,
)
from resolvers.rules import RecognisedItem, RecognitionRules

POTASSIUM = RecognisedItem("2823-3", "钾", 7, "ALLIANCE", 600)
RULES = RecognitionRules(items=(POTASSIUM,))
PERFORMED = datetime(2026, 3, 10, 2, 30, tzinfo=UTC)  # 10:30 in China Standard Time
NOW = PERFORMED + timedelta(days=3)

LEAD = Party("LYZG", 3)  # 三级甲等
BACKBONE = Party("LHGK", 3)  # 三级乙等: the same level
COUNTY = Party("LHZY", 2)  # 二级甲等
COUNTY_2 = Party("LHRM6", 2)


@dataclass(frozen=True)
class QC:
    valid_from: date
    valid_until: date


VALID_QC = [QC(date(2025, 6, 1), date(2026, 5, 31))]


def _assess(
    item: RecognisedItem | None = POTASSIUM,
    qc: list[QC] = VALID_QC,
    *,
    reader: Party = COUNTY,
    performer: Party = LEAD,
    alliance_wide: bool = False,
    in_force: bool = True,
    now: datetime = NOW,
):
    return assess(
        item,
        qc,
        PERFORMED,
        reader=reader,
        performer=performer,
        alliance_wide=alliance_wide,
        in_force=in_force,
        now=now,
    )


def test_a_recognizable_result() -> None:
    a = _assess()
    assert a.recognizable and a.reason is None
    assert a.valid_until == PERFORMED + timedelta(days=7)
    assert a.hr_scope == "ALLIANCE"


def test_not_in_catalogue() -> None:
    a = _assess(RULES.item("11524-6"))  # an ECG: not in the catalogue
    assert not a.recognizable
    assert a.reason is RecognitionReason.NOT_IN_CATALOGUE
    assert a.valid_until is None and a.hr_scope is None
    assert RULES.item(None) is None


@pytest.mark.parametrize(
    "qc",
    [
        [],  # never took part
        [QC(date(2024, 6, 1), date(2025, 5, 31))],  # expired before the test
        [QC(date(2026, 3, 11), date(2027, 3, 10))],  # only valid from the next day
    ],
)
def test_quality_control_not_valid(qc: list[QC]) -> None:
    a = _assess(qc=qc)
    assert not a.recognizable
    assert a.reason is RecognitionReason.QUALITY_CONTROL_NOT_VALID
    assert a.hr_scope is None  # no HR label without valid quality control
    assert a.valid_until == PERFORMED + timedelta(days=7)


def test_quality_control_window_is_inclusive_and_uses_china_dates() -> None:
    day = date(2026, 3, 10)
    assert quality_control_valid([QC(day, day)], day)
    assert quality_control_valid([QC(date(2025, 1, 1), date(2025, 12, 31)), QC(day, day)], day)
    assert not quality_control_valid([QC(day + timedelta(days=1), date(2027, 1, 1))], day)
    # 17:30 UTC on 9 March is already 10 March in China.
    late = datetime(2026, 3, 9, 17, 30, tzinfo=UTC)
    assert performed_on(late) == day
    assert _assess(qc=[QC(day, day)]).recognizable


def test_outside_validity_window() -> None:
    just_inside = PERFORMED + timedelta(days=7)
    assert _assess(now=just_inside).recognizable
    a = _assess(now=just_inside + timedelta(seconds=1))
    assert not a.recognizable
    assert a.reason is RecognitionReason.OUTSIDE_VALIDITY_WINDOW
    assert a.hr_scope == "ALLIANCE"  # still an HR item, just too old


def test_level_rules() -> None:
    # The same level recognise each other (三甲 and 三乙 are both 三级).
    assert level_accepts(LEAD, BACKBONE, alliance_wide=False)
    assert level_accepts(BACKBONE, LEAD, alliance_wide=False)
    assert level_accepts(COUNTY, COUNTY_2, alliance_wide=False)
    # A lower level accepts a higher level's results.
    assert level_accepts(COUNTY, LEAD, alliance_wide=False)
    # A higher level accepts a lower level's only under full mutual recognition in the alliance.
    assert not level_accepts(LEAD, COUNTY, alliance_wide=False)
    assert level_accepts(LEAD, COUNTY, alliance_wide=True)
    # One's own results, always.
    assert level_accepts(Party("LHZY", 2), COUNTY, alliance_wide=False)


def test_level_not_accepted_and_alliance_wide() -> None:
    a = _assess(reader=LEAD, performer=COUNTY)
    assert not a.recognizable and a.reason is RecognitionReason.LEVEL_NOT_ACCEPTED
    assert a.hr_scope == "ALLIANCE"
    assert _assess(reader=LEAD, performer=COUNTY, alliance_wide=True).recognizable
    assert _assess(reader=COUNTY, performer=LEAD).recognizable
    assert _assess(reader=COUNTY, performer=COUNTY_2).recognizable


def test_own_results_are_recognizable_when_in_catalogue_qc_and_window() -> None:
    me = Party("LYZG", 3)
    assert _assess(reader=me, performer=me).recognizable
    assert _assess(None, reader=me, performer=me).reason is RecognitionReason.NOT_IN_CATALOGUE
    assert _assess(qc=[], reader=me, performer=me).reason is (
        RecognitionReason.QUALITY_CONTROL_NOT_VALID
    )
    too_late = NOW + timedelta(days=30)
    assert _assess(reader=me, performer=me, now=too_late).reason is (
        RecognitionReason.OUTSIDE_VALIDITY_WINDOW
    )


def test_the_first_failing_check_is_reported() -> None:
    too_late = NOW + timedelta(days=30)
    # Everything fails: the catalogue comes first.
    assert (
        _assess(None, [], reader=LEAD, performer=COUNTY, now=too_late).reason
        is RecognitionReason.NOT_IN_CATALOGUE
    )
    # No agreement in force, and all that follows fails: the agreement first.
    assert (
        _assess(qc=[], reader=LEAD, performer=COUNTY, now=too_late, in_force=False).reason
        is RecognitionReason.NO_AGREEMENT_IN_FORCE
    )
    # Quality control, window and level fail: quality control first.
    assert (
        _assess(qc=[], reader=LEAD, performer=COUNTY, now=too_late).reason
        is RecognitionReason.QUALITY_CONTROL_NOT_VALID
    )
    # Window and level fail: the window first.
    assert (
        _assess(reader=LEAD, performer=COUNTY, now=too_late).reason
        is RecognitionReason.OUTSIDE_VALIDITY_WINDOW
    )


def test_decline_reasons_national_and_provincial() -> None:
    assert len(NATIONAL_DECLINE_REASONS) == 6
    assert PROVINCIAL_DECLINE_REASONS == {
        DeclineReason.PATIENT_REQUEST,
        DeclineReason.LAB_FAILED_EQA,
        DeclineReason.INTERVAL_TOO_LONG,
    }


@pytest.mark.parametrize(
    ("decision", "reason", "note", "field"),
    [
        (Decision.DECLINED, None, "复查", "reason"),
        (Decision.DECLINED, DeclineReason.OTHER, None, "note"),
        (Decision.DECLINED, DeclineReason.OTHER, "   ", "note"),
        (Decision.RECOGNIZED, DeclineReason.EMERGENCY, None, "reason"),
        (Decision.RECOGNIZED, None, "x" * 1001, "note"),
    ],
)
def test_incomplete_decisions_are_bad_input(
    decision: Decision, reason: DeclineReason | None, note: str | None, field: str
) -> None:
    with pytest.raises(GatewayError) as refused:
        check_decision(decision, reason, note)
    assert refused.value.code is ErrorCode.BAD_USER_INPUT
    assert refused.value.extensions["field"] == field


def test_complete_decisions() -> None:
    assert check_decision(Decision.RECOGNIZED, None, None) is None
    assert check_decision(Decision.RECOGNIZED, None, "  ok ") == "ok"
    assert check_decision(Decision.DECLINED, DeclineReason.CONDITION_CHANGED, None) is None
    assert check_decision(Decision.DECLINED, DeclineReason.OTHER, " 术前复查 ") == "术前复查"


def test_retest_cost_avoided() -> None:
    assert retest_cost_avoided(Decision.RECOGNIZED, POTASSIUM) == 600
    assert retest_cost_avoided(Decision.DECLINED, POTASSIUM) is None
    assert retest_cost_avoided(Decision.RECOGNIZED, None) is None


def test_without_an_agreement_in_force_nothing_is_recognisable_but_the_label_stays() -> None:
    a = _assess(in_force=False)
    assert not a.recognizable and a.reason is RecognitionReason.NO_AGREEMENT_IN_FORCE
    # The HR label and the window are the performing lab's and the item's, not the agreement's.
    assert a.hr_scope == POTASSIUM.scope and a.valid_until == PERFORMED + timedelta(days=7)
    assert _assess(qc=[], in_force=False).hr_scope is None
    # An item outside the catalogue is reported as such first.
    assert _assess(None, in_force=False).reason is RecognitionReason.NOT_IN_CATALOGUE
