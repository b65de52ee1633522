"""Execute once, deliver many (gateway/runtime/fanout.py): subscribers that share a selection
and a visibility class share one execution per event, and each is still sent its own copy,
audited under its own name, in order; subscribers of other visibility classes get executions of
their own and only what they may see."""

from __future__ import annotations

import asyncio
from typing import Any, cast

import asyncpg
from graphql import ExecutionResult

from adapters.registry.audit import AuditStore
from adapters.registry.store import RegistryStore
from gateway.app import create_app
from gateway.runtime import fanout
from gateway.settings import load_settings
from resolvers.context import RequestContext
from resolvers.federation import Federation
from resolvers.rules import AllianceRules
from tests.conftest import Api, Demo, serving
from tests.events_client import EVENTS, metric_sums, next_event, subscribed, until_subscribed
from tests.test_events import create_referral, latest_cursor

ENVELOPE = """subscription($after: String) { events(after: $after) {
  cursor type entityId entityType entityVersion detectedBy occurredAt } }"""
NODE = """query($id: ID!) { node(id: $id) { ... on Referral {
  id status fromHospital { code } toHospital { code } } } }"""


async def _counters(base_url: str) -> tuple[float, float]:
    executed, shared = await metric_sums(
        base_url, "alliance_subscriptions_executions_total", "alliance_subscriptions_shared_total"
    )
    return executed, shared


async def _direct(base_url: str) -> float:
    (direct,) = await metric_sums(base_url, "alliance_subscriptions_direct_total")
    return direct


async def _audited(registry_db: asyncpg.Connection, subjects: list[str]) -> dict[str, int]:
    rows = await registry_db.fetch(
        "SELECT subject, count(*) AS n FROM audit_event WHERE subject = ANY($1) GROUP BY subject",
        subjects,
    )
    return {r["subject"]: r["n"] for r in rows}


async def test_subscribers_sharing_selection_and_visibility_share_one_execution_per_event(
    api: Api, demo_env: Demo, base_url: str, registry_db: asyncpg.Connection
) -> None:
    after = await latest_cursor(registry_db)
    subjects = [f"fanout-partner-{i}" for i in range(3)]
    audited_before = await _audited(registry_db, subjects)
    async with (
        subscribed(
            base_url, demo_env.mint(subjects[0], "PARTNER_SYSTEM", hospital="LYZG"), after=after
        ) as a,
        subscribed(
            base_url, demo_env.mint(subjects[1], "PARTNER_SYSTEM", hospital="LYZG"), after=after
        ) as b,
        subscribed(
            base_url, demo_env.mint(subjects[2], "PARTNER_SYSTEM", hospital="LYZG"), after=after
        ) as c,
    ):
        await until_subscribed(base_url, 3)
        executed, shared = await _counters(base_url)
        created = [await create_referral(api, 521), await create_referral(api, 522)]
        received = [[await next_event(q) for _ in created] for q in (a, b, c)]
        executed_after, shared_after = await _counters(base_url)
    # One execution per event for the three of them; the other two were sent its result.
    assert executed_after - executed == 2
    assert shared_after - shared == 4
    for events in received:
        assert [e["entityId"] for e in events] == created
        assert int(events[0]["cursor"]) < int(events[1]["cursor"])
        assert events == received[0]
    assert received[0][0]["referral"]["toHospital"] == {"code": "LYZG"}
    # Each is audited under its own name, as if it had executed the events itself.
    await asyncio.sleep(0.5)
    audited = await _audited(registry_db, subjects)
    grown = {s: audited.get(s, 0) - audited_before.get(s, 0) for s in subjects}
    assert len(set(grown.values())) == 1, grown


async def test_other_visibility_classes_get_executions_of_their_own_and_only_their_data(
    api: Api, demo_env: Demo, base_url: str, registry_db: asyncpg.Connection
) -> None:
    after = await latest_cursor(registry_db)
    viewers = [("PARTNER_SYSTEM", "LYZG"), ("SECRETARIAT", "LYZG"), ("CLINICIAN", "LHZY")]
    async with (
        subscribed(base_url, demo_env.token(*viewers[0]), after=after) as partner,
        subscribed(base_url, demo_env.token(*viewers[1]), after=after) as office,
        subscribed(base_url, demo_env.token(*viewers[2]), after=after) as clinician,
        subscribed(base_url, demo_env.token("PARTNER_SYSTEM", "LHGK"), after=after) as outsider,
    ):
        await until_subscribed(base_url, 4)
        executed, _ = await _counters(base_url)
        referral_id = await create_referral(api, 523)
        got = [await next_event(q) for q in (partner, office, clinician)]
        executed_after, _ = await _counters(base_url)
        await asyncio.sleep(0.5)
        assert outsider.empty()
    # Three classes heard of it (the outsider is not a party): three executions.
    assert executed_after - executed == 3
    for (role, member), event in zip(viewers, got, strict=True):
        assert event["entityId"] == referral_id
        own = await api.run(NODE, {"id": referral_id}, role=role, member=member)
        assert event["referral"] == (own.get("data") or {}).get("node"), (role, own)


