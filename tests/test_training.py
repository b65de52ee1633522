"""Training events and further-training placements (进修) over the real HTTP app."""

from __future__ import annotations

from datetime import date
from typing import Any

from resolvers import clock, global_ids
from tests.conftest import Api, error_codes

EVENT_FIELDS = """
  id kind mode host { code } place heldOn topic lecturers credits
  participants { hospital { code } count } totalParticipants
"""
EVENTS = """
query($filter: TrainingEventFilter, $first: Int, $after: String) {
  trainingEvents(filter: $filter, first: $first, after: $after) {
    totalCount pageInfo { hasNextPage endCursor }
    edges { cursor node { @EVENT_FIELDS@ } }
  }
}""".replace("@EVENT_FIELDS@", EVENT_FIELDS)
PLACEMENT_FIELDS = """
  id host { code } homeHospital { code } traineeName profession department supervisor
  startsOn endsOn feeWaived evaluation
"""
PLACEMENTS = """
query($filter: PlacementFilter, $first: Int, $after: String) {
  placements(filter: $filter, first: $first, after: $after) {
    totalCount pageInfo { hasNextPage endCursor }
    edges { cursor node { @PLACEMENT_FIELDS@ } }
  }
}""".replace("@PLACEMENT_FIELDS@", PLACEMENT_FIELDS)
RECORD_EVENT = """
mutation($input: RecordTrainingEventInput!) {
  recordTrainingEvent(input: $input) { trainingEvent { @EVENT_FIELDS@ } }
}""".replace("@EVENT_FIELDS@", EVENT_FIELDS)
RECORD_PLACEMENT = """
mutation($input: RecordPlacementInput!) {
  recordPlacement(input: $input) { placement { @PLACEMENT_FIELDS@ } }
}""".replace("@PLACEMENT_FIELDS@", PLACEMENT_FIELDS)
NODE = (
    "query($id: ID!) { node(id: $id) { __typename ... on TrainingEvent { "
    + EVENT_FIELDS
    + " } ... on Placement { traineeName host { code } } } }"
)
LAST_YEAR = clock.today().year - 1


def data(body: dict[str, Any], field: str) -> Any:
    assert "errors" not in body, body
    return body["data"][field]


async def test_events_of_a_year_and_kind_with_participants(api: Api) -> None:
    variables = {"filter": {"kind": "REMOTE_TEACHING", "year": LAST_YEAR}, "first": 100}
    page = data(await api.run(EVENTS, variables, role="CLINICIAN", member="LHZY"), "trainingEvents")
    # The lead teaches remotely at least ten times a year (indicator 12).
    assert 10 <= page["totalCount"] == len(page["edges"])
    held = [e["node"]["heldOn"] for e in page["edges"]]
    assert held == sorted(held, reverse=True)
    hosts = set()
    for edge in page["edges"]:
        node = edge["node"]
        hosts.add(node["host"]["code"])
        assert node["kind"] == "REMOTE_TEACHING" and node["mode"] == "ONLINE"
        assert date.fromisoformat(node["heldOn"]).year == LAST_YEAR
        assert node["participants"], node
        counts = [p["count"] for p in node["participants"]]
        assert node["totalParticipants"] == sum(counts)
        assert node["host"]["code"] in {p["hospital"]["code"] for p in node["participants"]}
    assert "LYZG" in hosts


async def test_filters_by_mode_and_hospital(api: Api) -> None:
    variables = {
        "filter": {"mode": "ON_SITE", "hospital": "LHRM6", "year": LAST_YEAR},
        "first": 100,
    }
    page = data(await api.run(EVENTS, variables, role="SECRETARIAT"), "trainingEvents")
    assert page["edges"]
    for edge in page["edges"]:
        node = edge["node"]
        codes = {node["host"]["code"], *(p["hospital"]["code"] for p in node["participants"])}
        assert node["mode"] == "ON_SITE" and "LHRM6" in codes


