"""The README's GraphQL examples run as written (issue 11): every operation of every ```graphql block,
in order, against the tests' demo, with the role its first comment names and the placeholders the
README's Development section documents. A subscription is opened before the operations after it
and must hear of what they do, at once."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from graphql import OperationDefinitionNode, parse

from resolvers import clock
from resolvers.principal import Role
from tests.conftest import Api, Demo
from tests.events_client import next_event, subscribed

README = Path(__file__).resolve().parents[1] / "README.md"
_ROLE = re.compile(r"#\s*(" + "|".join(r.value for r in Role) + r")\b(?:[ \t]+([A-Z][A-Z0-9-]+))?")
_PLACEHOLDER = re.compile(r"<[A-Z_]+>")


@dataclass
class Example:
    block: int
    source: str
    kind: str
    name: str | None
    role: str
    member: str | None
    variables: list[str]

    def __str__(self) -> str:
        return f"README graphql block {self.block}: {self.name or self.kind}"


def examples() -> list[Example]:
    text = README.read_text(encoding="utf-8")
    found = []
    for number, block in enumerate(re.findall(r"```graphql\n(.*?)```", text, re.S), start=1):
        for op in parse(block).definitions:
            assert isinstance(op, OperationDefinitionNode), f"block {number}: {op.kind}"
            assert op.loc is not None
            source = block[op.loc.start : op.loc.end]
            # A comment on the operation's first line may stand after its `{`, past loc's end.
            line_end = block.find("\n", op.loc.start)
            role = _ROLE.search(block[op.loc.start : max(op.loc.end, line_end)])
            found.append(
                Example(
                    block=number,
                    source=source,
                    kind=op.operation.value,
                    name=op.name.value if op.name else None,
                    role=role.group(1) if role else "ALLIANCE_ADMIN",
                    member=role.group(2) if role else None,
                    variables=[v.variable.name.value for v in op.variable_definitions or ()],
                )
            )
    return found


def test_the_readme_has_its_examples() -> None:
    kinds = [e.kind for e in examples()]
    assert kinds.count("query") >= 4 and kinds.count("mutation") >= 5
    assert kinds.count("subscription") >= 1


async def test_every_readme_example_runs_as_written(
    api: Api, demo_env: Demo, base_url: str
) -> None:
    placeholders = {"<RESIDENT_ID>": demo_env.info["sample_patients"][0]["resident_id"]}
    variables: dict[str, Any] = {"today": str(clock.today())}
    ran: list[str] = []
    subscription: Any = None
    listening: Any = None
    try:
        for example in examples():
            document = example.source
            for placeholder in set(_PLACEHOLDER.findall(document)):
                assert placeholder in placeholders, f"{example}: undocumented {placeholder}"
                document = document.replace(placeholder, placeholders[placeholder])
            missing = [v for v in example.variables if v not in variables]
            assert not missing, f"{example}: no value for ${', $'.join(missing)}"
            given = {v: variables[v] for v in example.variables}
            token = demo_env.token(example.role, example.member)
            if example.kind == "subscription":
                assert not given, f"{example}: a subscription's variables are not supported here"
                subscription = subscribed(base_url, token, document)
                listening = await subscription.__aenter__()
                ran.append(str(example))
                continue
            body = await api.run(document, given, role=example.role, member=example.member)
            assert "errors" not in body, (str(example), body["errors"])
            assert body["data"], str(example)
            ran.append(str(example))
            data = body["data"]
            if "submitMembershipApplication" in data:
                variables["id"] = data["submitMembershipApplication"]["application"]["id"]
            if "membershipApplications" in data:
                listed = [e["node"]["id"] for e in data["membershipApplications"]["edges"]]
                assert variables["id"] in listed, "Pending lists the application just submitted"
            if "signAgreement" in data:
                assert data["signAgreement"]["member"]["status"] == "ACTIVE"
                assert data["signAgreement"]["agreement"]["effectiveOn"] == variables["today"]
            if "alliance" in data and "members" in data["alliance"]:
                assert data["alliance"]["name"] == "河南省洛阳正骨医院骨伤专科联盟"
            if listening is not None and example.kind == "mutation":
                # The subscription hears at once of what the mutation did.
                event = await next_event(listening, within=10)
                created = data.get("createReferral", {}).get("referral", {})
                assert event["type"] == "REFERRAL_CREATED", event
                assert event["referral"]["id"] == created.get("id"), (event, data)
                assert re.fullmatch(r"\d+", event["cursor"])
                await subscription.__aexit__(None, None, None)
                subscription = listening = None
    finally:
        if subscription is not None:
            await subscription.__aexit__(None, None, None)
    assert subscription is None, "a subscription heard nothing of the operations after it"
    assert len(ran) == len(examples())


@pytest.mark.parametrize(
    "stale",
    ['signedOn: "2026-11-22"', 'after: "1234"', 'residentId: "…"'],
)
def test_the_examples_that_did_not_run_are_gone(stale: str) -> None:
    blocks = "".join(re.findall(r"```graphql\n(.*?)```", README.read_text(encoding="utf-8"), re.S))
    assert stale not in blocks
