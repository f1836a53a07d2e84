"""The journal's writer: in order, off the queue's path, and patient with a refusing disk."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

from bot.images import ImageFile
from bot.jobs.journal import Journal
from bot.jobs.model import GenerationRequest, Job
from bot.jobs.store import JobStore
from bot.workflows.library import WorkflowLibrary

WORKFLOWS = Path(__file__).resolve().parent.parent / "workflows"


async def _limit_pages(store: JobStore, pages: int | None) -> None:
    """Let SQLite grow the file to `pages` only (None: no limit): a full disk, as SQLite sees it."""

    def work(db: sqlite3.Connection) -> None:
        count = db.execute("PRAGMA page_count").fetchone()[0] if pages is None else pages
        db.execute(f"PRAGMA max_page_count = {count if pages is not None else 1073741823}")

    await store._call(work)


def _job() -> Job:
    workflow = WorkflowLibrary.load(WORKFLOWS).resolve("demo")
    image = ImageFile("big.png", b"\x89PNG" + bytes(64 * 1024))
    request = GenerationRequest(requester="42", workflow="demo", images=(image,))
    return Job(request, workflow, request.graph_for(workflow))


async def test_a_write_refused_by_a_full_disk_is_written_once_the_disk_takes_it(tmp_path, caplog):
    # Found by the soak: writes refused for a second were dropped; the jobs stayed "waiting".
    async with JobStore(tmp_path / "journal.db") as store, Journal(store) as journal:
        current = await store._call(lambda db: db.execute("PRAGMA page_count").fetchone()[0])
        await _limit_pages(store, current)
        job = _job()
        journal.accepted(job)
        journal.state(job, "queued")
        flushed = asyncio.ensure_future(journal.flush())
        async with asyncio.timeout(5):
            while "journal write refused" not in caplog.text:
                await asyncio.sleep(0.05)  # until the writer has met the full disk
        assert await store.get(job.id) is None
        assert not flushed.done()
        await _limit_pages(store, None)
        async with asyncio.timeout(5):
            await flushed
        entry = await store.get(job.id)
        states = await store.states(job.id)

    assert entry is not None
    assert entry.state == "queued"
    assert [state for state, _ in states] == ["waiting", "queued"]
