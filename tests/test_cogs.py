"""Cogs through injected services: a real JobQueue on FakeComfy, an interaction that records."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import discord
import pytest

from bot.comfy.backend import ComfyBackend
from bot.community.gate import Gate
from bot.community.guild import GuildSettings
from bot.community.nsfw import ImageModerator
from bot.discord.community import Community
from bot.discord.modlog import ModLog
from bot.errors import BotError, NotAllowed
from bot.jobs.journal import Journal
from bot.jobs.model import GenerationRequest
from bot.jobs.progress import JobState
from bot.jobs.queue import JobQueue
from bot.jobs.store import JobStore
from bot.workflows.library import WorkflowLibrary
from cogs.admin import Admin
from cogs.jobs import Jobs
from tests.backend_env import checked_backend
from tests.fakes.comfy import FakeComfy

REPO = Path(__file__).resolve().parent.parent
SLOW = str(REPO / "tests" / "fixtures" / "workflows" / "slow.json")


@dataclass
class Sent:
    content: str
    ephemeral: bool
    view: discord.ui.View | None = None


@dataclass
class Recorder:
    """What a cog answered: messages sent, and whether (and how) it deferred."""

    sent: list[Sent] = field(default_factory=list)
    deferred: dict[str, bool] | None = None

    async def send_message(self, content: str, *, ephemeral: bool = False) -> None:
        self.sent.append(Sent(content, ephemeral))

    async def defer(self, *, ephemeral: bool = False, thinking: bool = False) -> None:
        self.deferred = {"ephemeral": ephemeral, "thinking": thinking}

    async def send(
        self, content: str, *, ephemeral: bool = False, view: discord.ui.View | None = None
    ) -> None:
        self.sent.append(Sent(content, ephemeral, view))


def interaction(user_id: int, *, manage_guild: bool = False, guild_id: int | None = None) -> Any:
    """Return the parts of an interaction the cogs use; response and follow-up record."""
    recorder = Recorder()
    return SimpleNamespace(
        user=SimpleNamespace(id=user_id),
        guild_id=guild_id,
        channel=None,
        channel_id=1,
        permissions=discord.Permissions(manage_guild=manage_guild),
        response=recorder,
        followup=recorder,
        recorder=recorder,
    )


@pytest.fixture
async def backend(fake_comfy: FakeComfy) -> AsyncIterator[ComfyBackend]:
    async with checked_backend(fake_comfy.url) as backend:
        yield backend


async def nobody_owns(user: object) -> bool:
    return False


@pytest.fixture
async def community() -> AsyncIterator[Community]:
    """The community controls with the defaults and no journal; the mod log is never posted."""
    async with ImageModerator(None) as moderator:
        gate = Gate(GuildSettings(), None)
        yield Community(gate, moderator, ModLog(SimpleNamespace()), is_owner=nobody_owns)


@pytest.fixture
def library() -> WorkflowLibrary:
    return WorkflowLibrary.load(REPO / "workflows")


def slow(requester: str, guild_id: int | None = None) -> GenerationRequest:
    return GenerationRequest(requester=requester, workflow=SLOW, seed=1, guild_id=guild_id)


def admins(*user_ids: int) -> Any:
    """Return the cog's bot-admin check for these users (the owner and ADMIN_USER_IDS)."""

    async def is_bot_admin(user: Any) -> bool:
        return user.id in user_ids

    return is_bot_admin


async def test_queue_lists_only_the_members_unfinished_jobs(
    backend, library, fake_comfy, community
):
    fake_comfy.hold()
    async with JobQueue([backend], library, max_in_flight=1) as queue:
        mine, theirs = queue.submit(slow("42")), queue.submit(slow("7"))
        cog = Jobs(queue, community)
        asked = interaction(42)
        await cog.queue.callback(cog, asked)
        (answer,) = asked.recorder.sent
        assert answer.ephemeral
        assert mine.id in answer.content
        assert theirs.id not in answer.content
        fake_comfy.release()
        async with asyncio.timeout(10):
            await asyncio.gather(mine.result(), theirs.result())
        again = interaction(42)
        await cog.queue.callback(cog, again)
    assert again.recorder.sent == [
        Sent("You have no jobs right now.\n-# No quota applies to you.", ephemeral=True)
    ]


async def test_history_without_a_journal_is_refused_before_deferring(backend, library, community):
    async with JobQueue([backend], library) as queue:
        cog = Jobs(queue, community)
        asked = interaction(42)
        with pytest.raises(BotError, match="no job history"):
            await cog.history.callback(cog, asked)
        assert asked.recorder.deferred is None
        everyone = interaction(42)
        with pytest.raises(NotAllowed, match="Manage Server"):
            await cog.history.callback(cog, everyone, everyone=True)


