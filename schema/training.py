"""Training events and further-training placements (培训, 进修, 学术) in the public contract."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated

import strawberry

from resolvers import training
from resolvers.training import Placement as PlacementRecord
from resolvers.training import TrainingEvent as TrainingEventRecord
from schema.connections import CountedConnection, Edge, PageInfo
from schema.fan_out import FanOut
from schema.selection import selects
from schema.types import Ctx, Hospital, Node, hospital_of

# strawberry.enum registers each class in place and returns it: the names stay types.
TrainingKind = training.TrainingKind
strawberry.enum(TrainingKind)
TrainingMode = training.TrainingMode
strawberry.enum(TrainingMode)
Profession = training.Profession
strawberry.enum(Profession)


@strawberry.type(description="How many people one hospital sent to an event.")
class TrainingParticipation:
    code: strawberry.Private[str]
    count: int

    @strawberry.field
    def hospital(self, info: Ctx) -> Hospital:
        return hospital_of(info, self.code)


@strawberry.type(
    description="A training or academic event (培训班, 专家巡讲, 远程教学, 义诊, …). Its record lives "
    "at the host hospital."
)
class TrainingEvent(Node):
    record: strawberry.Private[TrainingEventRecord]

    @classmethod
    def of(cls, record: TrainingEventRecord) -> TrainingEvent:
        return cls(id=strawberry.ID(record.global_id), record=record)

    @strawberry.field
    def kind(self) -> TrainingKind:
        return TrainingKind(self.record.row.kind)

    @strawberry.field
    def mode(self) -> TrainingMode:
        return TrainingMode(self.record.row.mode)

    @strawberry.field
    def host(self, info: Ctx) -> Hospital:
        return hospital_of(info, self.record.row.host_hospital)

    @strawberry.field(description="Where it was held; null for an online event.")
    def place(self) -> str | None:
        return self.record.row.place

    @strawberry.field
    def held_on(self) -> date:
        return self.record.row.held_on

    @strawberry.field
    def topic(self) -> str:
        return self.record.row.topic

    @strawberry.field
    def lecturers(self) -> list[str]:
        return list(self.record.row.lecturers)

    @strawberry.field(description="Continuing-education credits awarded.")
    def credits(self) -> float | None:
        credits = self.record.row.credits
        return float(credits) if credits is not None else None

    @strawberry.field(description="Participants per hospital.")
    async def participants(self, info: Ctx) -> list[TrainingParticipation]:
        rows = await training.participation(info.context, self.record)
        return [TrainingParticipation(code=r.hospital, count=r.participants) for r in rows]

    @strawberry.field
    async def total_participants(self, info: Ctx) -> int:
        rows = await training.participation(info.context, self.record)
        return sum(r.participants for r in rows)

    @strawberry.field
    def updated_at(self) -> datetime:
        return self.record.row.updated_at

    @strawberry.field(description="Increases with every change.")
    def version(self) -> int:
        return self.record.row.version


@strawberry.type(
    description="A further-training placement (进修): a member's staff member trained for months "
    "at the host hospital. Its record lives at the host."
)
class Placement(Node):
    record: strawberry.Private[PlacementRecord]

    @classmethod
    def of(cls, record: PlacementRecord) -> Placement:
        return cls(id=strawberry.ID(record.global_id), record=record)

    @strawberry.field(description="Where the trainee is trained.")
    def host(self, info: Ctx) -> Hospital:
        return hospital_of(info, self.record.row.host_hospital)

    @strawberry.field(description="The hospital the trainee comes from.")
    def home_hospital(self, info: Ctx) -> Hospital:
        return hospital_of(info, self.record.row.home_hospital)

    @strawberry.field
    def trainee_name(self) -> str:
        return self.record.row.trainee_name

    @strawberry.field
    def profession(self) -> Profession:
        return Profession(self.record.row.profession)

    @strawberry.field
    def department(self) -> str:
        return self.record.row.department

    @strawberry.field
    def supervisor(self) -> str | None:
        return self.record.row.supervisor

    @strawberry.field
    def starts_on(self) -> date:
        return self.record.row.starts_on

    @strawberry.field
    def ends_on(self) -> date:
        return self.record.row.ends_on

    @strawberry.field(description="Fees are waived for members.")
    def fee_waived(self) -> bool:
        return self.record.row.fee_waived

    @strawberry.field
    def evaluation(self) -> str | None:
        return self.record.row.evaluation

    @strawberry.field
    def updated_at(self) -> datetime:
        return self.record.row.updated_at

    @strawberry.field(description="Increases with every change.")
    def version(self) -> int:
        return self.record.row.version


@strawberry.type
class TrainingEventConnection(CountedConnection[TrainingEvent]):
    pass


@strawberry.type
class PlacementConnection(CountedConnection[Placement]):
    pass


@strawberry.input
class TrainingEventFilter:
    kind: TrainingKind | None = None
    mode: TrainingMode | None = None
    hospital: str | None = strawberry.field(
        default=None, description="Only events this hospital hosted or sent participants to."
    )
    year: int | None = strawberry.field(default=None, description="Held in this calendar year.")


@strawberry.input
class PlacementFilter:
    hospital: str | None = strawberry.field(
        default=None, description="Only placements this hospital hosts or sends staff to."
    )
    year: int | None = strawberry.field(default=None, description="Starting in this calendar year.")


@strawberry.input
class TrainingParticipationInput:
    hospital: str
    count: int


@strawberry.input
class RecordTrainingEventInput:
    kind: TrainingKind
    mode: TrainingMode
    held_on: date
    topic: str
    place: str | None = None
    lecturers: list[str] | None = None
    credits: float | None = None
    participants: list[TrainingParticipationInput] | None = None
    host: str | None = strawberry.field(
        default=None,
        description="The host hospital's code; a MEMBER_ADMIN's own hospital, the alliance office "
        "may name any member (default: the token's hospital).",
    )


@strawberry.input
class RecordPlacementInput:
    home_hospital: str
    trainee_name: str
    profession: Profession
    department: str
    starts_on: date
    ends_on: date
    supervisor: str | None = None
    fee_waived: bool = True
    evaluation: str | None = None
    host: str | None = strawberry.field(
        default=None,
        description="The host hospital's code; a MEMBER_ADMIN's own hospital, the alliance office "
        "may name any member (default: the token's hospital).",
    )


@strawberry.type
class TrainingEventPayload:
    training_event: TrainingEvent


@strawberry.type
class PlacementPayload:
    placement: Placement


@strawberry.type
class TrainingQueries:
    @strawberry.field(
        description="Training and academic events across the alliance, most recent first. "
        "Every alliance role reads them all.",
        extensions=[FanOut()],
    )
    async def training_events(
        self,
        info: Ctx,
        filter: TrainingEventFilter | None = None,
        first: Annotated[int | None, strawberry.argument(description="At most 100.")] = 20,
        after: str | None = None,
    ) -> TrainingEventConnection | None:
        f = filter or TrainingEventFilter()
        query = training.TrainingQuery(
            kinds=(f.kind.value,) if f.kind else None,
            modes=(f.mode.value,) if f.mode else None,
            hospital=f.hospital,
            year=f.year,
        )
        merged = await training.events_page(
            info.context, query, first, after, with_total=selects(info, "totalCount")
        )
        return TrainingEventConnection(
            edges=[
                Edge(cursor=c, node=TrainingEvent.of(TrainingEventRecord(m, r)))
                for c, m, r in merged.items
            ],
            page_info=PageInfo.of_items(merged.items, merged.has_next_page),
            total=merged.total,
        )

    @strawberry.field(
        description="Further-training placements (进修), latest start first. The two hospitals "
        "see theirs; the alliance office sees all.",
        extensions=[FanOut()],
    )
    async def placements(
        self,
        info: Ctx,
        filter: PlacementFilter | None = None,
        first: Annotated[int | None, strawberry.argument(description="At most 100.")] = 20,
        after: str | None = None,
    ) -> PlacementConnection | None:
        f = filter or PlacementFilter()
        query = training.PlacementQuery(hospital=f.hospital, year=f.year)
        merged = await training.placements_page(
            info.context, query, first, after, with_total=selects(info, "totalCount")
        )
        return PlacementConnection(
            edges=[
                Edge(cursor=c, node=Placement.of(PlacementRecord(m, r))) for c, m, r in merged.items
            ],
            page_info=PageInfo.of_items(merged.items, merged.has_next_page),
            total=merged.total,
        )


@strawberry.type
class TrainingMutations:
    @strawberry.mutation(
        description="Record a training event at its host: a MEMBER_ADMIN for its own hospital, "
        "the alliance office for any member.",
        extensions=[FanOut()],
    )
    async def record_training_event(
        self, info: Ctx, input: RecordTrainingEventInput
    ) -> TrainingEventPayload:
        new = training.NewTrainingEvent(
            kind=training.TrainingKind(input.kind.value),
            mode=training.TrainingMode(input.mode.value),
            held_on=input.held_on,
            topic=input.topic,
            place=input.place,
            lecturers=tuple(input.lecturers or ()),
            credits=input.credits,
            participants=tuple((p.hospital, p.count) for p in input.participants or ()),
            host=input.host,
        )
        record = await training.record_event(info.context, new)
        return TrainingEventPayload(training_event=TrainingEvent.of(record))

    @strawberry.mutation(
        description="Record a further-training placement (进修) at its host: a MEMBER_ADMIN of "
        "the host, or the alliance office naming one.",
        extensions=[FanOut()],
    )
    async def record_placement(self, info: Ctx, input: RecordPlacementInput) -> PlacementPayload:
        new = training.NewPlacement(
            home_hospital=input.home_hospital,
            trainee_name=input.trainee_name,
            profession=training.Profession(input.profession.value),
            department=input.department,
            starts_on=input.starts_on,
            ends_on=input.ends_on,
            supervisor=input.supervisor,
            fee_waived=input.fee_waived,
            evaluation=input.evaluation,
            host=input.host,
        )
        record = await training.record_placement(info.context, new)
        return PlacementPayload(placement=Placement.of(record))
