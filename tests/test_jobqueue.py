"""JobQueue against FakeComfy over real sockets: caps, fairness, cancel, files, updates."""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from PIL import Image

from bot.comfy.backend import CancelResult, ComfyBackend
from bot.comfy.client import ComfyClient
from bot.comfy.errors import ComfyUnavailable
from bot.comfy.stream import Backoff
from bot.errors import NotAllowed, TooManyJobs
from bot.images import ImageFile
from bot.jobs.model import GenerationRequest, Job
from bot.jobs.progress import JobState, ProgressSnapshot
from bot.jobs.queue import JobQueue
from bot.workflows.library import WorkflowInputError, WorkflowLibrary
from tests.backend_env import checked_backend
from tests.comfy_prompts import PNG_MAGIC, slow_prompt
from tests.fakes.comfy import FakeComfy

REPO = Path(__file__).resolve().parent.parent
WORKFLOWS = REPO / "workflows"
SLOW = str(REPO / "tests" / "fixtures" / "workflows" / "slow.json")  # no LoadImage, has a seed


@pytest.fixture
def comfy_version(both_versions: str) -> str:
    return both_versions


@pytest.fixture
async def backend(fake_comfy: FakeComfy) -> AsyncIterator[ComfyBackend]:
    async with checked_backend(fake_comfy.url, client_id="jobqueue-tests") as backend:
        assert backend.is_healthy
        yield backend


@pytest.fixture
def library() -> WorkflowLibrary:
    return WorkflowLibrary.load(WORKFLOWS)


def slow(requester: str, seed: int | None = None) -> GenerationRequest:
    return GenerationRequest(requester=requester, workflow=SLOW, seed=seed)


def png(width: int = 8, height: int = 6) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (200, 30, 30)).save(out, "PNG")
    return out.getvalue()


def prompt_posts(fake: FakeComfy) -> int:
    return sum(1 for request in fake.requests if request == ("POST", "/prompt"))


async def until_state(job: Job, *states: JobState) -> ProgressSnapshot:
    async with asyncio.timeout(5):
        async for snapshot in job.updates():
            if snapshot.state in states:
                return snapshot
    raise AssertionError(f"{job} ended as {job.state}, never {states}")


async def test_per_user_cap(backend: ComfyBackend, library: WorkflowLibrary, fake_comfy: FakeComfy):
    fake_comfy.hold()
    async with JobQueue([backend], library, max_per_user=2) as queue:
        first, second = queue.submit(slow("alice")), queue.submit(slow("alice"))
        with pytest.raises(TooManyJobs):
            queue.submit(slow("alice"))
        other = queue.submit(slow("bob"))

        assert len(queue.jobs) == 3
        assert {first.id, second.id, other.id} == set(queue.jobs)
        fake_comfy.release()
        async with asyncio.timeout(10):
            results = [await job.result() for job in (first, second, other)]
        assert [r.state for r in results] == [JobState.DONE] * 3
        queue.submit(slow("alice"))  # a finished job frees its place


async def test_round_robin_lets_a_newcomer_go_next(
    backend: ComfyBackend, library: WorkflowLibrary, fake_comfy: FakeComfy
):
    fake_comfy.hold()
    async with JobQueue([backend], library, max_per_user=10, max_in_flight=1) as queue:
        a_jobs = [queue.submit(slow("alice", seed)) for seed in range(4)]
        await until_state(a_jobs[0], JobState.QUEUED, JobState.RUNNING)
        b_job = queue.submit(slow("bob", 99))
        fake_comfy.release()
        async with asyncio.timeout(10):
            await asyncio.gather(*(job.result() for job in (*a_jobs, b_job)))

    order = [prompt_id for prompt_id in fake_comfy.history]
    assert order.index(b_job.id) == 1, "bob's job must run right after alice's first"
    assert order == [a_jobs[0].id, b_job.id, *(job.id for job in a_jobs[1:])]


