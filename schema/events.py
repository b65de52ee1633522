"""Event subscriptions: envelopes of changes, each with its record resolvable live."""

from __future__ import annotations

import builtins
import inspect
from collections.abc import AsyncGenerator
from datetime import datetime
from typing import Annotated, TypeVar

import strawberry

from adapters.registry.records import EventRecord
from resolvers import events, subscriptions
from schema.consultations import Consultation
from schema.query import node_by_id
from schema.referrals import Referral
from schema.results import RecognitionDecision, TestResult
from schema.training import TrainingEvent
from schema.types import Agreement, Ctx, Hospital, Member, Node, hospital_or_awaitable

# strawberry.enum registers each class in place and returns it: the names stay types.
EventType = events.EventType
strawberry.enum(
    EventType, description="What changed. Types may be added; ignore those you do not know."
)
EventDetection = events.DetectedBy
strawberry.enum(
    EventDetection,
    name="EventDetection",
    description="How the change reached the log: GATEWAY (a mutation through this API), WATCHER "
    "(written at the hospital directly and seen there), REGISTRY (the alliance office's records).",
)

N = TypeVar("N")

# Per subscription field, the fields of its events that are functions of the envelope alone, the
# same whoever reads them: a selection of only these is executed once for every subscriber.
ENVELOPES: dict[str, frozenset[str]] = {
    "events": frozenset(
        {
            "__typename",
            "cursor",
            "type",
            "occurredAt",
            "recordedAt",
            "detectedBy",
            "entityId",
            "entityType",
            "entityVersion",
        }
    )
}


@strawberry.type(
    description="An envelope naming a changed record and its version; never the record's content. "
    "Resolve the record through `node` or the typed field matching `entityType`, under your own "
    "authorization: null when you may no longer see it."
)
class Event:
    record: strawberry.Private[EventRecord]

    @strawberry.field(description="Resume after this event with `events(after: cursor)`.")
    def cursor(self) -> str:
        return str(self.record.cursor)

    @strawberry.field
    def type(self) -> EventType:
        return events.EventType(self.record.type)

    @strawberry.field(description="When the change was made at its source.")
    def occurred_at(self) -> datetime:
        return self.record.occurred_at

    @strawberry.field(description="When the change entered the event log.")
    def recorded_at(self) -> datetime:
        return self.record.recorded_at

    @strawberry.field
    def detected_by(self) -> EventDetection:
        return events.DetectedBy(self.record.detected_by)

    @strawberry.field(description="The global id of the changed record.")
    def entity_id(self) -> strawberry.ID:
        return strawberry.ID(self.record.entity_id)

    @strawberry.field(description="The record's GraphQL type name, e.g. Referral.")
    def entity_type(self) -> str:
        return self.record.entity_type

    @strawberry.field(description="The record's version this event is about.")
    def entity_version(self) -> int:
        return self.record.entity_version

    @strawberry.field(description="The hospitals the change concerns.")
    async def hospitals(self, info: Ctx) -> list[Hospital]:
        found = []
        for code in self.record.members:
            hospital = hospital_or_awaitable(info, code)
            found.append(await hospital if inspect.isawaitable(hospital) else hospital)
        return found

    @strawberry.field(description="The changed record as it is now.")
    async def node(self, info: Ctx) -> Node | None:
        return await node_by_id(info, strawberry.ID(self.record.entity_id))

    # builtins.type: the field `type` above shadows it in this class.
    async def _typed(self, info: Ctx, cls: builtins.type[N]) -> N | None:
        if self.record.entity_type != cls.__name__:
            return None
        found = await node_by_id(info, strawberry.ID(self.record.entity_id))
        return found if isinstance(found, cls) else None

    @strawberry.field
    async def referral(self, info: Ctx) -> Referral | None:
        return await self._typed(info, Referral)

    @strawberry.field
    async def consultation(self, info: Ctx) -> Consultation | None:
        return await self._typed(info, Consultation)

    @strawberry.field
    async def test_result(self, info: Ctx) -> TestResult | None:
        return await self._typed(info, TestResult)

    @strawberry.field
    async def recognition_decision(self, info: Ctx) -> RecognitionDecision | None:
        return await self._typed(info, RecognitionDecision)

    @strawberry.field
    async def training_event(self, info: Ctx) -> TrainingEvent | None:
        return await self._typed(info, TrainingEvent)

    @strawberry.field
    async def member(self, info: Ctx) -> Member | None:
        return await self._typed(info, Member)

    @strawberry.field
    async def agreement(self, info: Ctx) -> Agreement | None:
        return await self._typed(info, Agreement)


@strawberry.type
class Subscription:
    @strawberry.subscription(
        description="Changes that concern you, in order. Without `after`, from now on; with the "
        "cursor of the last event you received, everything since, then live, with none missed "
        "and none repeated. Errors: EVENTS_EXPIRED (the cursor is past retention), "
        "SUBSCRIBER_TOO_SLOW (you fell behind; resume from extensions.resumeAfter)."
    )
    async def events(
        self,
        info: Ctx,
        types: Annotated[
            list[EventType] | None,
            strawberry.argument(description="Only these types; all when omitted."),
        ] = None,
        members: Annotated[
            list[str] | None,
            strawberry.argument(description="Only changes concerning these hospital codes."),
        ] = None,
        after: str | None = None,
    ) -> AsyncGenerator[Event, None]:
        async for record in subscriptions.stream(info.context, types, members, after):
            yield Event(record=record)
