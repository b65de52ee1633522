"""Capacity-building activities (帮扶) over the real HTTP app: read by the alliance office, the
provincial regulator and the two hospitals, recorded by a MEMBER_ADMIN of one of them in its own
exchange database, once per idempotency key."""

from __future__ import annotations

import uuid
from typing import Any

from resolvers import clock
from tests.conftest import Api, error_codes

FIELDS = """
  id kind helpingHospital { code } helpedHospital { code } recordedBy { code } title startedOn
  endedOn people version
"""
LIST = """
query($filter: CapacityActivityFilter, $first: Int, $after: String) {
  capacityActivities(filter: $filter, first: $first, after: $after) {
    totalCount pageInfo { hasNextPage endCursor }
    edges { cursor node { @FIELDS@ } }
  }
}""".replace("@FIELDS@", FIELDS)
RECORD = """
mutation($input: RecordCapacityActivityInput!) {
  recordCapacityActivity(input: $input) { capacityActivity { @FIELDS@ } }
}""".replace("@FIELDS@", FIELDS)
LAST_YEAR = clock.today().year - 1


def data(body: dict[str, Any], field: str) -> Any:
    assert "errors" not in body, body
    return body["data"][field]


async def test_the_office_and_the_regulator_read_every_activity_a_hospital_its_own(
    api: Api,
) -> None:
    year = {"filter": {"year": LAST_YEAR}, "first": 100}
    office = data(await api.run(LIST, year, role="SECRETARIAT"), "capacityActivities")
    regulator = data(await api.run(LIST, year, role="REGULATOR"), "capacityActivities")
    assert office["totalCount"] == regulator["totalCount"] > 20
    nodes = [e["node"] for e in office["edges"]]
    assert {n["kind"] for n in nodes} == {"DISPATCH", "MENTORING", "NEW_TECHNIQUE", "ON_SITE_TOUR"}
    starts = [n["startedOn"] for n in nodes]
    assert starts == sorted(starts, reverse=True), "latest start first"
    assert all(s.startswith(str(LAST_YEAR)) for s in starts)
    assert {n["recordedBy"]["code"] for n in nodes} <= {"LYZG", "LHGK", "LHZX"}
    mine = data(
        await api.run(LIST, {"first": 100}, role="MEMBER_ADMIN", member="LHZY"),
        "capacityActivities",
    )
    assert mine["totalCount"] > 0
    for edge in mine["edges"]:
        node = edge["node"]
        assert "LHZY" in (node["helpingHospital"]["code"], node["helpedHospital"]["code"])
    tours = data(
        await api.run(
            LIST,
            {"filter": {"kind": "ON_SITE_TOUR", "hospital": "LHRH", "year": LAST_YEAR}},
            role="REGULATOR",
        ),
        "capacityActivities",
    )
    assert tours["totalCount"] > 0
    assert all(
        e["node"]["kind"] == "ON_SITE_TOUR" and e["node"]["helpedHospital"]["code"] == "LHRH"
        for e in tours["edges"]
    )
    # Pages follow each other without a gap or a repeat.
    first = data(
        await api.run(LIST, {**year, "first": 7}, role="SECRETARIAT"), "capacityActivities"
    )
    after = first["pageInfo"]["endCursor"]
    rest = data(
        await api.run(LIST, {**year, "first": 100, "after": after}, role="SECRETARIAT"),
        "capacityActivities",
    )
    ids = [e["node"]["id"] for e in first["edges"] + rest["edges"]]
    assert ids[: len(nodes)] == [n["id"] for n in nodes]
    assert len(set(ids)) == len(ids) == min(office["totalCount"], 107)


async def test_operations_reads_none(api: Api) -> None:
    body = await api.run(LIST, {}, role="OPS")
    assert error_codes(body) == ["FORBIDDEN"]


async def test_a_member_admin_records_one_in_its_own_database_once(api: Api) -> None:
    key = f"cap-{uuid.uuid4()}"
    today = clock.today().isoformat()
    activity = {
        "kind": "NEW_TECHNIQUE",
        "helpingHospital": "LYZG",
        "helpedHospital": "LHZY",
        "title": "  单侧双通道脊柱内镜（UBE）技术  ",
        "startedOn": today,
        "people": 3,
        "idempotencyKey": key,
    }
    body = await api.run(RECORD, {"input": activity}, role="MEMBER_ADMIN", member="LHZY")
    created = data(body, "recordCapacityActivity")["capacityActivity"]
    assert (
        created["recordedBy"]["code"] == "LHZY"
        and created["title"] == "单侧双通道脊柱内镜（UBE）技术"
    )
    assert (created["startedOn"], created["endedOn"], created["people"]) == (today, None, 3)
    again = await api.run(RECORD, {"input": activity}, role="MEMBER_ADMIN", member="LHZY")
    assert data(again, "recordCapacityActivity")["capacityActivity"]["id"] == created["id"]
    listed = data(
        await api.run(
            LIST,
            {"filter": {"kind": "NEW_TECHNIQUE", "hospital": "LHZY"}, "first": 100},
            role="REGULATOR",
        ),
        "capacityActivities",
    )
    assert [e["node"]["id"] for e in listed["edges"]].count(created["id"]) == 1


async def test_who_may_record_and_what(api: Api) -> None:
    base = {
        "kind": "ON_SITE_TOUR",
        "helpingHospital": "LYZG",
        "helpedHospital": "LHZY",
        "title": "专家巡诊",
        "startedOn": clock.today().isoformat(),
    }

    async def codes(values: dict[str, Any], role: str, member: str | None) -> list[str]:
        body = await api.run(RECORD, {"input": {**base, **values}}, role=role, member=member)
        return error_codes(body)

    assert await codes({}, "MEMBER_ADMIN", "LHRH") == ["FORBIDDEN"], "not a party"
    assert await codes({}, "REGULATOR", None) == ["FORBIDDEN"]
    assert await codes({}, "CLINICIAN", "LYZG") == ["FORBIDDEN"]
    assert await codes({"helpedHospital": "LYZG"}, "MEMBER_ADMIN", "LYZG") == ["BAD_USER_INPUT"]
    assert await codes({"title": " "}, "MEMBER_ADMIN", "LYZG") == ["BAD_USER_INPUT"]
    assert await codes({"startedOn": "2999-01-01"}, "MEMBER_ADMIN", "LYZG") == ["BAD_USER_INPUT"]
    assert await codes(
        {"startedOn": "2024-05-01", "endedOn": "2024-04-30"}, "MEMBER_ADMIN", "LYZG"
    ) == ["BAD_USER_INPUT"]
    assert await codes({"people": -1}, "MEMBER_ADMIN", "LYZG") == ["BAD_USER_INPUT"]
    assert await codes({"helpedHospital": "NOPE"}, "MEMBER_ADMIN", "LYZG") == ["BAD_USER_INPUT"]
