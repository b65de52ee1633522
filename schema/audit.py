"""The audit trail of patient-level access, for ALLIANCE_ADMIN and OPS."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import strawberry

from adapters.registry.records import AuditRecord
from resolvers import audit_trail, global_ids
from schema.connections import Connection, Edge, PageInfo
from schema.types import Ctx


@strawberry.type(
    description="One audited access: who, for what purpose, which patients (as "
    "pseudonyms), which members were asked. Never clinical values."
)
class AuditEvent:
    record: strawberry.Private[AuditRecord]

    @strawberry.field
    def id(self) -> strawberry.ID:
        return strawberry.ID(global_ids.encode("AuditEvent", self.record.id))

    @strawberry.field
    def occurred_at(self) -> datetime:
        return self.record.occurred_at

    @strawberry.field
    def subject(self) -> str:
        return self.record.subject

    @strawberry.field
    def hospital(self) -> str | None:
        return self.record.hospital_code

    @strawberry.field
    def roles(self) -> list[str]:
        return self.record.roles

    @strawberry.field
    def purpose(self) -> str | None:
        return self.record.purpose

    @strawberry.field
    def operation(self) -> str:
        return self.record.operation

    @strawberry.field(description="READ or WRITE.")
    def action(self) -> str:
        return self.record.action

    @strawberry.field(description="Patient pseudonyms.")
    def patients(self) -> list[str]:
        return self.record.patients

    @strawberry.field
    def members_asked(self) -> list[str]:
        return self.record.members_asked

    @strawberry.field
    def members_failed(self) -> list[str]:
        return self.record.members_failed

    @strawberry.field(description="SUCCESS, PARTIAL, FAILURE or DENIED.")
    def outcome(self) -> str:
        return self.record.outcome


@strawberry.type
class AuditQueries:
    @strawberry.field(description="Newest first. ALLIANCE_ADMIN and OPS only.")
    async def audit_trail(
        self,
        info: Ctx,
        patient: Annotated[str | None, strawberry.argument(description="A pseudonym.")] = None,
        subject: str | None = None,
        since: datetime | None = None,
        first: int | None = 20,
        after: str | None = None,
    ) -> Connection[AuditEvent] | None:
        page = await audit_trail.page(
            info.context, pseudonym=patient, subject=subject, since=since, first=first, after=after
        )
        return Connection(
            edges=[Edge(cursor=c, node=AuditEvent(record=r)) for c, r in page.items],
            page_info=PageInfo.of(page),
        )
