"""ServerStore: per-server settings and usage in the journal, kept apart server by server."""

import pytest

from bot.jobs.servers import DayUsage, ServerStore
from bot.jobs.store import JobStore
from tests.clock import Clock

GUILD_A, GUILD_B = 111, 222


@pytest.fixture
async def servers(tmp_path):
    clock = Clock(5000.0)
    async with JobStore(tmp_path / "s.db", clock=clock) as store:
        yield ServerStore(store), clock


async def test_settings_are_kept_per_server_and_forgotten_when_empty(servers, tmp_path):
    store, _ = servers
    await store.save_settings(GUILD_A, {"jobs_per_member": 1})
    await store.save_settings(GUILD_A, {"jobs_per_member": 3, "banned_terms": ["x"]})
    assert await store.settings(GUILD_A) == {"jobs_per_member": 3, "banned_terms": ["x"]}
    assert await store.settings(GUILD_B) == {}
    await store.save_settings(GUILD_A, {})
    assert await store.settings(GUILD_A) == {}


async def test_settings_survive_a_reopen(tmp_path):
    async with JobStore(tmp_path / "r.db") as store:
        await ServerStore(store).save_settings(GUILD_A, {"mod_log": 9})
    async with JobStore(tmp_path / "r.db") as store:
        assert await ServerStore(store).settings(GUILD_A) == {"mod_log": 9}


async def run_job(store, clock, job_id, *, guild, outputs, seconds, requester="alice"):
    await store.store.add(
        job_id, requester=requester, workflow="demo", params={}, origin={}, guild_id=guild
    )
    await store.store.update(job_id, state="queued")
    clock.now += 3  # waiting in ComfyUI's queue does not count
    await store.store.update(job_id, state="running")
    clock.now += seconds
    await store.store.update(job_id, state="done", outputs=outputs)
    clock.now += 1


async def test_usage_counts_images_and_gpu_seconds_from_execution_start(servers):
    store, clock = servers
    day = clock.now
    await run_job(store, clock, "a1", guild=GUILD_A, outputs=["1.png", "2.png"], seconds=10)
    await run_job(store, clock, "a2", guild=GUILD_A, outputs=["3.png"], seconds=5)
    await run_job(store, clock, "b1", guild=GUILD_B, outputs=["4.png"], seconds=100)
    await run_job(store, clock, "dm", guild=None, outputs=["5.png"], seconds=7)
    await run_job(store, clock, "bob", guild=GUILD_A, outputs=["6.png"], seconds=9, requester="b")
    await store.store.add(
        "a3", requester="alice", workflow="demo", params={}, origin={}, guild_id=GUILD_A
    )
    last = clock.now
    assert await store.usage(GUILD_A, "alice", day) == DayUsage(3, 15.0, last, 1)
    assert await store.usage(GUILD_B, "alice", day) == DayUsage(1, 100.0, day + 23, 0)
    assert (await store.usage(None, "alice", day)).gpu_seconds == 7.0
    # Yesterday's jobs do not count, but the latest one still starts the cooldown.
    assert await store.usage(GUILD_A, "alice", last + 1) == DayUsage(0, 0.0, last, 0)


async def test_a_failed_or_cancelled_job_counts_its_time_but_no_images(servers):
    store, clock = servers
    day = clock.now
    await store.store.add("j", requester="alice", workflow="demo", params={}, origin={}, guild_id=1)
    await store.store.update("j", state="running")
    clock.now += 4
    await store.store.update("j", state="cancelled")
    await store.store.add("k", requester="alice", workflow="demo", params={}, origin={}, guild_id=1)
    await store.store.update("k", state="lost")  # never ran: no time
    usage = await store.usage(1, "alice", day)
    assert (usage.images, usage.gpu_seconds, usage.pending) == (0, 4.0, 0)


async def test_recent_jobs_stay_in_their_server(servers):
    store, clock = servers
    for job_id, guild, who in [("a", GUILD_A, "x"), ("b", GUILD_B, "x"), ("c", GUILD_A, "y")]:
        await store.store.add(
            job_id, requester=who, workflow="demo", params={}, origin={}, guild_id=guild
        )
        clock.now += 1
    assert [e.id for e in await store.recent(GUILD_A)] == ["c", "a"]
    assert [e.id for e in await store.recent(GUILD_A, "x")] == ["a"]
    assert [e.guild_id for e in await store.recent(GUILD_B)] == [GUILD_B]
    assert await store.recent(None) == []
