"""The journal under strain: a private file, locks held by others, bad rows, pruning, Reroll."""

from __future__ import annotations

import asyncio
import logging
import shutil
import sqlite3
import stat
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path

import pytest

from bot.comfy.backend import ComfyBackend
from bot.comfy.client import ComfyClient
from bot.comfy.stream import Backoff
from bot.errors import InputsExpired, user_message
from bot.images import ImageFile
from bot.jobs import outbox
from bot.jobs.journal import Journal
from bot.jobs.model import GenerationRequest, Job, JobResult
from bot.jobs.progress import JobState
from bot.jobs.queue import JobQueue
from bot.jobs.recovery import recover
from bot.jobs.retention import Retention
from bot.jobs.store import MIGRATIONS, JobStore
from bot.workflows.library import WorkflowLibrary
from tests.fakes.comfy import FakeComfy

FIXTURES = Path(__file__).parent / "fixtures" / "workflows"
DAY = 86400.0
IMAGE = ImageFile("in.png", b"\x89PNG fake bytes")


def library(tmp_path: Path) -> WorkflowLibrary:
    directory = tmp_path / "workflows"
    directory.mkdir()
    for name in ("slow.json", "slow.toml"):
        shutil.copy(FIXTURES / name, directory / name)
    return WorkflowLibrary.load(directory)


def job(
    workflows: WorkflowLibrary, job_id: str | None = None, journal: Journal | None = None
) -> Job:
    workflow = workflows.get("slow")
    request = GenerationRequest("42", "slow", steps=1)
    return Job(request, workflow, request.graph_for(workflow), job_id=job_id, journal=journal)


@contextmanager
def write_lock(db: Path) -> Iterator[sqlite3.Connection]:
    """Hold the journal's write lock from another connection, as a second process could."""
    other = sqlite3.connect(db, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    try:
        yield other
    finally:
        other.execute("ROLLBACK")
        other.close()


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


async def test_the_journal_and_its_wal_files_are_private(tmp_path: Path) -> None:
    db = tmp_path / "journal.db"
    async with JobStore(db) as store:
        await store.add("j", requester="42", workflow="demo", params={}, origin={"token": "t"})
        files = [db, Path(f"{db}-wal"), Path(f"{db}-shm")]
        assert all(f.exists() for f in files)
        assert [mode(f) for f in files] == [0o600] * 3


async def test_an_existing_readable_journal_is_made_private(tmp_path: Path) -> None:
    db = tmp_path / "journal.db"
    async with JobStore(db):
        pass
    db.chmod(0o644)
    async with JobStore(db):
        assert mode(db) == 0o600


async def test_another_process_reading_the_journal_sees_every_write_and_loses_none(
    tmp_path: Path,
) -> None:
    # Found by the soak's kill test: the second make_private() opened and closed the database,
    # which dropped the store's POSIX locks; the next reader then deleted the live WAL.
    db = tmp_path / "journal.db"
    query = "SELECT state FROM jobs"
    read = f"import sqlite3; print(sqlite3.connect({str(db)!r}).execute({query!r}).fetchone()[0])"

    async def state_seen_by_another_process() -> str:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-c", read, stdout=asyncio.subprocess.PIPE
        )
        out, _ = await process.communicate()
        return out.decode().strip()

    async with JobStore(db) as store:
        await store.add("j", requester="42", workflow="demo", params={}, origin={})
        assert await state_seen_by_another_process() == "waiting"
        await store.update("j", state="queued")
        assert await state_seen_by_another_process() == "queued"
        await store.update("j", state="running")
    async with JobStore(db) as store:
        assert (await store.get("j")).state == "running"  # type: ignore[union-attr]


async def test_writes_wait_out_a_lock_and_none_is_dropped(tmp_path: Path) -> None:
    db, workflows = tmp_path / "journal.db", library(tmp_path)
    async with JobStore(db, busy_timeout=0.05) as store, Journal(store) as journal:
        first, second = job(workflows), job(workflows)
        async with asyncio.timeout(10):
            with write_lock(db):
                journal.accepted(first)
                journal.accepted(second)
                journal.state(first, "queued")
                assert await journal.flush(max_wait=0.3) is False  # bounded, not 5 s per write
                assert await store.get(first.id) is None
            assert await journal.flush(max_wait=5) is True
        assert (await store.get(first.id)).state == "queued"  # type: ignore[union-attr]
        assert await store.get(second.id) is not None
        assert [s for s, _ in await store.states(first.id)] == ["waiting", "queued"]


