"""The journal's writer: in order, off the queue's path, and patient with a refusing disk."""

from __future__ import annotations

import asyncio
from pathlib import Path

from bot.images import ImageFile
from bot.jobs.journal import Journal
from bot.jobs.model import GenerationRequest, Job
from bot.jobs.store import JobStore
from bot.workflows.library import WorkflowLibrary

WORKFLOWS = Path(__file__).resolve().parent.parent / "workflows"


async def _refuse_writes(store: JobStore, *, is_refusing: bool) -> None:
    """Make the store's SQLite connection refuse writes, as a file system remounted read-only."""
    query = f"PRAGMA query_only = {'ON' if is_refusing else 'OFF'}"
    await store._call(lambda db: db.execute(query))


def _job() -> Job:
    workflow = WorkflowLibrary.load(WORKFLOWS).resolve("demo")
    image = ImageFile("in.png", b"\x89PNG data")
    request = GenerationRequest(requester="42", workflow="demo", images=(image,))
    return Job(request, workflow, request.graph_for(workflow))


async def test_a_write_the_disk_refuses_is_written_once_the_disk_takes_it(tmp_path, caplog):
    # Found by the soak: writes refused for a second were dropped; the jobs stayed "waiting".
    async with JobStore(tmp_path / "journal.db") as store, Journal(store) as journal:
        await _refuse_writes(store, is_refusing=True)
        job = _job()
        journal.accepted(job)
        journal.state(job, "queued")
        flushed = asyncio.ensure_future(journal.flush())
        async with asyncio.timeout(5):
            while "journal write refused" not in caplog.text:
                await asyncio.sleep(0.05)  # until the writer has met the refusing disk
        assert await store.get(job.id) is None
        assert not flushed.done()
        await _refuse_writes(store, is_refusing=False)
        async with asyncio.timeout(5):
            await flushed
        entry = await store.get(job.id)
        states = await store.states(job.id)

    assert entry is not None
    assert entry.state == "queued"
    assert [state for state, _ in states] == ["waiting", "queued"]
