"""Lists read only the record fields their selection asks for (issue 14): whatever a client
selects, each field of a listed node answers what the same node answers when read whole by id,
over every kind of member source in the demo (PostgreSQL, MariaDB, FHIR)."""

from __future__ import annotations

from typing import Any

import pytest

from schema import consultations, referrals
from tests.conftest import Api

# The sub-selection of the fields that have one.
_REFERRAL_SUB = {
    "fromHospital": "{ code name }",
    "toHospital": "{ code name }",
    "patient": "{ pseudonym sex age }",
    "diagnosis": "{ code name }",
}
_CONSULTATION_SUB = {
    "requestingHospital": "{ code name }",
    "invitedHospital": "{ code name }",
    "patient": "{ pseudonym sex age }",
    "expert": "{ name title }",
    "report": "{ issuedAt expertName signed opinion }",
}


def _selection(field: str, sub: dict[str, str]) -> str:
    return f"{field} {sub.get(field, '')}"


async def _whole(api: Api, type_name: str, ids: list[str], fields: str, **who: Any) -> list[Any]:
    """The nodes read by id, every field at once: records read whole."""
    aliases = " ".join(
        f'n{i}: node(id: "{node_id}") {{ ... on {type_name} {{ {fields} }} }}'
        for i, node_id in enumerate(ids)
    )
    body = await api.run(f"{{ {aliases} }}", **who)
    assert "errors" not in body, body["errors"]
    return [body["data"][f"n{i}"] for i in range(len(ids))]


@pytest.mark.parametrize(
    ("list_field", "type_name", "reads", "sub", "who"),
    [
        ("referrals", "Referral", referrals.READS, _REFERRAL_SUB, ("CLINICIAN", "LYZG")),
        ("referrals", "Referral", referrals.READS, _REFERRAL_SUB, ("OPS", None)),
        (
            "consultations",
            "Consultation",
            consultations.READS,
            _CONSULTATION_SUB,
            ("CLINICIAN", "LYZG"),
        ),
        ("consultations", "Consultation", consultations.READS, _CONSULTATION_SUB, ("OPS", None)),
    ],
)
async def test_each_field_of_a_listed_node_answers_as_the_whole_record_does(
    api: Api,
    list_field: str,
    type_name: str,
    reads: dict[str, tuple[str, ...]],
    sub: dict[str, str],
    who: tuple[str, str | None],
) -> None:
    role, member = who
    everything = " ".join(_selection(f, sub) for f in reads)
    first = await api.run(
        f"{{ {list_field}(first: 25) {{ edges {{ node {{ id }} }} }} }}", role=role, member=member
    )
    assert "errors" not in first, first["errors"]
    ids = [e["node"]["id"] for e in first["data"][list_field]["edges"]]
    assert len(ids) == 25
    whole = await _whole(api, type_name, ids, everything, role=role, member=member)
    for field in reads:
        # Each field alone, beside the key: the list reads that field's columns and no others.
        body = await api.run(
            f"{{ {list_field}(first: 25) {{ edges {{ node {{ id {_selection(field, sub)} }} }} }} }}",
            role=role,
            member=member,
        )
        assert "errors" not in body, (field, body["errors"])
        listed = [e["node"] for e in body["data"][list_field]["edges"]]
        assert [n["id"] for n in listed] == ids, field
        assert [n[field] for n in listed] == [n[field] for n in whole], field


async def test_fragments_and_aliases_count_as_selected(api: Api) -> None:
    query = """{ referrals(first: 10) { ...Page } }
      fragment Page on ReferralConnection { edges { node { ... on Referral {
        code: diagnosis { code } ...Seen } } } }
      fragment Seen on Referral { when: createdAt status }"""
    body = await api.run(query, role="CLINICIAN", member="LYZG")
    assert "errors" not in body, body["errors"]
    nodes = [e["node"] for e in body["data"]["referrals"]["edges"]]
    assert len(nodes) == 10
    assert all(n["code"]["code"] and n["when"] and n["status"] for n in nodes)
