"""Durability: jobs survive a restart of the bot through the journal, against the fake ComfyUI."""

import asyncio
import shutil
import uuid
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp
import pytest

from bot.comfy.stream import Backoff
from bot.config import Settings
from bot.jobs.engine import Engine
from bot.jobs.model import GenerationRequest, Job
from bot.jobs.progress import JobState
from bot.jobs.recovery import recover
from bot.jobs.store import JobStore
from bot.workflows.library import WorkflowLibrary
from tests.comfy_prompts import slow_prompt
from tests.fakes.comfy import FakeComfy

FIXTURES = Path(__file__).parent / "fixtures" / "workflows"
PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def comfy_version(both_versions: str) -> str:
    return both_versions


@asynccontextmanager
async def bot_process(fake, db: Path, workflows: WorkflowLibrary):
    """Everything one run of the bot owns, opened by the Engine as the bot opens it."""
    settings = Settings.from_env({"COMFYUI_URL": fake.url, "DATABASE_PATH": str(db)})
    engine = Engine(
        settings, workflows, has_journal=True, backoff=Backoff(0.02, 0.2), check_interval=0.1
    )
    async with engine:
        yield engine.jobs, engine.jobs.journal


def library(tmp_path):
    directory = tmp_path / "workflows"
    directory.mkdir()
    for name in ("slow.json", "slow.toml"):
        shutil.copy(FIXTURES / name, directory / name)
    return WorkflowLibrary.load(directory)


async def stop_while_running(fake, db: Path, workflows, request, *, seen_running=False) -> Job:
    """Run one bot process until ComfyUI holds `request`'s prompt running, then stop it."""
    fake.hold()
    async with bot_process(fake, db, workflows) as (queue, journal):
        job = queue.submit(request)
        await fake.wait_for_prompt(job.id, "running")
        if seen_running:  # the journal records "running" only once the bot has seen it start
            async with asyncio.timeout(5):
                async for snapshot in job.updates():
                    if snapshot.state is JobState.RUNNING:
                        break
        await journal.flush()
    return job


async def test_a_job_that_finished_while_the_bot_was_down_is_delivered(fake_comfy, tmp_path):
    workflows, db = library(tmp_path), tmp_path / "journal.db"
    request = GenerationRequest("alice", "slow", steps=3, origin={"channel": 7})
    job = await stop_while_running(fake_comfy, db, workflows, request)
    # The bot is gone; ComfyUI finishes the job meanwhile.
    fake_comfy.release()
    await fake_comfy.wait_for_prompt(job.id, "done")
    async with bot_process(fake_comfy, db, workflows) as (queue, journal):
        restored = await recover(queue, journal)
        assert [j.id for j in restored] == [job.id]
        assert restored[0].request.origin == {"channel": 7}
        async with asyncio.timeout(5):
            result = await restored[0].result()
        assert result.state is JobState.DONE
        assert result.outputs[0].data.startswith(PNG)
        await journal.flush()
        assert (await journal.store.get(job.id)).state == "done"


async def test_a_job_still_running_is_reattached_and_its_progress_resumes(fake_comfy, tmp_path):
    workflows, db = library(tmp_path), tmp_path / "journal.db"
    await stop_while_running(fake_comfy, db, workflows, GenerationRequest("alice", "slow", steps=4))
    async with bot_process(fake_comfy, db, workflows) as (queue, journal):
        (restored,) = await recover(queue, journal)
        await queue.backends[0].stream.wait_connected()
        fake_comfy.release()
        seen = []
        async with asyncio.timeout(5):
            async for snapshot in restored.updates():
                seen.append(snapshot)
        assert seen[-1].state is JobState.DONE
        assert any(s.steps == 4 and s.step > 0 for s in seen), seen


async def test_a_job_whose_comfyui_restarted_is_lost_not_done(fake_comfy, tmp_path):
    workflows, db = library(tmp_path), tmp_path / "journal.db"
    request = GenerationRequest("alice", "slow", steps=3)
    job = await stop_while_running(fake_comfy, db, workflows, request, seen_running=True)
    await fake_comfy.restart()
    fake_comfy.release()
    async with bot_process(fake_comfy, db, workflows) as (queue, journal):
        (restored,) = await recover(queue, journal)
        async with asyncio.timeout(5):
            result = await restored.result()
        assert result.state is JobState.LOST
        await journal.flush()
        assert (await journal.store.get(job.id)).state == "lost"


async def test_a_job_never_sent_is_queued_again_after_a_restart(fake_comfy, tmp_path):
    workflows, db = library(tmp_path), tmp_path / "journal.db"
    fake_comfy.hold()
    async with bot_process(fake_comfy, db, workflows) as (queue, journal):
        first = queue.submit(GenerationRequest("alice", "slow", steps=2))
        await fake_comfy.wait_for_prompt(first.id, "running")
        queue.placement.max_in_flight = 1
        waiting = queue.submit(GenerationRequest("bob", "slow", steps=2))
        await journal.flush()
        assert waiting.state is JobState.WAITING
    fake_comfy.release()
    async with bot_process(fake_comfy, db, workflows) as (queue, journal):
        restored = {j.id: j for j in await recover(queue, journal)}
        assert set(restored) == {first.id, waiting.id}
        async with asyncio.timeout(5):
            results = [await j.result() for j in restored.values()]
        assert [r.state for r in results] == [JobState.DONE, JobState.DONE]


