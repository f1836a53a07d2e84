"""Several ComfyUI backends: least-loaded choice, sticky uploads, moving work off a dead server."""

import asyncio
import io
import shutil
from contextlib import AsyncExitStack
from pathlib import Path

import pytest
from PIL import Image

from bot.comfy.backend import ComfyBackend
from bot.comfy.client import ComfyClient
from bot.comfy.stream import Backoff
from bot.images import ImageFile
from bot.jobs.model import GenerationRequest
from bot.jobs.progress import JobState
from bot.jobs.queue import JobQueue
from bot.workflows.library import WorkflowLibrary
from tests.fakes.comfy import FakeComfy

FIXTURES = Path(__file__).parent / "fixtures" / "workflows"


def png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 6), "teal").save(buffer, "PNG")
    return buffer.getvalue()


@pytest.fixture
def workflows(tmp_path) -> WorkflowLibrary:
    for name in ("slow.json", "slow.toml", "invert.json"):
        shutil.copy(FIXTURES / name, tmp_path / name)
    return WorkflowLibrary.load(tmp_path)


async def start_pool(stack: AsyncExitStack, fakes, workflows, **queue_options) -> JobQueue:
    backends = []
    for fake in fakes:
        client = await stack.enter_async_context(ComfyClient(fake.url, timeout=2))
        backend = ComfyBackend(
            client, backoff=Backoff(0.02, 0.1), check_interval=0.05, dead_after=0.3
        )
        backends.append(await stack.enter_async_context(backend))
    async with asyncio.timeout(5):
        for backend in backends:
            await backend.stream.wait_connected()
            while not backend.is_healthy:
                await backend.check()
    return await stack.enter_async_context(JobQueue(backends, workflows, **queue_options))


async def test_jobs_spread_over_backends_and_uploads_land_where_the_prompt_runs(workflows):
    async with FakeComfy() as one, FakeComfy() as two, AsyncExitStack() as stack:
        queue = await start_pool(stack, (one, two), workflows, max_per_user=10)
        image = ImageFile("cat.png", png())
        jobs = [
            queue.submit(GenerationRequest(f"user{n}", "invert", images=(image,))) for n in range(6)
        ]
        async with asyncio.timeout(10):
            results = [await job.result() for job in jobs]
        assert {r.state for r in results} == {JobState.DONE}
        by_server = {one.url: one, two.url: two}
        for job in jobs:
            fake = by_server[job.backend.url]
            assert job.id in fake.history
            # The prompt's LoadImage names a file uploaded to that very server.
            name = fake.history[job.id]["prompt"][2]["1"]["inputs"]["image"]
            assert name in fake.uploads
        assert {job.backend.url for job in jobs} == {one.url, two.url}


async def test_a_dead_backend_moves_its_pending_jobs_and_reports_its_running_one_lost(workflows):
    async with FakeComfy() as one, FakeComfy() as two, AsyncExitStack() as stack:
        queue = await start_pool(stack, (one, two), workflows, max_per_user=10, max_in_flight=2)
        one.hold()
        two.hold()
        jobs = [queue.submit(GenerationRequest(f"u{n}", "slow", steps=2)) for n in range(4)]
        async with asyncio.timeout(5):
            for fake in (one, two):
                while len(fake.pending) + (fake.running is not None) < 2:
                    await fake.queue.wait_change()
        victims = [job for job in jobs if job.backend.url == one.url]
        running = next(job for job in victims if job.id == one.running)
        pending = next(job for job in victims if job is not running)
        async with asyncio.timeout(5):
            # We must have heard it start (execution_start), or it counts as never started.
            async for snapshot in running.updates():
                if snapshot.state is JobState.RUNNING:
                    break
        await one.close()  # the server dies and stays down
        two.release()
        async with asyncio.timeout(10):
            results = {job.id: await job.result() for job in jobs}
        assert results[running.id].state is JobState.LOST
        assert results[pending.id].state is JobState.DONE
        assert pending.id in two.history  # moved to the healthy server and completed there
        others = [job for job in jobs if job not in victims]
        assert all(results[job.id].state is JobState.DONE for job in others)


async def test_workflow_placement_keeps_jobs_on_the_named_backend(workflows, tmp_path):
    sidecar = (tmp_path / "slow.toml").read_text()
    async with FakeComfy() as one, FakeComfy() as two, AsyncExitStack() as stack:
        host = f"127.0.0.1:{two.url.rsplit(':', 1)[1]}"
        (tmp_path / "slow.toml").write_text(f'backends = ["{host}"]\n' + sidecar)
        queue = await start_pool(stack, (one, two), WorkflowLibrary.load(tmp_path), max_per_user=10)
        jobs = [queue.submit(GenerationRequest(f"u{n}", "slow", steps=1)) for n in range(4)]
        async with asyncio.timeout(10):
            for job in jobs:
                assert (await job.result()).state is JobState.DONE
        assert all(job.id in two.history for job in jobs)
        assert not one.history


async def test_jobs_wait_while_no_backend_is_healthy_and_run_when_one_returns(workflows):
    async with FakeComfy() as fake, AsyncExitStack() as stack:
        queue = await start_pool(stack, (fake,), workflows)
        await fake.close()
        backend = queue.backends[0]
        async with asyncio.timeout(5):
            # A check now, not the next round of the backend's own: it finds the server gone.
            assert not (await backend.check()).is_up
        assert not backend.is_healthy
        assert not queue.placement.has_healthy_backend
        job = queue.submit(GenerationRequest("alice", "slow", steps=1))
        assert job.state is JobState.WAITING
        await fake.start()
        async with asyncio.timeout(10):
            assert (await job.result()).state is JobState.DONE
