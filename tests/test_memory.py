"""Ended jobs keep no bytes: released inputs, outputs and previews, counted and evicted."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.comfy.backend import ComfyBackend
from bot.errors import BotError
from bot.images import ImageFile
from bot.jobs.journal import Journal
from bot.jobs.model import GenerationRequest, Job
from bot.jobs.progress import JobState
from bot.jobs.queue import JobQueue
from bot.jobs.store import JobStore
from bot.workflows.library import WorkflowLibrary
from tests.backend_env import checked_backend
from tests.fakes.comfy import FakeComfy
from tests.http_harness import image_form, png, serve_middleware

WORKFLOWS = Path(__file__).resolve().parent.parent / "workflows"


@pytest.fixture
async def backend(fake_comfy: FakeComfy) -> AsyncIterator[ComfyBackend]:
    async with checked_backend(fake_comfy.url, client_id="memory-tests") as backend:
        yield backend


@pytest.fixture
def library() -> WorkflowLibrary:
    return WorkflowLibrary.load(WORKFLOWS)


def demo(requester: str, shade: int) -> GenerationRequest:
    image = ImageFile("in.png", png(64, 48, (shade, 0, 0)))
    return GenerationRequest(requester=requester, workflow="demo", images=(image,))


async def run(queue: JobQueue, request: GenerationRequest) -> Job:
    job = queue.submit(request)
    async with asyncio.timeout(10):
        assert (await job.result()).state is JobState.DONE
    return job


async def test_only_the_newest_ended_jobs_keep_their_bytes(backend, library):
    async with JobQueue([backend], library, max_per_user=10) as queue:
        first = await run(queue, demo("alice", 1))
        whole = await first.result()
        assert first.held_bytes == len(first.request.images[0].data) + len(whole.outputs[0].data)
        queue.ended.keep_bytes = first.held_bytes * 2  # room for two jobs like it

        later = [await run(queue, demo("alice", shade)) for shade in (2, 3, 4)]

        assert first.is_released
        assert (first.request.images, first.released_inputs) == ((), 1)
        released = await first.result()
        assert (released.outputs, released.is_released, released.state) == ((), True, whole.state)
        assert first.held_bytes == 0
        assert not later[-1].is_released
        assert (await later[-1].result()).outputs
        assert queue.ended.held_bytes <= queue.ended.keep_bytes
        assert sum(job.held_bytes for job in queue.jobs.values()) == queue.ended.held_bytes
    # Whoever awaited the result before the release still holds the whole result.
    assert whole.outputs[0].data.startswith(b"\x89PNG")


async def test_the_newest_ended_job_stays_whole_over_the_budget(backend, library):
    async with JobQueue([backend], library, keep_bytes=0) as queue:
        first = await run(queue, demo("alice", 1))
        assert not first.is_released
        second = await run(queue, demo("alice", 2))
        assert first.is_released
        assert not second.is_released
        assert queue.ended.held_bytes == second.held_bytes > 0


async def test_ended_jobs_beyond_the_count_are_forgotten_and_released(backend, library):
    async with JobQueue([backend], library, keep_finished=2) as queue:
        jobs = [await run(queue, demo("alice", shade)) for shade in range(4)]
        assert set(queue.jobs) == {jobs[2].id, jobs[3].id}
        assert jobs[0].is_released
        assert jobs[1].is_released
        assert len(queue.ended) == 2


async def test_restored_jobs_ended_lost_are_evicted_and_released_too(backend, library):
    async with JobQueue([backend], library, keep_finished=3) as queue:
        lost = [
            queue.rebuild(demo("alice", shade), f"comfycord-lost-{shade}") for shade in range(5)
        ]
        for job in lost:
            queue.adopt_lost(job)
        assert set(queue.jobs) == {job.id for job in lost[2:]}
        assert all(job.is_released for job in lost[:2])
        assert [(await job.result()).state for job in lost] == [JobState.LOST] * 5
        assert len(queue.ended) == 3


async def test_a_reroll_of_a_released_job_takes_its_images_from_the_journal(
    backend, library, tmp_path
):
    async with (
        JobStore(tmp_path / "j.db") as store,
        Journal(store) as journal,
        JobQueue([backend], library, journal=journal, keep_bytes=0) as queue,
    ):
        request = demo("alice", 9)
        first = await run(queue, request)
        await run(queue, demo("alice", 10))
        assert first.is_released

        again = await queue.history.past_request(first.id)

    assert again.images == request.images


async def test_a_reroll_of_a_released_job_without_a_journal_says_why(backend, library):
    async with JobQueue([backend], library, keep_bytes=0) as queue:
        first = await run(queue, demo("alice", 1))
        await run(queue, demo("alice", 2))

        with pytest.raises(BotError, match="input images of this job are no longer kept"):
            await queue.history.past_request(first.id)


async def test_http_outputs_of_a_released_job_answer_404_and_say_so(fake_comfy: FakeComfy):
    async with serve_middleware(fake_comfy.url, "demo") as h, asyncio.timeout(15):
        h.jobs.ended.keep_bytes = 0
        ids = []
        for shade in (1, 2):
            upload = await h.http.post("/upload/image", data=image_form(png(color=(shade, 0, 0))))
            assert upload.status == 200, await upload.text()
            queued = await h.http.post("/queue")
            assert queued.status == 202, await queued.text()
            ids.append((await queued.json())["job_id"])
            await h.jobs.get(ids[-1]).result()

        old, new = [await (await h.http.get(f"/jobs/{job_id}")).json() for job_id in ids]
        assert (old["state"], old["outputs"], old["outputs_released"]) == ("done", [], True)
        assert (new["outputs_released"], len(new["outputs"])) == (False, 1)
        gone = await h.http.get(f"/jobs/{ids[0]}/outputs/0")
        assert gone.status == 404
        error = (await gone.json())["error"]
        assert error["code"] == "unknown_output"
        assert "no longer kept" in error["message"]
        assert (await h.http.get(new["outputs"][0]["url"])).status == 200
