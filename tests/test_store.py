"""The job journal: schema migrations, recording, reading back across a reopen."""

import sqlite3

from bot.images import ImageFile
from bot.jobs.recorded import request_from
from bot.jobs.store import MIGRATIONS, JobStore, migrate


async def test_records_a_job_and_reads_it_back_after_reopen(tmp_path):
    path = tmp_path / "journal.db"
    ticks = iter(range(100))
    async with JobStore(path, clock=lambda: float(next(ticks))) as store:
        await store.add(
            "job-1",
            requester="42",
            workflow="demo",
            params={"prompt": "a cat", "seed": 7},
            origin={"channel_id": 5, "token_expires": 900.0},
            images=[ImageFile("in.png", b"\x89PNG data")],
        )
        await store.update("job-1", state="queued", backend="http://gpu1:8188")
        await store.update("job-1", state="running")
        client_id = await store.client_id("http://gpu1:8188")
    async with JobStore(path) as store:
        entry = await store.get("job-1")
        assert entry is not None
        assert entry.params == {"prompt": "a cat", "seed": 7}
        assert entry.origin == {"channel_id": 5, "token_expires": 900.0}
        assert (entry.backend, entry.state) == ("http://gpu1:8188", "running")
        assert [s for s, _ in await store.states("job-1")] == ["waiting", "queued", "running"]
        assert await store.images("job-1") == (ImageFile("in.png", b"\x89PNG data"),)
        assert [e.id for e in await store.unfinished()] == ["job-1"]
        assert await store.client_id("http://gpu1:8188") == client_id
        assert await store.client_id("http://gpu2:8188") != client_id
        await store.update("job-1", state="done", outputs=["out_00001_.png"])
        assert await store.unfinished() == []
        assert (await store.get("job-1")).outputs == ("out_00001_.png",)
        assert await store.get("nope") is None


async def test_recent_jobs_of_one_requester_newest_first(tmp_path):
    ticks = iter(range(100))
    async with JobStore(tmp_path / "j.db", clock=lambda: float(next(ticks))) as store:
        for n, who in enumerate(["a", "b", "a", "a"]):
            await store.add(f"j{n}", requester=who, workflow="demo", params={}, origin={})
        assert [e.id for e in await store.recent("a", limit=2)] == ["j3", "j2"]
        assert [e.id for e in await store.recent(limit=10)] == ["j3", "j2", "j1", "j0"]


def test_migrations_bring_any_version_up_to_date(tmp_path):
    db = sqlite3.connect(tmp_path / "m.db")
    assert migrate(db) == len(MIGRATIONS)
    assert db.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
    assert migrate(db) == len(MIGRATIONS)  # idempotent
    tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"jobs", "job_states", "job_images", "client_ids"} <= tables


async def test_a_stored_interaction_token_stays_out_of_reprs(tmp_path):
    origin = {"via": "interaction", "channel_id": 5, "token": "interaction-token-abc"}
    async with JobStore(tmp_path / "t.db") as store:
        await store.add("j", requester="42", workflow="demo", params={}, origin=origin)
        entry = await store.get("j")
    assert entry is not None
    assert entry.origin["token"] == "interaction-token-abc"
    request = request_from(entry, ())
    assert request.origin["token"] == "interaction-token-abc"
    assert "interaction-token-abc" not in repr(entry)
    assert "interaction-token-abc" not in repr(request)


async def test_a_requests_priority_survives_the_journal(tmp_path):
    from bot.jobs.model import GenerationRequest
    from bot.jobs.recorded import request_params

    request = GenerationRequest("42", "demo", prompt="a fox", priority=3)
    async with JobStore(tmp_path / "p.db") as store:
        params = request_params(request)
        await store.add("j", requester="42", workflow="demo", params=params, origin={})
        entry = await store.get("j")
    assert entry is not None
    assert request_from(entry, ()) == request


def test_the_server_migration_gives_earlier_discord_jobs_their_server(tmp_path):
    db = sqlite3.connect(tmp_path / "old.db")
    db.executescript(f"BEGIN; {MIGRATIONS[0]}; PRAGMA user_version = 1; COMMIT;")
    rows = [
        ("a", '{"via": "channel", "guild_id": 123456789012345678, "channel_id": 5}'),
        ("b", '{"via": "interaction", "guild_id": null, "channel_id": 6}'),  # a DM
        ("c", "{}"),  # another front door
    ]
    for job_id, origin in rows:
        db.execute(
            "INSERT INTO jobs (id, requester, workflow, params, origin, state, created_at,"
            " updated_at) VALUES (?, '1', 'demo', '{}', ?, 'done', 0, 0)",
            (job_id, origin),
        )
    db.commit()
    migrate(db)
    found = dict(db.execute("SELECT id, guild_id FROM jobs ORDER BY id"))
    assert found == {"a": 123456789012345678, "b": None, "c": None}


async def test_an_ended_job_is_undelivered_until_its_end_was_shown(tmp_path):
    now = [1000.0]
    async with JobStore(tmp_path / "d.db", clock=lambda: now[0]) as store:
        for job_id in ("old", "ends", "runs"):
            await store.add(job_id, requester="42", workflow="demo", params={}, origin={})
        await store.update("old", state="done")
        now[0] += 86400 + 1  # a day later: too old to post any more
        await store.update("ends", state="failed", error="node 2: out of memory")
        await store.update("runs", state="running")
        assert [e.id for e in await store.undelivered()] == ["ends"]
        await store.write([store.delivering("ends")])
        assert await store.undelivered() == []


def test_jobs_that_ended_before_the_delivered_column_count_as_delivered(tmp_path):
    db = sqlite3.connect(tmp_path / "v1.db")
    db.executescript(f"BEGIN; {MIGRATIONS[0]}; PRAGMA user_version = 1; COMMIT;")
    for job_id, state in (("ended", "done"), ("open", "running")):
        db.execute(
            "INSERT INTO jobs (id, requester, workflow, params, origin, state, created_at,"
            " updated_at) VALUES (?, '1', 'demo', '{}', '{}', ?, 5.0, 6.0)",
            (job_id, state),
        )
    migrate(db)
    rows = dict(db.execute("SELECT id, delivered_at FROM jobs"))
    assert rows == {"ended": 6.0, "open": None}
