"""Engine against FakeComfy: it opens journal, backends and queue from Settings, and closes them."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from bot.comfy.stream import Backoff
from bot.config import ConfigError, Settings
from bot.jobs.engine import Engine
from bot.jobs.model import GenerationRequest
from bot.jobs.progress import JobState
from bot.jobs.store import JobStore
from bot.workflows.library import WorkflowLibrary
from tests.fakes.comfy import FakeComfy

REPO = Path(__file__).resolve().parent.parent
SLOW = str(REPO / "tests" / "fixtures" / "workflows" / "slow.json")


def settings_for(url: str, tmp_path: Path, **env: str) -> Settings:
    base = {"COMFYUI_URL": url, "DATABASE_PATH": str(tmp_path / "journal.db")}
    return Settings.from_env({**base, **env})


@pytest.fixture
def library() -> WorkflowLibrary:
    return WorkflowLibrary.load(REPO / "workflows")


async def test_a_job_runs_and_is_journalled(fake_comfy: FakeComfy, tmp_path, library):
    settings = settings_for(fake_comfy.url, tmp_path, MAX_JOBS_PER_USER="4")
    async with Engine(settings, library, has_journal=True, backoff=Backoff(0.02, 0.2)) as engine:
        assert await engine.wait_connected(5) is None
        assert engine.jobs.max_per_user == 4
        job = engine.jobs.submit(GenerationRequest(requester="alice", workflow=SLOW, seed=1))
        async with asyncio.timeout(10):
            assert (await job.result()).state is JobState.DONE
        client_id = engine.backends[0].client.client_id
    async with JobStore(settings.database_path) as store:
        entry = await store.get(job.id)
        assert entry is not None
        assert entry.state == "done"
        assert entry.backend == fake_comfy.url
        # The next Engine on this journal talks to ComfyUI as the same client.
        assert await store.client_id(fake_comfy.url) == client_id


async def test_one_engine_per_server_and_no_journal_unless_asked(fake_comfy: FakeComfy, tmp_path):
    other = FakeComfy()
    async with other:
        urls = f"{fake_comfy.url},{other.url}"
        settings = settings_for(fake_comfy.url, tmp_path, COMFYUI_URLS=urls)
        async with Engine(settings, WorkflowLibrary({})) as engine:
            assert [b.url for b in engine.backends] == [fake_comfy.url, other.url]
            assert engine.jobs.journal is None
        with pytest.raises(RuntimeError, match="not open"):
            _ = engine.jobs
    assert not (tmp_path / "journal.db").exists()


async def test_a_database_that_cannot_be_opened_names_the_setting(fake_comfy: FakeComfy, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    settings = settings_for(fake_comfy.url, tmp_path, DATABASE_PATH=str(blocker / "journal.db"))
    with pytest.raises(ConfigError, match="DATABASE_PATH: cannot open"):
        async with Engine(settings, WorkflowLibrary({}), has_journal=True):
            pass
    assert fake_comfy.requests == []  # nothing reached ComfyUI


@pytest.mark.parametrize("version", ["0.3.64", "0.38"])
async def test_every_prompt_carries_the_preview_method_setting(tmp_path, library, version):
    async with FakeComfy(version=version) as fake:
        settings = settings_for(fake.url, tmp_path, PREVIEW_METHOD="taesd")
        async with Engine(settings, library, backoff=Backoff(0.02, 0.2)) as engine:
            assert await engine.wait_connected(5) is None
            job = engine.jobs.submit(GenerationRequest(requester="alice", workflow=SLOW, seed=2))
            async with asyncio.timeout(10):
                assert (await job.result()).state is JobState.DONE
        assert fake.history[job.id]["prompt"][3]["preview_method"] == "taesd"
