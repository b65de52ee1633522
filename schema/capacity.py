"""Capacity building (帮扶) in the public contract: the activities the assessment and the work
reports count, read and recorded."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated

import strawberry

from resolvers import capacity
from resolvers.capacity import CapacityActivity as CapacityActivityRecord
from schema.connections import CountedConnection, Edge, PageInfo
from schema.fan_out import FanOut
from schema.selection import selects
from schema.types import Ctx, Hospital, Node, hospital_of

# strawberry.enum registers the class in place and returns it: the name stays a type.
CapacityKind = capacity.CapacityKind
strawberry.enum(
    CapacityKind,
    description="DISPATCH 派驻/下沉, MENTORING 一对一带教, NEW_TECHNIQUE 新技术新项目, "
    "ON_SITE_TOUR 巡诊.",
)


@strawberry.type(
    description="A capacity-building activity (帮扶) one hospital gives another. Its record lives "
    "at the hospital that recorded it. Staff and titles only: no patient."
)
class CapacityActivity(Node):
    record: strawberry.Private[CapacityActivityRecord]

    @classmethod
    def of(cls, record: CapacityActivityRecord) -> CapacityActivity:
        return cls(id=strawberry.ID(record.global_id), record=record)

    @strawberry.field
    def kind(self) -> CapacityKind:
        return CapacityKind(self.record.row.kind)

    @strawberry.field(description="The lead or a backbone, as a rule.")
    def helping_hospital(self, info: Ctx) -> Hospital:
        return hospital_of(info, self.record.row.helping_hospital)

    @strawberry.field
    def helped_hospital(self, info: Ctx) -> Hospital:
        return hospital_of(info, self.record.row.helped_hospital)

    @strawberry.field(description="The hospital whose exchange database holds the record.")
    def recorded_by(self, info: Ctx) -> Hospital:
        return hospital_of(info, self.record.member)

    @strawberry.field
    def title(self) -> str:
        return self.record.row.title

    @strawberry.field
    def started_on(self) -> date:
        return self.record.row.started_on

    @strawberry.field(description="Null while it goes on.")
    def ended_on(self) -> date | None:
        return self.record.row.ended_on

    @strawberry.field(description="Staff involved.")
    def people(self) -> int:
        return self.record.row.people

    @strawberry.field
    def updated_at(self) -> datetime:
        return self.record.row.updated_at

    @strawberry.field(description="Increases with every change.")
    def version(self) -> int:
        return self.record.row.version


@strawberry.type
class CapacityActivityConnection(CountedConnection[CapacityActivity]):
    pass


@strawberry.input
class CapacityActivityFilter:
    kind: CapacityKind | None = None
    hospital: str | None = strawberry.field(
        default=None, description="Only activities this hospital gives or receives."
    )
    year: int | None = strawberry.field(default=None, description="Started in this calendar year.")


@strawberry.input
class RecordCapacityActivityInput:
    kind: CapacityKind
    helping_hospital: str
    helped_hospital: str
    title: str
    started_on: date
    ended_on: date | None = None
    people: int = 1
    idempotency_key: str | None = strawberry.field(
        default=None,
        description="8 to 128 characters: a retry with the same key returns the first record.",
    )


@strawberry.type
class CapacityActivityPayload:
    capacity_activity: CapacityActivity


@strawberry.type
class CapacityQueries:
    @strawberry.field(
        description="Capacity-building activities (帮扶), latest start first. The alliance office "
        "and the provincial regulator read them all (no patient is in them); a hospital reads "
        "those it gives or receives.",
        extensions=[FanOut()],
    )
    async def capacity_activities(
        self,
        info: Ctx,
        filter: CapacityActivityFilter | None = None,
        first: Annotated[int | None, strawberry.argument(description="At most 100.")] = 20,
        after: str | None = None,
    ) -> CapacityActivityConnection | None:
        f = filter or CapacityActivityFilter()
        query = capacity.CapacityQuery(
            kind=capacity.CapacityKind(f.kind.value) if f.kind else None,
            hospital=f.hospital,
            year=f.year,
        )
        merged = await capacity.activities_page(
            info.context, query, first, after, with_total=selects(info, "totalCount")
        )
        return CapacityActivityConnection(
            edges=[
                Edge(cursor=c, node=CapacityActivity.of(CapacityActivityRecord(m, r)))
                for c, m, r in merged.items
            ],
            page_info=PageInfo.of_items(merged.items, merged.has_next_page),
            total=merged.total,
        )


@strawberry.type
class CapacityMutations:
    @strawberry.mutation(
        description="Record a capacity-building activity in the recording hospital's exchange "
        "database: a MEMBER_ADMIN of the helping or the helped hospital.",
        extensions=[FanOut()],
    )
    async def record_capacity_activity(
        self, info: Ctx, input: RecordCapacityActivityInput
    ) -> CapacityActivityPayload:
        new = capacity.NewCapacityActivity(
            kind=capacity.CapacityKind(input.kind.value),
            helping_hospital=input.helping_hospital,
            helped_hospital=input.helped_hospital,
            title=input.title,
            started_on=input.started_on,
            ended_on=input.ended_on,
            people=input.people,
            idempotency_key=input.idempotency_key,
        )
        record = await capacity.record_activity(info.context, new)
        return CapacityActivityPayload(capacity_activity=CapacityActivity.of(record))
