"""The demo alliance through the public contract: the overview query, members, nodes."""

from __future__ import annotations

from collections import Counter

from gateway.demo.data import HOSPITALS
from tests.conftest import Api, error_codes

# DESIGN.md's contract sketch, as written.
OVERVIEW = """query { alliance { name specialty standing leadHospital { code name grade }
        council { role holder { name } hospital { name } }
        members(first: 50) { totalCount edges { node { code name grade ownership role
          agreement { status effectiveOn expiresOn } } } } } }"""

DEMO_CODES = {h.code for h in HOSPITALS}


async def test_the_overview_query_works_as_written(api: Api) -> None:
    body = await api.run(OVERVIEW, role="CLINICIAN", member="LHRM2")
    assert "errors" not in body, body
    alliance = body["data"]["alliance"]
    assert alliance["name"] == "河南省洛阳正骨医院骨伤专科联盟"
    assert alliance["standing"] == "GOOD"
    assert alliance["leadHospital"] == {
        "code": "LYZG",
        "name": "河南省洛阳正骨医院（河南省骨科医院）",
        "grade": "GRADE_3A",
    }
    seats = Counter(seat["role"] for seat in alliance["council"])
    assert seats == {"CHAIR": 1, "VICE_CHAIR": 2, "STANDING_MEMBER": 5, "SECRETARY": 1}
    assert alliance["council"][0]["hospital"]["name"].startswith("河南省洛阳正骨医院")

    members = {e["node"]["code"]: e["node"] for e in alliance["members"]["edges"]}
    assert alliance["members"]["totalCount"] == len(members)
    demo = {code: m for code, m in members.items() if code in DEMO_CODES}
    assert len(demo) >= 7
    assert members["LYZG"]["role"] == "LEAD" and members["LYZG"]["agreement"] is None
    statuses = Counter(m["agreement"]["status"] for m in demo.values() if m["agreement"])
    assert statuses["EXPIRING"] == 1 and statuses["EXPIRED"] == 1
    assert any(m["ownership"] == "PRIVATE" for m in demo.values())
    assert any(m["grade"] == "GRADE_2B" for m in demo.values())
    assert {m["grade"] for m in demo.values()} >= {"GRADE_3A", "GRADE_3B", "GRADE_2A", "GRADE_2B"}


async def test_members_pages_never_skip_or_repeat(api: Api) -> None:
    query = """query($after: String) { alliance { members(first: 3, after: $after) {
        totalCount edges { cursor node { code role } } pageInfo { hasNextPage endCursor } } } }"""
    seen: list[str] = []
    roles: list[str] = []
    after = None
    while True:
        body = await api.run(query, {"after": after}, role="OPS")
        page = body["data"]["alliance"]["members"]
        seen += [e["node"]["code"] for e in page["edges"]]
        roles += [e["node"]["role"] for e in page["edges"]]
        assert len(page["edges"]) <= 3
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert len(seen) == len(set(seen)) == page["totalCount"]
    assert roles[0] == "LEAD" and roles == sorted(roles, key=["LEAD", "BACKBONE", "MEMBER"].index)

    body = await api.run(query, {"after": "garbage"}, role="OPS")
    assert error_codes(body) == ["BAD_USER_INPUT"]


async def test_node_resolves_every_kind_of_id(api: Api) -> None:
    body = await api.run(
        """{ alliance { id leadHospital { id } members(first: 2) { edges { node { id agreement { id } } } } } }""",
        role="ALLIANCE_ADMIN",
    )
    alliance = body["data"]["alliance"]
    ids = [alliance["id"], alliance["leadHospital"]["id"]]
    for edge in alliance["members"]["edges"]:
        ids.append(edge["node"]["id"])
        if edge["node"]["agreement"]:
            ids.append(edge["node"]["agreement"]["id"])
    apps = await api.run(
        "{ membershipApplications(first: 1) { edges { node { id } } } }", role="SECRETARIAT"
    )
    ids.append(apps["data"]["membershipApplications"]["edges"][0]["node"]["id"])
    for gid in ids:
        body = await api.run(
            "query($id: ID!) { node(id: $id) { id __typename } }",
            {"id": gid},
            role="ALLIANCE_ADMIN",
        )
        assert body["data"]["node"]["id"] == gid, gid
    kinds = {
        (
            await api.run(
                "query($id: ID!) { node(id: $id) { __typename } }", {"id": g}, role="ALLIANCE_ADMIN"
            )
        )["data"]["node"]["__typename"]
        for g in ids
    }
    assert kinds == {"Alliance", "Hospital", "Member", "Agreement", "MembershipApplication"}


async def test_hospital_by_code(api: Api) -> None:
    body = await api.run(
        """{ hospital(code: "LHRH") { name ownership creditCode specialtyBeds
             membership { role status plaqueGrantedOn agreements { status } } }
             missing: hospital(code: "NOPE") { name } }""",
        role="MEMBER_ADMIN",
        member="LHZY",
    )
    hospital = body["data"]["hospital"]
    assert hospital["ownership"] == "PRIVATE" and len(hospital["creditCode"]) == 18
    assert hospital["membership"]["status"] == "ACTIVE"
    assert hospital["membership"]["plaqueGrantedOn"] is not None
    assert [a["status"] for a in hospital["membership"]["agreements"]] == ["EXPIRED"]
    assert body["data"]["missing"] is None


async def test_pending_application_is_seen_by_whom_it_concerns(api: Api) -> None:
    query = """{ membershipApplications(statuses: [SUBMITTED]) { totalCount
                 edges { node { status hospital { code } } } } }"""
    body = await api.run(query, role="SECRETARIAT")
    codes = [e["node"]["hospital"]["code"] for e in body["data"]["membershipApplications"]["edges"]]
    assert "WYRM" in codes
    own = await api.run(query, role="MEMBER_ADMIN", member="WYRM")
    assert [
        e["node"]["hospital"]["code"] for e in own["data"]["membershipApplications"]["edges"]
    ] == ["WYRM"]
    assert own["data"]["membershipApplications"]["totalCount"] == 1
    other = await api.run(query, role="MEMBER_ADMIN", member="LHZX")
    assert other["data"]["membershipApplications"]["totalCount"] == 0
    assert error_codes(await api.run(query, role="CLINICIAN", member="LHZX")) == ["FORBIDDEN"]