@asynccontextmanager
async def journaled_queue(
    fake_comfy: FakeComfy, tmp_path: Path, **journal_options: float
) -> AsyncIterator[tuple[JobStore, Journal, JobQueue]]:
    """A queue on one connected backend whose journal gives up on a locked file quickly."""
    async with (
        JobStore(tmp_path / "journal.db", busy_timeout=0.05) as store,
        Journal(store, flush_timeout=0.2, **journal_options) as journal,
        ComfyClient(fake_comfy.url) as client,
        ComfyBackend(client, backoff=Backoff(0.02, 0.2)) as backend,
        JobQueue([backend], library(tmp_path), journal=journal) as queue,
        asyncio.timeout(10),
    ):
        await backend.stream.wait_connected()
        await backend.check()
        yield store, journal, queue


async def test_a_prompt_waits_until_the_journal_holds_its_job(
    fake_comfy: FakeComfy, tmp_path: Path
) -> None:
    # Found by the soak: sending went on after 2 s of a refusing disk, and a kill then left
    # ComfyUI running a prompt the journal did not know (the member was never told its end).
    db = tmp_path / "journal.db"
    async with journaled_queue(fake_comfy, tmp_path) as (store, journal, queue):
        with write_lock(db):
            submitted = queue.submit(GenerationRequest("42", "slow", steps=1))
            while submitted.backend is None or not journal.backlog:
                await asyncio.sleep(0.01)  # dispatched: its sending now waits for the journal
            assert ("POST", "/prompt") not in fake_comfy.requests
            assert await store.get(submitted.id) is None  # nothing could be written yet
        result = await submitted.result()
        assert str(result.state) == "done"
        states = [s for s, _ in await store.states(submitted.id)]
    assert states[:2] == ["waiting", "submitting"]


async def test_a_journal_that_stays_unwritable_fails_the_job_before_anything_is_sent(
    fake_comfy: FakeComfy, tmp_path: Path
) -> None:
    db = tmp_path / "journal.db"
    async with journaled_queue(fake_comfy, tmp_path, send_wait=0.3) as (store, journal, queue):
        with write_lock(db):
            submitted = queue.submit(GenerationRequest("42", "slow", steps=1))
            result = await submitted.result()
        assert str(result.state) == "failed"
        assert "journal could not be written for 0.3 s" in user_message(result.error)
        assert ("POST", "/prompt") not in fake_comfy.requests
        assert await journal.flush(max_wait=5)
        assert (await store.get(submitted.id)).state == "failed"  # type: ignore[union-attr]


