"""The hospitals a page names are kept between requests, and forgotten whenever the registry's
hospital table changes, whoever changes it (adapters/registry/hospital_cache.py): over the real
registry, its trigger and a listening connection of the cache's own."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence

import asyncpg

from adapters.registry.hospital_cache import HospitalCache
from adapters.registry.records import HospitalRecord
from adapters.registry.store import RegistryStore
from tests.conftest import Api, Demo

PAGE = "{ referrals(first: 1) { edges { node { fromHospital { code name } } } } }"
LISTENER = "alliance-gateway hospital cache test"


async def _until(condition: Callable[[], Awaitable[bool]], seconds: float = 5.0) -> None:
    for _ in range(int(seconds / 0.02)):
        if await condition():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("not within the time allowed")


async def test_a_page_shows_a_hospital_renamed_in_the_registry_by_anyone(
    api: Api, registry_db: asyncpg.Connection
) -> None:
    async def shown() -> dict[str, str]:
        body = await api.run(PAGE, role="SECRETARIAT")
        return dict(body["data"]["referrals"]["edges"][0]["node"]["fromHospital"])

    hospital = await shown()
    await shown()  # kept now
    renamed = hospital["name"] + "（更名）"
    try:
        # An administrator's UPDATE, not the gateway's: only the table's trigger tells.
        await registry_db.execute(
            "UPDATE hospital SET name = $2 WHERE code = $1", hospital["code"], renamed
        )

        async def renamed_shown() -> bool:
            return (await shown())["name"] == renamed

        await _until(renamed_shown)
    finally:
        await registry_db.execute(
            "UPDATE hospital SET name = $2 WHERE code = $1", hospital["code"], hospital["name"]
        )

    async def restored() -> bool:
        return (await shown())["name"] == hospital["name"]

    await _until(restored)


async def test_hospitals_are_read_once_while_the_registry_can_say_they_changed(
    demo_env: Demo, registry_db: asyncpg.Connection
) -> None:
    pool = await asyncpg.create_pool(demo_env.registry_dsn, min_size=1, max_size=2)
    store = RegistryStore(pool)
    reads: list[list[str]] = []

    async def read(codes: Sequence[str]) -> list[HospitalRecord]:
        reads.append(list(codes))
        return await store.hospitals(codes)

    cache = HospitalCache(
        read,
        lambda: asyncpg.connect(
            demo_env.registry_dsn, server_settings={"application_name": LISTENER}
        ),
        retry_seconds=0.05,
    )
    codes = ["LYZG", "LHZY"]

    async def listening() -> bool:
        return cache.listening

    async def read_again() -> bool:
        before = len(reads)
        await cache.hospitals(codes)
        return len(reads) > before

    try:
        # Not listening yet: every read goes to the registry.
        await cache.hospitals(codes)
        assert reads == [codes]
        await cache.start()
        await _until(listening)
        first = await cache.hospitals(codes)
        second = await cache.hospitals(codes)
        assert len(reads) == 2, "read once, then kept"
        assert sorted(h.code for h in first) == sorted(h.code for h in second) == sorted(codes)
        # Any statement on the table, even one that changes nothing, says to forget.
        await registry_db.execute("UPDATE hospital SET name = name WHERE code = 'LYZG'")
        await _until(read_again)
        assert not await read_again(), "kept again"
        # The listening connection lost: nothing is kept until it is back.
        await registry_db.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1",
            LISTENER,
        )
        await _until(lambda: asyncio.sleep(0, result=not cache.listening))
        assert await read_again() and await read_again()
        await _until(listening)
        await cache.hospitals(codes)
        assert not await read_again(), "kept once listening again"
    finally:
        await cache.stop()
        await pool.close()
