"""Mutual recognition of examination and test results (检查检验结果互认, 国卫医发〔2022〕6号), as pure
rules: whether one hospital may recognise a result another hospital performed, and whether a
clinician's recognise-or-decline decision is complete. No I/O here: callers pass the catalogue item,
the performing lab's quality-control windows, both hospitals' levels and the time."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import Protocol

from resolvers.clock import CHINA_STANDARD_TIME
from resolvers.errors import bad_input, optional_text
from resolvers.rules import RecognisedItem

MAX_NOTE_LENGTH = 1000


class RecognitionReason(StrEnum):
    """Why a result is not recognisable here; the first failing check, in this order."""

    NOT_IN_CATALOGUE = "NOT_IN_CATALOGUE"
    # Seed 000 §15, §19: recognition inside the alliance is collaboration under an agreement in
    # force, for the performing hospital and the reader's; a decision on it is refused without.
    NO_AGREEMENT_IN_FORCE = "NO_AGREEMENT_IN_FORCE"
    QUALITY_CONTROL_NOT_VALID = "QUALITY_CONTROL_NOT_VALID"
    OUTSIDE_VALIDITY_WINDOW = "OUTSIDE_VALIDITY_WINDOW"
    LEVEL_NOT_ACCEPTED = "LEVEL_NOT_ACCEPTED"


class Decision(StrEnum):
    RECOGNIZED = "RECOGNIZED"
    DECLINED = "DECLINED"


class DeclineReason(StrEnum):
    # The six national reasons (国卫医发〔2022〕6号).
    CONDITION_CHANGED = "CONDITION_CHANGED"  # the condition changed / does not fit the picture
    RAPIDLY_CHANGING = "RAPIDLY_CHANGING"  # the item changes quickly with the disease
    CRITICAL_PROCEDURE = "CRITICAL_PROCEDURE"  # surgery, transfusion … planned
    EMERGENCY = "EMERGENCY"  # emergency or rescue
    APPRAISAL = "APPRAISAL"  # forensic, disability or sick-retirement appraisal
    OTHER = "OTHER"  # with a written explanation
    # Added by provinces.
    PATIENT_REQUEST = "PATIENT_REQUEST"
    LAB_FAILED_EQA = "LAB_FAILED_EQA"  # the issuing lab failed external quality assessment
    INTERVAL_TOO_LONG = "INTERVAL_TOO_LONG"


NATIONAL_DECLINE_REASONS = frozenset(
    {
        DeclineReason.CONDITION_CHANGED,
        DeclineReason.RAPIDLY_CHANGING,
        DeclineReason.CRITICAL_PROCEDURE,
        DeclineReason.EMERGENCY,
        DeclineReason.APPRAISAL,
        DeclineReason.OTHER,
    }
)
PROVINCIAL_DECLINE_REASONS = frozenset(DeclineReason) - NATIONAL_DECLINE_REASONS


class QualityWindow(Protocol):
    """A period in which the performing lab's quality control (质控) for an item was valid."""

    @property
    def valid_from(self) -> date: ...

    @property
    def valid_until(self) -> date: ...


@dataclass(frozen=True, slots=True)
class Party:
    """A hospital in a recognition question: its code and its level (三级 = 3, 二级 = 2, …)."""

    code: str
    level: int


@dataclass(frozen=True, slots=True)
class Assessment:
    recognizable: bool
    reason: RecognitionReason | None  # None exactly when recognizable
    valid_until: datetime | None  # None when the item is not in the catalogue
    hr_scope: str | None  # the HR label: in the catalogue and quality control valid


def performed_on(performed_at: datetime) -> date:
    """The calendar day of a result, in China Standard Time."""
    return performed_at.astimezone(CHINA_STANDARD_TIME).date()


def quality_control_valid(windows: Iterable[QualityWindow], day: date) -> bool:
    return any(w.valid_from <= day <= w.valid_until for w in windows)


def level_accepts(reader: Party, performer: Party, *, alliance_wide: bool) -> bool:
    """Same level recognise each other; a lower level accepts a higher level's results; a higher
    level accepts a lower one's only where the alliance agreed full mutual recognition."""
    if reader.code == performer.code or reader.level <= performer.level:
        return True
    return alliance_wide


def assess(
    item: RecognisedItem | None,
    quality_control: Iterable[QualityWindow],
    performed_at: datetime,
    *,
    reader: Party,
    performer: Party,
    alliance_wide: bool,
    in_force: bool,
    now: datetime,
) -> Assessment:
    """Whether `reader` may recognise a result `performer` produced at `performed_at`. Checks in
    order (catalogue, agreements in force, quality control, window, level) and reports the first
    that fails. `in_force`: both hospitals have a cooperation agreement in force (or are the
    lead, party A of every one), or the result is the reader's own."""
    if item is None:
        return Assessment(False, RecognitionReason.NOT_IN_CATALOGUE, None, None)
    valid_until = performed_at + timedelta(days=item.validity_days)
    qc_valid = quality_control_valid(quality_control, performed_on(performed_at))
    if not in_force:
        # The HR label is the performing lab's, whatever the agreements: it stays shown.
        return Assessment(
            False,
            RecognitionReason.NO_AGREEMENT_IN_FORCE,
            valid_until,
            item.scope if qc_valid else None,
        )
    if not qc_valid:
        return Assessment(False, RecognitionReason.QUALITY_CONTROL_NOT_VALID, valid_until, None)
    if now > valid_until:
        return Assessment(False, RecognitionReason.OUTSIDE_VALIDITY_WINDOW, valid_until, item.scope)
    if not level_accepts(reader, performer, alliance_wide=alliance_wide):
        return Assessment(False, RecognitionReason.LEVEL_NOT_ACCEPTED, valid_until, item.scope)
    return Assessment(True, None, valid_until, item.scope)


def check_decision(
    decision: Decision, reason: DeclineReason | None, note: str | None
) -> str | None:
    """A complete decision, or BAD_USER_INPUT naming what is missing. Returns the trimmed note."""
    text = optional_text(note, "note", MAX_NOTE_LENGTH)
    if decision is Decision.RECOGNIZED:
        if reason is not None:
            raise bad_input("A RECOGNIZED decision takes no reason.", field="reason")
        return text
    if reason is None:
        raise bad_input(
            "A DECLINED decision needs a reason (the patient is told why a re-test is needed).",
            field="reason",
        )
    if reason is DeclineReason.OTHER and not text:
        raise bad_input("Declining for OTHER reasons needs a written note.", field="note")
    return text


def retest_cost_avoided(decision: Decision, item: RecognisedItem | None) -> int | None:
    """What recognising the result saved: the catalogue's re-test price; nothing when declined."""
    if decision is Decision.RECOGNIZED and item is not None:
        return item.retest_cost_fen
    return None