async def test_a_row_that_cannot_be_read_is_skipped_and_the_rest_recovered(
    fake_comfy: FakeComfy, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    db, workflows = tmp_path / "journal.db", library(tmp_path)
    async with JobStore(db) as store:
        for job_id in ("bad", "good"):
            await store.add(job_id, requester="42", workflow="slow", params={}, origin={})
    with sqlite3.connect(db) as raw:
        raw.execute("UPDATE jobs SET params = '{not json' WHERE id = 'bad'")
    caplog.set_level(logging.WARNING)
    async with (
        JobStore(db) as store,
        Journal(store) as journal,
        ComfyClient(fake_comfy.url) as client,
        ComfyBackend(client, backoff=Backoff(0.02, 0.2)) as backend,
        JobQueue([backend], workflows, journal=journal) as queue,
        asyncio.timeout(10),
    ):
        await backend.stream.wait_connected()
        assert [e.id for e in await store.unfinished()] == ["good"]
        assert await store.get("bad") is None
        restored = await recover(queue, journal)
        assert [j.id for j in restored] == ["good"]
        await restored[0].result()
    assert any("journal row bad cannot be read" in r.getMessage() for r in caplog.records)


@asynccontextmanager
async def clocked_store(db: Path) -> AsyncIterator[tuple[JobStore, list[float]]]:
    now = [100 * DAY]
    async with JobStore(db, clock=lambda: now[0]) as store:
        yield store, now


async def _ended(
    store: JobStore, now: list[float], job_id: str, ago: float, state: str = "done"
) -> None:
    """Record a job with an input image that reached `state` `ago` seconds before now."""
    now[0] -= ago
    await store.add(job_id, requester="42", workflow="slow", params={}, origin={}, images=[IMAGE])
    await store.update(job_id, state=state)
    now[0] += ago


async def test_pruning_drops_old_jobs_then_old_images_and_keeps_unfinished_ones(
    tmp_path: Path,
) -> None:
    db = tmp_path / "journal.db"
    async with clocked_store(db) as (store, now):
        await _ended(store, now, "ancient", 31 * DAY)
        await _ended(store, now, "last-week", 7 * DAY)
        await _ended(store, now, "just-now", 3600.0)
        await _ended(store, now, "still-running", 60 * DAY, state="running")
        pruned = await store.prune(Retention(jobs=30 * DAY, images=24 * 3600.0))
        assert (pruned.jobs, pruned.images) == (1, 1)
        assert await store.get("ancient") is None
        assert await store.states("ancient") == []
        assert await store.images("ancient") == ()
        week = await store.get("last-week")
        assert week is not None
        assert week.has_dropped_images
        assert await store.images("last-week") == ()
        assert await store.images("just-now") == (IMAGE,)
        assert await store.images("still-running") == (IMAGE,)
        assert not (await store.get("just-now")).has_dropped_images  # type: ignore[union-attr]
    with sqlite3.connect(db) as raw:
        assert raw.execute("PRAGMA auto_vacuum").fetchone()[0] == 2  # incremental
        assert raw.execute("PRAGMA freelist_count").fetchone()[0] == 0  # and it ran


async def test_the_journal_prunes_periodically(tmp_path: Path) -> None:
    db = tmp_path / "journal.db"
    async with clocked_store(db) as (store, now):
        retention = Retention(jobs=30 * DAY, images=DAY, every=0.01)
        async with Journal(store, retention=retention), asyncio.timeout(5):
            await _ended(store, now, "ancient", 40 * DAY)
            while await store.get("ancient") is not None:
                await asyncio.sleep(0.01)


async def test_reroll_of_a_job_whose_images_were_pruned_says_so(
    fake_comfy: FakeComfy, tmp_path: Path
) -> None:
    db, workflows = tmp_path / "journal.db", library(tmp_path)
    async with clocked_store(db) as (store, now):
        await _ended(store, now, "old", 2 * DAY)
        await store.prune(Retention(jobs=30 * DAY, images=12 * 3600.0))
        async with (
            Journal(store, retention=Retention(images=12 * 3600.0, every=3600)) as journal,
            ComfyClient(fake_comfy.url) as client,
            ComfyBackend(client) as backend,
            JobQueue([backend], workflows, journal=journal) as queue,
        ):
            with pytest.raises(InputsExpired, match="keeps them 12 hours after a job ends"):
                await queue.history.past_request("old")


async def test_a_journal_of_the_first_schema_is_migrated_and_made_incremental(
    tmp_path: Path,
) -> None:
    db = tmp_path / "old.db"
    with sqlite3.connect(db) as raw:
        raw.executescript(f"BEGIN; {MIGRATIONS[0]}; PRAGMA user_version = 1; COMMIT;")
        raw.execute(
            "INSERT INTO jobs (id, requester, workflow, params, origin, state, created_at,"
            " updated_at) VALUES ('j', '42', 'slow', '{}', '{}', 'done', 1, 1)"
        )
    async with JobStore(db) as store:
        entry = await store.get("j")
    assert entry is not None
    assert not entry.has_dropped_images
    with sqlite3.connect(db) as raw:
        assert raw.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
        assert raw.execute("PRAGMA auto_vacuum").fetchone()[0] == 2


async def test_a_done_jobs_outputs_are_kept_until_its_end_is_shown(tmp_path: Path) -> None:
    made = (ImageFile("out_00001_.png", b"\x89PNG made"), ImageFile("out_00002_.png", b"\x89PNG 2"))
    workflows = library(tmp_path)
    async with JobStore(tmp_path / "journal.db") as store, Journal(store) as journal:
        shown, unshown, failed = (
            job(workflows, n, journal) for n in ("shown", "unshown", "failed")
        )
        for each in (shown, unshown, failed):
            journal.accepted(each)
        shown.finish(JobResult(shown.id, JobState.DONE, outputs=made))
        unshown.finish(JobResult(unshown.id, JobState.DONE, outputs=made))
        failed.finish(JobResult(failed.id, JobState.FAILED, error=RuntimeError("boom")))
        journal.delivered(shown)
        await journal.flush()
        assert await journal.outputs("unshown") == made
        assert await journal.outputs("shown") == ()  # shown: the bytes went
        assert await journal.outputs("failed") == ()


async def test_outputs_never_shown_are_pruned_with_the_input_images(tmp_path: Path) -> None:
    db = tmp_path / "journal.db"
    async with clocked_store(db) as (store, now):
        for name, ago in (("old", 2 * DAY), ("new", 3600.0)):
            await _ended(store, now, name, ago)
            await store.write([outbox.keeping(name, [IMAGE])])
        await store.prune(Retention(jobs=30 * DAY, images=DAY))
        assert await outbox.kept(store, "old") == ()
        assert await outbox.kept(store, "new") == (IMAGE,)