async def test_at_most_max_in_flight_prompts_in_comfyui(
    backend: ComfyBackend, library: WorkflowLibrary, fake_comfy: FakeComfy
):
    fake_comfy.hold()
    async with JobQueue([backend], library, max_per_user=10, max_in_flight=2) as queue:
        jobs = [queue.submit(slow(f"user{i % 3}", i)) for i in range(7)]
        sent = [job for job in jobs if job.state is not JobState.WAITING]
        for job in jobs[:2]:
            await until_state(job, JobState.QUEUED, JobState.RUNNING)
        await backend.client.queue()  # one more round trip: room for a wrong dispatch

        assert fake_comfy.running is not None
        assert len(fake_comfy.pending) == 1
        assert sum(job.state is JobState.WAITING for job in jobs) == 5
        assert sent == []  # nothing is sent synchronously by submit

        peak = 0

        async def watch(job: Job) -> None:
            nonlocal peak
            async for _ in job.updates():
                peak = max(peak, len(fake_comfy.pending) + (fake_comfy.running is not None))

        fake_comfy.release()
        async with asyncio.timeout(10):
            await asyncio.gather(*(watch(job) for job in jobs))
        assert 1 <= peak <= 2
        assert all(job.state is JobState.DONE for job in jobs)


async def test_cancelling_a_waiting_job_never_reaches_comfyui(
    backend: ComfyBackend, library: WorkflowLibrary, fake_comfy: FakeComfy
):
    fake_comfy.hold()
    async with JobQueue([backend], library, max_per_user=5, max_in_flight=1) as queue:
        running = queue.submit(slow("alice", 1))
        waiting = queue.submit(slow("alice", 2))
        await until_state(running, JobState.QUEUED, JobState.RUNNING)

        assert await queue.cancel(waiting.id, by="alice") is CancelResult.REMOVED
        result = await waiting.result()
        fake_comfy.release()
        async with asyncio.timeout(5):
            assert (await running.result()).state is JobState.DONE

    assert (result.state, result.cancelled_by) == (JobState.CANCELLED, "alice")
    assert prompt_posts(fake_comfy) == 1
    assert waiting.id not in fake_comfy.history
    assert fake_comfy.interrupts == []


async def test_only_the_requester_or_a_moderator_may_cancel(
    backend: ComfyBackend, library: WorkflowLibrary, fake_comfy: FakeComfy
):
    fake_comfy.hold()
    async with JobQueue([backend], library) as queue:
        job = queue.submit(slow("alice", 3))
        await fake_comfy.wait_for_prompt(job.id, "running")

        with pytest.raises(NotAllowed):
            await queue.cancel(job.id, by="mallory")
        assert fake_comfy.interrupts == []

        assert await queue.cancel(job.id, by="mod", is_moderator=True) is CancelResult.INTERRUPTED
        fake_comfy.release()
        async with asyncio.timeout(5):
            result = await job.result()

    assert (result.state, result.cancelled_by) == (JobState.CANCELLED, "mod")
    assert fake_comfy.interrupts == [{"prompt_id": job.id}]


async def test_input_image_is_uploaded_before_the_prompt(
    backend: ComfyBackend, library: WorkflowLibrary, fake_comfy: FakeComfy
):
    data = png()
    request = GenerationRequest(
        requester="alice", workflow="demo", images=(ImageFile("photo.png", data),)
    )
    async with JobQueue([backend], library) as queue:
        job = queue.submit(request)
        async with asyncio.timeout(5):
            result = await job.result()

    assert result.state is JobState.DONE
    [(name, stored)] = fake_comfy.uploads.items()
    assert stored == data
    assert name.endswith("_photo.png")
    sent = fake_comfy.history[job.id]["prompt"][2]
    assert sent["1"]["inputs"]["image"] == name
    requests = fake_comfy.requests
    assert requests.index(("POST", "/upload/image")) < requests.index(("POST", "/prompt"))
    [output] = result.outputs
    assert output.data.startswith(PNG_MAGIC)


