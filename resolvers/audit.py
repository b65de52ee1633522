"""The audit of patient-level access: who read or wrote which patient's data, through which
members, with what outcome. Collected during a request and written once at its end."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from adapters.registry.audit import AuditStore
from adapters.registry.records import AuditRecord
from resolvers.federation import SourceReport
from resolvers.principal import Principal


@dataclass
class _Entry:
    action: str
    patients: set[str] = field(default_factory=set)
    outcome: str = "SUCCESS"


@dataclass
class AuditLog:
    entries: dict[str, _Entry] = field(default_factory=dict)

    def read(self, operation: str, patients: set[str] | list[str]) -> None:
        entry = self.entries.setdefault(operation, _Entry("READ"))
        entry.patients.update(patients)

    def wrote(self, operation: str, patient: str | None, outcome: str = "SUCCESS") -> None:
        entry = self.entries.setdefault(operation, _Entry("WRITE"))
        if patient:
            entry.patients.add(patient)
        entry.outcome = outcome

    def denied(self, operation: str, patient: str | None) -> None:
        entry = self.entries.setdefault(operation, _Entry("READ"))
        if patient:
            entry.patients.add(patient)
        entry.outcome = "DENIED"

    def drain(self, principal: Principal | None, report: SourceReport) -> list[AuditRecord]:
        if not self.entries or principal is None:
            self.entries.clear()
            return []
        now = datetime.now(UTC)
        records = []
        for operation, entry in self.entries.items():
            outcome = entry.outcome
            if outcome == "SUCCESS" and report.failed:
                outcome = "PARTIAL" if report.failed != report.asked else "FAILURE"
            records.append(
                AuditRecord(
                    id=0,
                    occurred_at=now,
                    subject=principal.subject,
                    hospital_code=principal.hospital_code,
                    roles=sorted(principal.roles),
                    purpose=principal.purpose,
                    operation=operation,
                    action=entry.action,
                    patients=sorted(entry.patients),
                    members_asked=sorted(report.asked),
                    members_failed=sorted(report.failed),
                    outcome=outcome,
                )
            )
        self.entries.clear()
        return records


async def flush(
    store: AuditStore, log: AuditLog, principal: Principal | None, report: SourceReport
) -> None:
    records = log.drain(principal, report)
    if records:
        await store.append(records)
