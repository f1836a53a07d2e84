"""JobQueue's queries (what cogs and recovery ask) and Job's own transitions, on FakeComfy."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.comfy.backend import ComfyBackend
from bot.errors import BotError, UnknownJob
from bot.jobs.journal import Journal
from bot.jobs.model import MAX_SEED, GenerationRequest, Job
from bot.jobs.progress import JobState
from bot.jobs.queue import JobQueue
from bot.jobs.store import JobStore, StoredState
from bot.workflows.library import UnknownWorkflow, WorkflowLibrary
from tests.backend_env import checked_backend
from tests.fakes.comfy import FakeComfy

REPO = Path(__file__).resolve().parent.parent
SLOW = str(REPO / "tests" / "fixtures" / "workflows" / "slow.json")


@pytest.fixture
async def backend(fake_comfy: FakeComfy) -> AsyncIterator[ComfyBackend]:
    async with checked_backend(fake_comfy.url) as backend:
        yield backend


@pytest.fixture
def library() -> WorkflowLibrary:
    return WorkflowLibrary.load(REPO / "workflows")


def slow(requester: str, seed: int = 1) -> GenerationRequest:
    return GenerationRequest(requester=requester, workflow=SLOW, seed=seed)


async def until(job: Job, state: JobState) -> None:
    async with asyncio.timeout(5):
        async for snapshot in job.updates():
            if snapshot.state is state:
                return
    raise AssertionError(f"{job} ended as {job.state}, never {state}")


async def test_active_running_and_dispatched(backend, library, fake_comfy: FakeComfy):
    fake_comfy.hold()
    async with JobQueue([backend], library, max_per_user=5, max_in_flight=1) as queue:
        first, second = queue.submit(slow("alice", 1)), queue.submit(slow("bob", 2))
        await until(first, JobState.RUNNING)
        assert queue.active() == [first, second]
        assert queue.active("bob") == [second]
        assert queue.running_on(backend) == [first]
        assert queue.dispatched_count() == 1  # bob's waits in our own queue
        assert queue.find(first.id) is first
        assert queue.find("comfycord-unknown") is None
        assert queue.backend_at(backend.url) is backend
        assert queue.backend_at("http://elsewhere:8188") is None
        fake_comfy.release()
        async with asyncio.timeout(10):
            await asyncio.gather(first.result(), second.result())
        assert queue.active() == []
        assert queue.running_on(backend) == []


async def test_reloaded_workflows_serve_new_jobs(backend, library):
    async with JobQueue([backend], library) as queue:
        queue.submit(GenerationRequest(requester="alice", workflow="demo"))
        empty = WorkflowLibrary({})
        queue.reload_workflows(empty)
        assert queue.workflows is empty
        with pytest.raises(UnknownWorkflow):
            queue.submit(GenerationRequest(requester="alice", workflow="demo"))


async def test_without_a_journal_there_is_no_history(backend, library):
    async with JobQueue([backend], library) as queue:
        with pytest.raises(BotError, match="no job history"):
            queue.history.check()
        with pytest.raises(BotError, match="no job history"):
            await queue.history.recent(None, limit=5)
        with pytest.raises(UnknownJob):
            await queue.history.past_request("comfycord-never")


async def test_a_past_request_comes_from_the_journal_without_its_origin(backend, library, tmp_path):
    request = GenerationRequest(
        requester="alice", workflow=SLOW, seed=7, origin={"channel_id": "1"}
    )
    async with JobStore(tmp_path / "j.db") as store, Journal(store) as journal:
        async with JobQueue([backend], library, journal=journal) as queue:
            job = queue.submit(request)
            async with asyncio.timeout(10):
                await job.result()
            assert (await queue.history.past_request(job.id)).origin == {}
            assert [e.id for e in await queue.history.recent("alice", limit=5)] == [job.id]
        async with JobQueue([backend], library, journal=journal) as later:
            assert later.find(job.id) is None
            again = await later.history.past_request(job.id)
        assert (again.seed, again.requester, again.origin) == (7, "alice", {})
        states = [state for state, _ in await store.states(job.id)]
    assert states == ["waiting", "submitting", "queued", "running", "done"]
    assert all(isinstance(StoredState(s), StoredState) for s in states)


def test_stored_states_say_which_ones_comfyui_may_know():
    assert {s for s in StoredState if s.may_be_in_comfy} == {
        StoredState.SUBMITTING,
        StoredState.QUEUED,
        StoredState.RUNNING,
    }
    assert {StoredState.of(s) for s in JobState} == set(StoredState) - {StoredState.SUBMITTING}


async def test_a_requeued_job_waits_again_and_is_journalled(library, tmp_path):
    workflow = library.resolve(SLOW)
    request = slow("alice")

    class Recorder:
        def __init__(self) -> None:
            self.states: list[StoredState] = []

        def state(self, job, state, *, backend=None):
            self.states.append(state)

        def finished(self, job, result):
            self.states.append(StoredState.of(result.state))

    recorder = Recorder()
    job = Job(request, workflow, request.graph_for(workflow), journal=recorder)
    job.record(JobState.QUEUED)
    job.requeue()
    assert job.state is JobState.WAITING
    assert job.backend is None
    job.mark_sent()
    async with asyncio.timeout(1):
        await job.wait_sent()
    assert recorder.states == [StoredState.QUEUED, StoredState.WAITING]


def test_a_seed_is_drawn_once_and_only_where_the_workflow_has_one(library):
    slow_workflow, demo = library.resolve(SLOW), library.resolve("demo")
    drawn = GenerationRequest(requester="alice", workflow=SLOW).seeded(slow_workflow)
    assert drawn.seed is not None
    assert 0 <= drawn.seed < MAX_SEED
    assert drawn.seeded(slow_workflow) is drawn  # a seed given (or drawn) is kept
    no_seed = GenerationRequest(requester="alice", workflow="demo")
    assert no_seed.seeded(demo).seed is None
