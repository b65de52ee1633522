"""One hospital's part of the merged lists, read page by page through the gateway as the alliance
office reads them: what the tests of a member on another kind of source check the merge with."""

from __future__ import annotations

from typing import Any

from resolvers import global_ids
from tests.conftest import Api

# field: (node type, the field it is ordered by, its parties)
LISTS = {
    "referrals": ("Referral", "createdAt", "fromHospital { code } toHospital { code }"),
    "consultations": (
        "Consultation",
        "requestedAt",
        "requestingHospital { code } invitedHospital { code }",
    ),
    "placements": ("Placement", "startsOn", "host { code } homeHospital { code }"),
}


def member_of(global_id: str, type_name: str) -> str:
    return global_ids.decode_member_key(global_id, type_name)[0]


async def all_pages(
    api: Api, field: str, hospital: str, first: int
) -> tuple[list[dict[str, Any]], int]:
    """Every node of `field` concerning `hospital`, `first` at a time, and the total."""
    _, sort, parties = LISTS[field]
    query = f"""query($first: Int, $after: String) {{ {field}(
        filter: {{hospital: "{hospital}"}}, first: $first, after: $after) {{ totalCount
        edges {{ node {{ id {sort} {parties} }} }} pageInfo {{ hasNextPage endCursor }} }} }}"""
    nodes: list[dict[str, Any]] = []
    after = None
    while True:
        body = await api.run(query, {"first": first, "after": after}, role="SECRETARIAT")
        assert "errors" not in body, body["errors"]
        page = body["data"][field]
        nodes += [e["node"] for e in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            return nodes, page["totalCount"]
        after = page["pageInfo"]["endCursor"]


async def assert_merged_in_one_order(api: Api, field: str, hospital: str) -> None:
    """`hospital`'s records are in `field`'s merged list, which pages never skip or repeat,
    newest first, in the same order whatever the page size; its referrals come merged with the
    other hospitals' about it."""
    type_name, sort, _ = LISTS[field]
    nodes, total = await all_pages(api, field, hospital, first=37)
    ids = [n["id"] for n in nodes]
    assert len(ids) == len(set(ids)) == total, "pages never skip or repeat"
    owners = {member_of(i, type_name) for i in ids}
    assert hospital in owners, "its own records"
    if field == "referrals":
        assert len(owners) >= 2, "and the others' about it, merged"
    times = [n[sort] for n in nodes]
    assert times == sorted(times, reverse=True)
    again, _ = await all_pages(api, field, hospital, first=100)
    assert [n["id"] for n in again] == ids, "the same order whatever the page size"