async def test_paging_events_by_seven_never_repeats_or_skips(api: Api) -> None:
    variables: dict[str, Any] = {"filter": {"kind": "SURGERY_DEMONSTRATION"}}
    big = data(
        await api.run(EVENTS, {**variables, "first": 100}, role="MEMBER_ADMIN", member="LHZY"),
        "trainingEvents",
    )
    assert 7 < big["totalCount"] <= 100
    expected = [e["node"]["id"] for e in big["edges"]]
    ids: list[str] = []
    after = None
    while True:
        page = data(
            await api.run(
                EVENTS,
                {**variables, "first": 7, "after": after},
                role="MEMBER_ADMIN",
                member="LHZY",
            ),
            "trainingEvents",
        )
        ids += [e["node"]["id"] for e in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert ids == expected and len(ids) == big["totalCount"]


async def test_ops_reads_training_as_the_alliance_office_does(api: Api) -> None:
    for query, field in ((EVENTS, "trainingEvents"), (PLACEMENTS, "placements")):
        ops = await api.run(query, {"first": 5}, role="OPS")
        office = await api.run(query, {"first": 5}, role="SECRETARIAT")
        assert "errors" not in ops, ops
        assert ops["data"][field] == office["data"][field]


async def test_record_an_event_and_read_it_back(api: Api) -> None:
    held_on = date(LAST_YEAR, 6, 18).isoformat()
    values = {
        "kind": "CASE_DISCUSSION",
        "mode": "ON_SITE",
        "place": "LHZY 学术报告厅",
        "heldOn": held_on,
        "topic": "疑难病例讨论：胫骨平台骨折术后感染",
        "lecturers": ["王振华", "李红"],
        "credits": 1.5,
        "participants": [{"hospital": "LHZY", "count": 24}, {"hospital": "LYZG", "count": 2}],
    }
    event = data(
        await api.run(RECORD_EVENT, {"input": values}, role="MEMBER_ADMIN", member="LHZY"),
        "recordTrainingEvent",
    )["trainingEvent"]
    assert event["host"]["code"] == "LHZY" and event["credits"] == 1.5
    assert event["totalParticipants"] == 26
    assert global_ids.decode(event["id"])[1][0] == "LHZY"

    node = data(await api.run(NODE, {"id": event["id"]}, role="CLINICIAN", member="LHGK"), "node")
    assert node["__typename"] == "TrainingEvent" and node["topic"] == values["topic"]
    assert node["participants"] == [
        {"hospital": {"code": "LHZY"}, "count": 24},
        {"hospital": {"code": "LYZG"}, "count": 2},
    ]
    variables = {
        "filter": {"kind": "CASE_DISCUSSION", "hospital": "LHZY", "year": LAST_YEAR},
        "first": 100,
    }
    page = data(await api.run(EVENTS, variables, role="SECRETARIAT"), "trainingEvents")
    assert event["id"] in [e["node"]["id"] for e in page["edges"]]

    # The alliance office may name any member as host; a MEMBER_ADMIN only its own.
    office = data(
        await api.run(
            RECORD_EVENT,
            {"input": {**values, "host": "LHZX", "participants": []}},
            role="SECRETARIAT",
        ),
        "recordTrainingEvent",
    )["trainingEvent"]
    assert office["host"]["code"] == "LHZX" and office["totalParticipants"] == 0
    body = await api.run(
        RECORD_EVENT, {"input": {**values, "host": "LHZX"}}, role="MEMBER_ADMIN", member="LHZY"
    )
    assert error_codes(body) == ["FORBIDDEN"]
    body = await api.run(RECORD_EVENT, {"input": values}, role="CLINICIAN", member="LHZY")
    assert error_codes(body) == ["FORBIDDEN"]
    for bad in (
        [{"hospital": "LHZY", "count": -1}],
        [{"hospital": "NOSUCH", "count": 3}],
        [{"hospital": "LHZY", "count": 1}, {"hospital": "LHZY", "count": 2}],
    ):
        body = await api.run(
            RECORD_EVENT,
            {"input": {**values, "participants": bad}},
            role="MEMBER_ADMIN",
            member="LHZY",
        )
        assert error_codes(body) == ["BAD_USER_INPUT"], bad


async def test_placements_are_seen_by_their_hospitals_and_the_office(api: Api) -> None:
    everything = data(await api.run(PLACEMENTS, {"first": 100}, role="SECRETARIAT"), "placements")
    assert everything["totalCount"] > 0
    mine = data(
        await api.run(PLACEMENTS, {"first": 100}, role="MEMBER_ADMIN", member="LHRM2"), "placements"
    )
    assert 0 < mine["totalCount"] < everything["totalCount"]
    for edge in mine["edges"]:
        node = edge["node"]
        assert "LHRM2" in (node["host"]["code"], node["homeHospital"]["code"])
    variables = {"filter": {"hospital": "LHZY", "year": LAST_YEAR}, "first": 100}
    page = data(await api.run(PLACEMENTS, variables, role="ALLIANCE_ADMIN"), "placements")
    for edge in page["edges"]:
        node = edge["node"]
        assert "LHZY" in (node["host"]["code"], node["homeHospital"]["code"])
        assert date.fromisoformat(node["startsOn"]).year == LAST_YEAR


async def test_record_a_placement_and_read_it_back(api: Api) -> None:
    values = {
        "homeHospital": "LHRM6",
        "traineeName": "赵进修",
        "profession": "NURSE",
        "department": "骨科护理",
        "supervisor": "刘护士长",
        "startsOn": date(LAST_YEAR, 3, 1).isoformat(),
        "endsOn": date(LAST_YEAR, 8, 31).isoformat(),
        "evaluation": "良好",
    }
    placement = data(
        await api.run(RECORD_PLACEMENT, {"input": values}, role="MEMBER_ADMIN", member="LYZG"),
        "recordPlacement",
    )["placement"]
    assert placement["host"]["code"] == "LYZG" and placement["homeHospital"]["code"] == "LHRM6"
    assert placement["feeWaived"] is True and placement["profession"] == "NURSE"

    # The home hospital reads it; a hospital that is neither side does not.
    home = await api.run(
        PLACEMENTS, {"filter": {"year": LAST_YEAR}, "first": 100}, role="CLINICIAN", member="LHRM6"
    )
    assert placement["id"] in [e["node"]["id"] for e in data(home, "placements")["edges"]]
    node = data(
        await api.run(NODE, {"id": placement["id"]}, role="CLINICIAN", member="LHRM6"), "node"
    )
    assert node == {"__typename": "Placement", "traineeName": "赵进修", "host": {"code": "LYZG"}}
    other = await api.run(NODE, {"id": placement["id"]}, role="CLINICIAN", member="LHGK")
    assert data(other, "node") is None

    office = data(
        await api.run(
            RECORD_PLACEMENT,
            {"input": {**values, "host": "LHZX", "feeWaived": False}},
            role="ALLIANCE_ADMIN",
        ),
        "recordPlacement",
    )["placement"]
    assert office["host"]["code"] == "LHZX" and office["feeWaived"] is False

    body = await api.run(
        RECORD_PLACEMENT,
        {"input": {**values, "endsOn": date(LAST_YEAR, 2, 1).isoformat()}},
        role="MEMBER_ADMIN",
        member="LYZG",
    )
    assert error_codes(body) == ["BAD_USER_INPUT"]
    assert body["errors"][0]["extensions"]["field"] == "endsOn"
    body = await api.run(
        RECORD_PLACEMENT, {"input": {**values, "host": "LHZX"}}, role="MEMBER_ADMIN", member="LYZG"
    )
    assert error_codes(body) == ["FORBIDDEN"]
