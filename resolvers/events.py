"""Event envelopes: what kind of change a changed row is, whom it concerns, and who may hear of it.

An envelope names a record and its version, never its content: the entity behind it is resolved
live, under the subscriber's own authorization."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING

from adapters.registry.events import EventLogUnavailable
from adapters.registry.records import EventRecord, NewEvent
from adapters.sources.records import ChangeRow
from resolvers import global_ids
from resolvers.access import OFFICE_ROLES, PARTY_ROLES
from resolvers.principal import Principal

if TYPE_CHECKING:
    from resolvers.context import RequestContext

log = logging.getLogger(__name__)


class EventType(StrEnum):
    REFERRAL_CREATED = "REFERRAL_CREATED"
    REFERRAL_STATUS_CHANGED = "REFERRAL_STATUS_CHANGED"
    CONSULTATION_REQUESTED = "CONSULTATION_REQUESTED"
    CONSULTATION_STATUS_CHANGED = "CONSULTATION_STATUS_CHANGED"
    CONSULTATION_REPORTED = "CONSULTATION_REPORTED"
    RESULT_AVAILABLE = "RESULT_AVAILABLE"
    RESULT_AMENDED = "RESULT_AMENDED"
    RECOGNITION_DECIDED = "RECOGNITION_DECIDED"
    TRAINING_EVENT_PUBLISHED = "TRAINING_EVENT_PUBLISHED"
    TRAINING_EVENT_CHANGED = "TRAINING_EVENT_CHANGED"
    MEMBERSHIP_CHANGED = "MEMBERSHIP_CHANGED"
    AGREEMENT_CHANGED = "AGREEMENT_CHANGED"


class DetectedBy(StrEnum):
    GATEWAY = "GATEWAY"
    WATCHER = "WATCHER"
    REGISTRY = "REGISTRY"


# Every member's staff may read these records, so every member may hear of their changes.
_ALLIANCE_WIDE = frozenset(
    {
        EventType.TRAINING_EVENT_PUBLISHED,
        EventType.TRAINING_EVENT_CHANGED,
        EventType.MEMBERSHIP_CHANGED,
        EventType.AGREEMENT_CHANGED,
    }
)

# table → (the entity's global id type, its type at version 1, its type afterwards)
_TABLE_EVENTS: dict[str, tuple[str, EventType, EventType]] = {
    "referral": ("Referral", EventType.REFERRAL_CREATED, EventType.REFERRAL_STATUS_CHANGED),
    "consultation": (
        "Consultation",
        EventType.CONSULTATION_REQUESTED,
        EventType.CONSULTATION_STATUS_CHANGED,
    ),
    # A report is an event of its consultation.
    "consultation_report": (
        "Consultation",
        EventType.CONSULTATION_REPORTED,
        EventType.CONSULTATION_REPORTED,
    ),
    "training_event": (
        "TrainingEvent",
        EventType.TRAINING_EVENT_PUBLISHED,
        EventType.TRAINING_EVENT_CHANGED,
    ),
    "test_result": ("TestResult", EventType.RESULT_AVAILABLE, EventType.RESULT_AMENDED),
    "recognition_decision": (
        "RecognitionDecision",
        EventType.RECOGNITION_DECIDED,
        EventType.RECOGNITION_DECIDED,
    ),
}


def of_change(member: str, change: ChangeRow, detected_by: DetectedBy) -> NewEvent:
    """The envelope of a changed row at `member`: the same however the change was seen, so that
    a mutation's event and the watcher's sighting of it are recorded once."""
    entity_type, first, later = _TABLE_EVENTS[change.table]
    return NewEvent(
        type=(first if change.version == 1 else later).value,
        members=_members(member, *change.parties),
        entity_type=entity_type,
        entity_id=global_ids.encode(entity_type, member, change.id),
        entity_version=change.version,
        occurred_at=change.updated_at,
        detected_by=detected_by.value,
    )


def of_registry(
    type_: EventType, entity_type: str, key: str | int, members: Iterable[str], at: datetime
) -> NewEvent:
    """A change of the alliance office's own records (membership, agreements). Their rows carry
    no version: the log numbers the entity's changes itself."""
    return NewEvent(
        type=type_.value,
        members=_members(*members),
        entity_type=entity_type,
        entity_id=global_ids.encode(entity_type, key),
        entity_version=None,
        occurred_at=at,
        detected_by=DetectedBy.REGISTRY.value,
    )


def _members(*codes: str) -> tuple[str, ...]:
    return tuple(dict.fromkeys(c for c in codes if c))


def visibility(principal: Principal) -> Callable[[EventRecord], bool]:
    """Whether `principal` could have queried the record an event names: the alliance office
    hears of everything, a hospital of what it is a party to (and of alliance-wide records).
    Decided once per subscription as far as the roles go: it is asked of every event."""
    if principal.has_any(*OFFICE_ROLES):
        return lambda event: True
    hospital = principal.hospital_code
    if not principal.has_any(*PARTY_ROLES) or not hospital:
        return lambda event: False
    return lambda event: event.type in _ALLIANCE_WIDE or hospital in event.members


def may_subscribe(principal: Principal) -> bool:
    return principal.has_any(*OFFICE_ROLES, *PARTY_ROLES)


async def record(ctx: RequestContext, member: str, *changes: ChangeRow) -> None:
    """Log the changes a mutation just made at `member`. The write has succeeded whatever happens
    here: if the log cannot be reached, the member's change watcher records them instead."""
    if ctx.event_store is None:
        return
    try:
        await ctx.event_store.append([of_change(member, c, DetectedBy.GATEWAY) for c in changes])
    except (EventLogUnavailable, TimeoutError) as e:
        log.warning(
            "could not log a mutation's event; the change watcher will",
            extra={"member": member, "error": type(e).__name__},
        )