async def test_outputs_are_downloaded(
    backend: ComfyBackend, library: WorkflowLibrary, fake_comfy: FakeComfy
):
    async with JobQueue([backend], library) as queue:
        job = queue.submit(slow("alice", 5))
        async with asyncio.timeout(5):
            result = await job.result()

    assert result.state is JobState.DONE
    [output] = result.outputs
    assert output.data.startswith(PNG_MAGIC)
    assert fake_comfy.outputs[f"runner/{output.filename}"] == output.data
    assert ("GET", "/view") in fake_comfy.requests


async def test_a_prompt_answered_with_nonsense_fails_with_a_message_and_never_hangs(
    backend: ComfyBackend, library: WorkflowLibrary, fake_comfy: FakeComfy
):
    # Found by the soak: the KeyError of {} killed the job's task; the job never ended.
    fake_comfy.answer_strangely("json", paths=["/prompt"], count=1)
    async with JobQueue([backend], library) as queue:
        job = queue.submit(slow("alice", 5))
        async with asyncio.timeout(5):
            result = await job.result()
        assert queue.active_count("alice") == 0

    assert result.state is JobState.FAILED
    assert "the answer of POST /prompt has no 'prompt_id'" in str(result.error)


async def test_outputs_are_downloaded_after_a_few_strange_answers(
    backend: ComfyBackend, library: WorkflowLibrary, fake_comfy: FakeComfy
):
    # Found by the soak: a made image was lost to one bad answer of /view.
    fake_comfy.answer_strangely("html", paths=["/view"], count=2)
    async with JobQueue([backend], library) as queue:
        job = queue.submit(slow("alice", 5))
        async with asyncio.timeout(10):
            result = await job.result()

    assert result.state is JobState.DONE
    [output] = result.outputs
    assert output.data.startswith(PNG_MAGIC)
    assert fake_comfy.requests.count(("GET", "/view")) == 3


async def test_bad_request_is_refused_before_anything_is_sent(
    backend: ComfyBackend, library: WorkflowLibrary, fake_comfy: FakeComfy
):
    request = GenerationRequest(
        requester="alice", workflow=SLOW, images=(ImageFile("photo.png", png()),)
    )
    async with JobQueue([backend], library) as queue:
        with pytest.raises(WorkflowInputError, match="takes 0 input images"):
            queue.submit(request)
        assert queue.jobs == {}
        await backend.client.queue()  # one round trip: room for a wrong dispatch

    assert ("POST", "/prompt") not in fake_comfy.requests
    assert ("POST", "/upload/image") not in fake_comfy.requests
    assert fake_comfy.uploads == {}


async def test_updates_show_position_and_progress_and_end_final(
    backend: ComfyBackend, library: WorkflowLibrary, fake_comfy: FakeComfy
):
    fake_comfy.step_delay = 0.02
    fake_comfy.hold()
    async with JobQueue([backend], library, max_in_flight=1) as queue:
        first = queue.submit(slow("alice", 7))
        second = queue.submit(slow("bob", 8))
        await until_state(first, JobState.QUEUED, JobState.RUNNING)
        assert second.snapshot.state is JobState.WAITING
        assert second.snapshot.position == 1

        fake_comfy.release()
        async with asyncio.timeout(10):
            snapshots = [snapshot async for snapshot in second.updates()]

    assert snapshots[-1].state is JobState.DONE
    assert snapshots[-1].percent == 100.0
    assert [s for s in snapshots if s.state.is_final] == [snapshots[-1]]
    assert snapshots[0].position == 1
    running = [s for s in snapshots if s.state is JobState.RUNNING]
    assert any(s.steps == 4 and 0 < s.step <= 4 for s in running)
    assert any(s.node_class == "SlowProgress" for s in running)