async def test_an_envelope_only_selection_is_executed_once_whoever_subscribes(
    api: Api, demo_env: Demo, base_url: str, registry_db: asyncpg.Connection
) -> None:
    after = await latest_cursor(registry_db)
    viewers = [demo_env.token("PARTNER_SYSTEM", "LYZG"), demo_env.token("SECRETARIAT", "LYZG")]
    async with (
        subscribed(base_url, viewers[0], document=ENVELOPE, after=after) as first,
        # Resuming from elsewhere in the log does not change what an event's result is.
        subscribed(base_url, viewers[1], document=ENVELOPE, after=str(int(after) - 1)) as second,
    ):
        await until_subscribed(base_url, 2)
        while int(after) > 0 and not second.empty():
            await next_event(second)
        executed, _ = await _counters(base_url)
        referral_id = await create_referral(api, 524)
        one = await next_event(first)
        other: dict[str, Any] = await next_event(second)
        while other["entityId"] != referral_id:
            other = await next_event(second)
        executed_after, _ = await _counters(base_url)
    assert one == other
    assert one["entityId"] == referral_id
    assert executed_after - executed == 1


async def test_caught_up_subscribers_are_written_each_event_by_the_hub_in_order(
    api: Api, demo_env: Demo, base_url: str, registry_db: asyncpg.Connection
) -> None:
    # gateway/runtime/direct_delivery.py: after its first event, through its own stream, each
    # subscriber of a pure selection is written the next ones by the hub itself.
    after = await latest_cursor(registry_db)
    viewers = [("PARTNER_SYSTEM", "LYZG"), ("SECRETARIAT", "LYZG"), ("CLINICIAN", "LHZY")]
    async with (
        subscribed(base_url, demo_env.token(*viewers[0]), document=ENVELOPE, after=after) as a,
        subscribed(base_url, demo_env.token(*viewers[1]), document=ENVELOPE, after=after) as b,
        subscribed(base_url, demo_env.token(*viewers[2]), document=ENVELOPE, after=after) as c,
    ):
        await until_subscribed(base_url, 3)
        direct = await _direct(base_url)
        executed, _ = await _counters(base_url)
        received: list[list[dict[str, Any]]] = [[], [], []]
        created = []
        for i in range(4):
            created.append(await create_referral(api, 540 + i))
            for events, queue in zip(received, (a, b, c), strict=True):
                events.append(await next_event(queue))
        direct_after = await _direct(base_url)
        executed_after, _ = await _counters(base_url)
    for events in received:
        assert [e["entityId"] for e in events] == created
        assert events == received[0]
    # The first event through each one's stream, the other three written by the hub: one
    # execution per event for all three.
    assert direct_after - direct == 9
    assert executed_after - executed == 4


async def test_direct_writes_are_compressed_like_any_message_when_compression_is_on(
    api: Api, demo_env: Demo, registry_db: asyncpg.Connection
) -> None:
    # The client (websockets, under gql) offers permessage-deflate; the server accepts it here.
    settings = load_settings(demo_env.root / "alliance.toml", events={"watch": False})
    async with serving(create_app(settings), compression=True) as url:
        after = await latest_cursor(registry_db)
        token = demo_env.token("PARTNER_SYSTEM", "LYZG")
        async with subscribed(url, token, document=ENVELOPE, after=after) as received:
            await until_subscribed(url, 1)
            direct = await _direct(url)
            created = []
            for i in range(3):
                created.append(await create_referral(api, 550 + i))
                assert (await next_event(received))["entityId"] == created[-1]
            assert await _direct(url) - direct == 2


async def test_a_shared_group_still_delivers_every_event_in_order(
    api: Api, demo_env: Demo, base_url: str, registry_db: asyncpg.Connection
) -> None:
    after = await latest_cursor(registry_db)
    token = demo_env.token("PARTNER_SYSTEM", "LYZG")
    async with (
        subscribed(base_url, token, document=EVENTS, after=after) as a,
        subscribed(base_url, token, document=EVENTS, after=after) as b,
    ):
        await until_subscribed(base_url, 2)
        created = [await create_referral(api, 530 + i) for i in range(5)]
        runs = [[await next_event(q) for _ in created] for q in (a, b)]
    for events in runs:
        assert [e["entityId"] for e in events] == created
        cursors = [int(e["cursor"]) for e in events]
        assert cursors == sorted(set(cursors))


async def test_the_groups_executing_one_event_share_its_registry_lookups() -> None:
    # Fast, beside the tests over the running app above: what each group's execution reads the
    # registry through. A thousand visibility classes naming the same hospitals would otherwise
    # ask the registry a thousand times for one event.
    shared = fanout.SharedResults()
    seen: list[tuple[int, object]] = []

    def context() -> RequestContext:
        return RequestContext(
            registry=cast(RegistryStore, object()),
            alliance_id="alliance",
            rules=AllianceRules(),
            federation=Federation([]),
            audit_store=cast(AuditStore, object()),
        )

    async def execute(group: str, cursor: int) -> None:
        async def run_in_own_task() -> None:
            ctx = context()
            ctx.next_operation()

            def run() -> ExecutionResult:
                seen.append((cursor, ctx.loaders))
                return ExecutionResult({"group": group}, None)

            await shared.outcome(group, cursor, ctx, run)

        await asyncio.create_task(run_in_own_task())

    for group in ("partner LYZG", "clinician LHZY", "office"):
        await execute(group, 41)
    await execute("office", 42)
    first = {id(loaders) for cursor, loaders in seen if cursor == 41}
    second = {id(loaders) for cursor, loaders in seen if cursor == 42}
    assert len(seen) == 4 and len(first) == 1 and len(second) == 1 and first != second
