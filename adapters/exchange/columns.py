"""Per-hospital column names. The exchange schema names every column; a hospital may keep its own
names, and the gateway's configuration maps ours onto theirs. Identifiers from configuration are
checked here and quoted wherever SQL is built, values are always bound parameters."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")

# The logical columns of each table, as in exchange.sql.
TABLES: dict[str, tuple[str, ...]] = {
    "referral": (
        "id",
        "referral_no",
        "direction",
        "from_hospital",
        "from_department",
        "to_hospital",
        "to_department",
        "patient_pseudonym",
        "patient_sex",
        "patient_age",
        "diagnosis_code",
        "diagnosis_name",
        "reason",
        "condition_summary",
        "notes",
        "urgency",
        "green_channel",
        "status",
        "status_reason",
        "requested_date",
        "arrived_at",
        "completed_at",
        "treatment_result",
        "discharge_summary",
        "rehab_advice",
        "idempotency_key",
        "created_by",
        "created_at",
        "updated_at",
        "version",
    ),
    "consultation": (
        "id",
        "kind",
        "requesting_hospital",
        "requesting_doctor",
        "invited_hospital",
        "department",
        "patient_pseudonym",
        "patient_sex",
        "patient_age",
        "urgency",
        "purpose",
        "case_summary",
        "attached_studies",
        "desired_specialty",
        "desired_title",
        "proposed_at",
        "consent_obtained",
        "status",
        "status_reason",
        "expert_name",
        "expert_title",
        "scheduled_at",
        "fee_fen",
        "idempotency_key",
        "created_by",
        "created_at",
        "updated_at",
        "version",
    ),
    "consultation_report": (
        "consultation_id",
        "issued_at",
        "expert_name",
        "opinion",
        "signed",
        "updated_at",
        "version",
    ),
    "training_event": (
        "id",
        "kind",
        "host_hospital",
        "mode",
        "place",
        "held_on",
        "topic",
        "lecturers",
        "credits",
        "created_at",
        "updated_at",
        "version",
    ),
    "training_participation": ("event_id", "hospital", "participants"),
    "placement": (
        "id",
        "host_hospital",
        "home_hospital",
        "trainee_name",
        "profession",
        "department",
        "supervisor",
        "starts_on",
        "ends_on",
        "fee_waived",
        "evaluation",
        "created_at",
        "updated_at",
        "version",
    ),
    "test_result": (
        "id",
        "patient_pseudonym",
        "item_code",
        "item_name",
        "loinc",
        "category",
        "value",
        "unit",
        "reference_range",
        "performed_at",
        "created_at",
        "updated_at",
        "version",
    ),
    "quality_control": ("loinc", "scheme", "valid_from", "valid_until"),
    "recognition_decision": (
        "id",
        "result_member",
        "result_id",
        "patient_pseudonym",
        "loinc",
        "decided_by",
        "decision",
        "reason",
        "note",
        "retest_cost_fen",
        "decided_at",
        "updated_at",
        "version",
    ),
    "specialty_volume": (
        "id",
        "hospital",
        "month",
        "outpatient_visits",
        "admissions",
        "discharges",
        "discharged_bed_days",
        "occupied_bed_days",
        "open_bed_days",
        "operations",
        "grade34_operations",
        "complex_critical_cases",
        "outpatient_cost_fen",
        "inpatient_cost_fen",
        "updated_at",
        "version",
    ),
    "satisfaction_survey": (
        "id",
        "hospital",
        "month",
        "population",
        "respondents",
        "satisfied",
        "updated_at",
        "version",
    ),
    "capacity_activity": (
        "id",
        "kind",
        "helping_hospital",
        "helped_hospital",
        "title",
        "started_on",
        "ended_on",
        "people",
        "idempotency_key",
        "created_by",
        "created_at",
        "updated_at",
        "version",
    ),
}

# The tables of the contract's part 2 (see exchange.sql), which an older database is given alone.
PART_2_TABLES: tuple[str, ...] = ("specialty_volume", "satisfaction_survey", "capacity_activity")

# Row keys (and references to them) that are bigint in the published schema; the source port's
# records carry keys as text.
INTEGER_KEYS: dict[str, tuple[str, ...]] = {
    "referral": ("id",),
    "consultation": ("id",),
    "consultation_report": ("consultation_id",),
    "training_event": ("id",),
    "training_participation": ("event_id",),
    "placement": ("id",),
    "test_result": ("id",),
    "recognition_decision": ("id",),
    "specialty_volume": ("id",),
    "satisfaction_survey": ("id",),
    "capacity_activity": ("id",),
}


# The column that names a record's unread columns (`Table.record_select`); always NULL.
UNREAD = '"unread"'


def quote(identifier: str) -> str:
    if not _IDENTIFIER.match(identifier):
        raise ValueError(f"{identifier!r} is not a plain SQL identifier")
    return f'"{identifier}"'


class Table:
    """One table as a hospital names it: `t.col("status")` is its quoted physical column."""

    def __init__(self, name: str, renamed: Mapping[str, str]) -> None:
        unknown = set(renamed) - set(TABLES[name])
        if unknown:
            raise ValueError(f"{name} has no columns {sorted(unknown)} to rename")
        self.name = quote(name)
        self.logical_name = name
        self._physical = {c: quote(renamed.get(c, c)) for c in TABLES[name]}
        # Every query of the table selects this: built once, not per statement.
        self._select_list = ", ".join(
            p if p == quote(c) else f"{p} AS {quote(c)}" for c, p in self._physical.items()
        )
        self._record_selects: dict[
            tuple[tuple[str, ...], frozenset[str] | None, bool, bool], str
        ] = {}

    def col(self, logical: str) -> str:
        return self._physical[logical]

    def cols(self, logicals: Iterable[str]) -> str:
        return ", ".join(self._physical[c] for c in logicals)

    def select_list(self) -> str:
        """Every column, under its logical name (renamed ones aliased back)."""
        return self._select_list

    def record_select(
        self,
        fields: tuple[str, ...],
        wanted: frozenset[str] | None,
        *,
        keys_as_text: bool,
        unread_in_one: bool = False,
    ) -> str:
        """A record's fields in its own order, each under its logical name, so that a row is the
        record's arguments as they stand (but see `unread_in_one`). A field not `wanted` (None: all are) is NULL, its column
        still named, so that a member whose table lost a column fails every read alike rather
        than only those that ask for it; with `unread_in_one` the unread fields are left out and
        one NULL column named `unread` names their columns instead (for a driver that decodes
        every column of every row in Python). Integer keys as text with `keys_as_text`."""
        cache_key = (fields, wanted, keys_as_text, unread_in_one)
        found = self._record_selects.get(cache_key)
        if found is not None:
            return found
        parts, unread = [], []
        for c in fields:
            physical = self._physical[c]
            if wanted is not None and c not in wanted:
                if unread_in_one:
                    unread.append(physical)
                else:
                    # Folded to a constant by the planner: nothing is read or sent.
                    parts.append(f"CASE WHEN FALSE THEN {physical} END AS {quote(c)}")
            elif keys_as_text and self.is_integer_key(c):
                parts.append(f"{physical}::text AS {quote(c)}")
            else:
                parts.append(physical if physical == quote(c) else f"{physical} AS {quote(c)}")
        if unread:
            parts.append(
                f"CASE WHEN FALSE THEN CONCAT_WS(',', {', '.join(unread)}) END AS {UNREAD}"
            )
        select = ", ".join(parts)
        # Bounded by the kinds times the distinct selections clients make, which are few.
        if len(self._record_selects) < 256:
            self._record_selects[cache_key] = select
        return select

    def is_integer_key(self, logical: str) -> bool:
        return logical in INTEGER_KEYS.get(self.logical_name, ())


class ColumnMap:
    def __init__(self, renamed: Mapping[str, Mapping[str, str]] | None = None) -> None:
        renamed = renamed or {}
        unknown = set(renamed) - set(TABLES)
        if unknown:
            raise ValueError(f"no exchange tables named {sorted(unknown)}")
        self.tables = {name: Table(name, renamed.get(name, {})) for name in TABLES}

    def __getitem__(self, table: str) -> Table:
        return self.tables[table]