async def test_cancel_while_the_prompt_is_on_its_way_still_stops_it(
    fake_comfy: FakeComfy, backend: ComfyBackend, library: WorkflowLibrary
) -> None:
    fake_comfy.hold()
    fake_comfy.slow = 0.3  # POST /prompt is answered late: the cancel lands while it travels
    async with JobQueue([backend], library) as jobs:
        job = jobs.submit(slow("alice"))
        async with asyncio.timeout(5):
            await fake_comfy.wait_for_request("POST", "/prompt")
            assert prompt_posts(fake_comfy) == 1
            assert job.state is JobState.WAITING
            fake_comfy.slow = 0  # (the POST already on its way keeps its delay)
            # The cancel waits for ComfyUI's answer to the POST, then stops the prompt there.
            outcome = await jobs.cancel(job.id, by="alice")
            assert outcome in {CancelResult.REMOVED, CancelResult.INTERRUPTED}
            fake_comfy.release()
            result = await job.result()
        await fake_comfy.wait_idle()
    assert result.state is JobState.CANCELLED
    assert result.cancelled_by == "alice"
    status = fake_comfy.history.get(job.id, {}).get("status", {}).get("status_str")
    assert status != "success"


async def test_closing_a_backend_ends_runs_still_waiting_for_their_outcome(
    fake_comfy: FakeComfy,
) -> None:
    fake_comfy.hold()
    async with ComfyClient(fake_comfy.url, timeout=5) as client:
        async with ComfyBackend(client, backoff=Backoff(0.02, 0.2)) as backend:
            run = await backend.submit(slow_prompt())
        with pytest.raises(ComfyUnavailable, match="closed"):
            async with asyncio.timeout(5):
                await run.result()
    fake_comfy.release()


async def test_only_the_newest_ended_jobs_are_kept_in_memory(
    backend: ComfyBackend, library: WorkflowLibrary
) -> None:
    async with JobQueue([backend], library, keep_finished=1) as jobs:
        first = jobs.submit(slow("alice"))
        async with asyncio.timeout(5):
            await first.result()
            second = jobs.submit(slow("alice"))
            await second.result()
        assert first.id not in jobs.jobs
        assert jobs.get(second.id) is second


async def test_waiting_positions_follow_dispatches(
    fake_comfy: FakeComfy, backend: ComfyBackend, library: WorkflowLibrary
) -> None:
    fake_comfy.hold()
    async with JobQueue([backend], library, max_in_flight=1) as jobs:
        first, second, third = (jobs.submit(slow(name)) for name in ("a", "b", "c"))
        await fake_comfy.wait_for_prompt(first.id, "running")
        assert third.snapshot.position == 2
        fake_comfy.release()
        async with asyncio.timeout(5):
            await first.result()
            async for snapshot in third.updates():  # second in flight, third next in line
                if snapshot.position == 1:
                    break
            await second.result()
            await third.result()


async def test_a_higher_priority_runs_first_and_jobs_count_per_server(
    backend: ComfyBackend, library: WorkflowLibrary, fake_comfy: FakeComfy
):
    fake_comfy.hold()
    async with JobQueue([backend], library, max_per_user=10, max_in_flight=1) as queue:
        first = queue.submit(slow("alice", 1))
        await until_state(first, JobState.QUEUED, JobState.RUNNING)
        low = [queue.submit(slow("alice", seed)) for seed in (2, 3)]
        boosted = queue.submit(GenerationRequest("bob", SLOW, seed=9, priority=2))
        # A server's own cap counts that server's jobs only.
        in_a = GenerationRequest("carol", SLOW, seed=4, guild_id=1)
        queue.submit(in_a, max_jobs=1)
        with pytest.raises(TooManyJobs, match="You already have 1 job"):
            queue.submit(in_a, max_jobs=1)
        queue.submit(GenerationRequest("carol", SLOW, seed=5, guild_id=2), max_jobs=1)
        fake_comfy.release()
        async with asyncio.timeout(10):
            await asyncio.gather(*(job.result() for job in queue.jobs.values()))

    order = list(fake_comfy.history)
    assert order[:2] == [first.id, boosted.id]
    assert order.index(boosted.id) < min(order.index(job.id) for job in low)