async def test_recovering_again_in_the_same_process_leaves_followed_jobs_alone(
    fake_comfy, tmp_path
):
    workflows, db = library(tmp_path), tmp_path / "journal.db"
    fake_comfy.hold()
    async with bot_process(fake_comfy, db, workflows) as (queue, journal):
        job = queue.submit(GenerationRequest("alice", "slow", steps=2))
        await fake_comfy.wait_for_prompt(job.id, "running")
        await journal.flush()
        assert await recover(queue, journal) == []
        assert queue.jobs[job.id] is job
        fake_comfy.release()
        async with asyncio.timeout(5):
            assert (await job.result()).state is JobState.DONE


async def test_a_restored_job_that_comfyui_runs_shows_as_running_before_its_next_event(
    fake_comfy, tmp_path
):
    workflows, db = library(tmp_path), tmp_path / "journal.db"
    fake_comfy.hold()
    async with bot_process(fake_comfy, db, workflows) as (queue, journal):
        first = queue.submit(GenerationRequest("alice", "slow", steps=2))
        second = queue.submit(GenerationRequest("bob", "slow", steps=2))
        await fake_comfy.wait_for_prompt(first.id, "running")
        await fake_comfy.wait_for_prompt(second.id, "pending")
        await journal.flush()
    async with bot_process(fake_comfy, db, workflows) as (queue, journal):
        restored = {job.id: job for job in await recover(queue, journal)}
        # Held: ComfyUI sends nothing new, yet /queue says who runs and who waits.
        assert restored[first.id].state is JobState.RUNNING
        assert restored[second.id].state is JobState.QUEUED
        assert restored[second.id].snapshot.position == 1
        await journal.flush()
        assert (await journal.store.get(first.id)).state == "running"
        fake_comfy.release()
        async with asyncio.timeout(5):
            assert [(await j.result()).state for j in restored.values()] == [JobState.DONE] * 2


LEGACY_ID = "comfycord-" + "5a" * 16  # how ComfyCord named jobs before ComfyUI 0.38


async def write_legacy_job(db: Path, fake, *, state: str, backend: str | None = None) -> str:
    """Write a journal entry as the ComfyCord before canonical ids did; return the client_id."""
    async with JobStore(db) as store:
        await store.add(
            LEGACY_ID,
            requester="alice",
            workflow="slow",
            params={"steps": 2, "seed": 5},
            origin={"channel": 7},
            state=state,
        )
        if backend is not None:
            await store.update(LEGACY_ID, state=state, backend=backend)
        return await store.client_id(fake.url)


async def test_a_waiting_job_of_an_old_journal_is_sent_and_done_on_either_version(
    fake_comfy, tmp_path
):
    workflows, db = library(tmp_path), tmp_path / "journal.db"
    await write_legacy_job(db, fake_comfy, state="waiting")
    async with bot_process(fake_comfy, db, workflows) as (queue, journal):
        (restored,) = await recover(queue, journal)
        assert restored.id == LEGACY_ID  # buttons and HTTP clients still find it by this id
        async with asyncio.timeout(5):
            result = await restored.result()
        assert result.state is JobState.DONE
        await journal.flush()
        assert (await journal.store.get(LEGACY_ID)).state == "done"
    # 0.3.64 takes the old id as it is; 0.38 only its canonical UUID spelling.
    sent_as = LEGACY_ID if fake_comfy.version == "0.3.64" else str(uuid.UUID("5a" * 16))
    assert list(fake_comfy.history) == [sent_as]


async def test_a_prompt_an_old_comfycord_left_running_on_0364_is_followed_to_its_result(
    tmp_path,
):
    workflows, db = library(tmp_path), tmp_path / "journal.db"
    async with FakeComfy(version="0.3.64") as fake:
        client_id = await write_legacy_job(db, fake, state="running", backend=fake.url)
        fake.hold()
        async with aiohttp.ClientSession() as http:
            body = {
                "prompt": slow_prompt(5, steps=2),
                "prompt_id": LEGACY_ID,
                "client_id": client_id,
            }
            async with http.post(f"{fake.url}/prompt", json=body) as response:
                assert response.status == 200
        await fake.wait_for_prompt(LEGACY_ID, "running")
        async with bot_process(fake, db, workflows) as (queue, journal):
            (restored,) = await recover(queue, journal)
            assert restored.state is JobState.RUNNING
            fake.release()
            async with asyncio.timeout(5):
                result = await restored.result()
            assert result.state is JobState.DONE
            assert result.outputs[0].data.startswith(PNG)


async def test_a_job_the_journal_has_as_waiting_is_sent_once_after_a_restart(fake_comfy, tmp_path):
    workflows, db = library(tmp_path), tmp_path / "journal.db"
    job_id = str(uuid.uuid4())
    async with JobStore(db) as store:
        await store.add(job_id, requester="alice", workflow="slow", params={"steps": 2}, origin={})
    async with bot_process(fake_comfy, db, workflows) as (queue, journal):
        (restored,) = await recover(queue, journal)
        async with asyncio.timeout(5):
            result = await restored.result()
        assert result.state is JobState.DONE
    assert fake_comfy.requests.count(("POST", "/prompt")) == 1
    assert list(fake_comfy.history) == [job_id]