async def test_history_lists_the_journal_with_reroll_buttons(backend, library, tmp_path, community):
    async with (
        JobStore(tmp_path / "journal.db") as store,
        Journal(store) as journal,
        JobQueue([backend], library, journal=journal) as queue,
    ):
        job = queue.submit(slow("42"))
        async with asyncio.timeout(10):
            assert (await job.result()).state is JobState.DONE
        await journal.flush()
        cog = Jobs(queue, community)
        asked = interaction(42)
        await cog.history.callback(cog, asked)
    assert asked.recorder.deferred == {"ephemeral": True, "thinking": True}
    (listing,) = asked.recorder.sent
    assert listing.ephemeral
    assert "✅ done" in listing.content
    assert listing.view is not None
    (reroll,) = listing.view.children
    assert isinstance(reroll, discord.ui.DynamicItem)
    assert job.id in reroll.item.custom_id


async def test_status_counts_our_jobs_and_names_the_running_one(backend, library, fake_comfy):
    fake_comfy.hold()
    async with JobQueue([backend], library, max_in_flight=1) as queue:
        running, waiting = queue.submit(slow("42")), queue.submit(slow("7"))
        await fake_comfy.wait_for_prompt(running.id, "running")
        async with asyncio.timeout(5):
            async for snapshot in running.updates():
                if snapshot.state is JobState.RUNNING:
                    break
        cog = Admin(queue, queue.backends, REPO / "workflows", is_bot_admin=admins())
        asked = interaction(1, manage_guild=True)
        await cog.status.callback(cog, asked)
        fake_comfy.release()
        async with asyncio.timeout(10):
            await asyncio.gather(running.result(), waiting.result())
    (status,) = asked.recorder.sent
    assert f"`{backend.url}`" in status.content
    assert f"running `{running.id}`" in status.content
    assert waiting.id not in status.content
    loaded = len(library)
    assert status.content.endswith(
        f"Our queue: 1 waiting for a server, 1 in ComfyUI; {loaded} workflows loaded."
    )


async def test_reload_gives_the_queue_the_new_library(backend, library, tmp_path):
    shutil.copy(REPO / "workflows" / "demo.json", tmp_path / "demo.json")
    async with JobQueue([backend], library) as queue:
        cog = Admin(queue, queue.backends, tmp_path, is_bot_admin=admins(1))
        asked = interaction(1, manage_guild=True)
        await cog.reload.callback(cog, asked)
        assert queue.workflows.names() == ["demo"]
    assert asked.recorder.sent == [Sent("Loaded 1 workflows: demo.", ephemeral=True)]


async def test_reload_is_refused_to_a_server_manager_who_is_no_bot_admin(
    backend, library, tmp_path
):
    shutil.copy(REPO / "workflows" / "demo.json", tmp_path / "demo.json")
    async with JobQueue([backend], library) as queue:
        before = queue.workflows.names()
        cog = Admin(queue, queue.backends, tmp_path, is_bot_admin=admins(99))
        asked = interaction(1, manage_guild=True, guild_id=5)
        with pytest.raises(NotAllowed, match="ADMIN_USER_IDS"):
            await cog.reload.callback(cog, asked)
        assert queue.workflows.names() == before
    assert asked.recorder.deferred is None
    assert asked.recorder.sent == []


async def test_status_shows_a_manager_only_their_servers_prompts_and_an_admin_all(
    backend, library, fake_comfy
):
    fake_comfy.hold()
    async with JobQueue([backend], library, max_in_flight=1) as queue:
        theirs = queue.submit(slow("7", guild_id=6))  # another server's job runs
        await fake_comfy.wait_for_prompt(theirs.id, "running")
        async with asyncio.timeout(5):
            async for snapshot in theirs.updates():
                if snapshot.state is JobState.RUNNING:
                    break
        cog = Admin(queue, queue.backends, REPO / "workflows", is_bot_admin=admins(1))
        manager, admin = interaction(2, manage_guild=True, guild_id=5), interaction(1, guild_id=5)
        await cog.status.callback(cog, manager)
        await cog.status.callback(cog, admin)
        fake_comfy.release()
        async with asyncio.timeout(10):
            await theirs.result()
    (seen_by_manager,) = manager.recorder.sent
    (seen_by_admin,) = admin.recorder.sent
    assert theirs.id not in seen_by_manager.content
    assert "<@7>" not in seen_by_manager.content
    assert "running 1 job of other servers" in seen_by_manager.content
    assert f"running `{theirs.id}`" in seen_by_admin.content
    assert "of other servers" not in seen_by_admin.content
