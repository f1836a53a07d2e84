"""Replies found again from the journal when the interaction token no longer works."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from bot.jobs.preferences import MemberDefaults, Preferences
from tests.discord_env import (
    Services,
    library_dir,
    make_settings,
    open_services,
    wait_button,
    webhook_of,
)
from tests.fakes.comfy import FakeComfy
from tests.fakes.discord import FakeDiscord, Interaction, RecordedCall, run_bot

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
async def journaled(fake_comfy: FakeComfy, tmp_path: Path) -> AsyncIterator[Services]:
    """Services with a job journal in tmp_path (one job in ComfyUI at a time)."""
    settings = make_settings(fake_comfy.url, library_dir(tmp_path), MAX_IN_FLIGHT_PER_BACKEND="1")
    async with open_services(settings, journal=True) as services:
        yield services


async def _held_job(fake: FakeDiscord, comfy: FakeComfy, services: Services) -> Interaction:
    """Start a job on the held fake ComfyUI with one bot, which then stops."""
    user = fake.add_user("alice")
    comfy.hold()
    async with run_bot(services.new_bot()):
        ix = await fake.slash("generate", {"prompt": "kept", "workflow": "slow"}, user_id=user)
        await ix.wait_response()
        custom_id = await wait_button(fake, ix.original_message_id or 0, "comfycord:cancel:")
        await comfy.wait_for_prompt(custom_id.rsplit(":", 1)[1], "running")
    return ix


def _png_edit(path: str) -> Callable[[RecordedCall], bool]:
    def matches(call: RecordedCall) -> bool:
        has_png = bool(call.files) and call.files[0][1].startswith(PNG_MAGIC)
        return call.method == "PATCH" and call.path == path and call.status == 200 and has_png

    return matches


async def test_an_expired_token_edits_the_same_reply_with_the_bot_token(
    fake_discord: FakeDiscord, fake_comfy: FakeComfy, journaled: Services
) -> None:
    ix = await _held_job(fake_discord, fake_comfy, journaled)
    fake_discord.expire_token(ix)
    message_id = ix.original_message_id or 0
    since = len(fake_discord.calls)

    async with run_bot(journaled.new_bot()):
        fake_comfy.release()
        path = f"/channels/{fake_discord.channel_id}/messages/{message_id}"
        final = await fake_discord.wait_for(_png_edit(path), timeout=10, since=since)

    assert "✅ Done" in final.json["content"]
    assert fake_discord.messages[message_id]["attachments"]
    assert not [
        c for c in fake_discord.calls[since:] if c.method == "POST" and "/messages" in c.path
    ]


async def test_a_deleted_reply_is_replaced_by_a_new_channel_message(
    fake_discord: FakeDiscord, fake_comfy: FakeComfy, journaled: Services
) -> None:
    ix = await _held_job(fake_discord, fake_comfy, journaled)
    fake_discord.expire_token(ix)
    await fake_discord.delete_message(ix.original_message_id or 0)
    since = len(fake_discord.calls)

    async with run_bot(journaled.new_bot()):
        sent = await fake_discord.wait_for(
            lambda c: (
                c.method == "POST" and c.path == f"/channels/{fake_discord.channel_id}/messages"
            ),
            timeout=10,
            since=since,
        )
        new_id = int(sent.response["id"])
        fake_comfy.release()
        path = f"/channels/{fake_discord.channel_id}/messages/{new_id}"
        await fake_discord.wait_for(_png_edit(path), timeout=10, since=since)

    journal = journaled.jobs.journal
    assert journal is not None
    await journal.flush()
    (entry,) = await journal.store.recent(limit=1)
    assert entry.origin["message_id"] == new_id
    assert entry.origin["via"] == "channel"
    assert "token" not in entry.origin


async def test_a_waiting_job_learns_when_every_comfyui_server_goes_away(
    fake_discord: FakeDiscord, fake_comfy: FakeComfy, journaled: Services
) -> None:
    alice, bob = fake_discord.add_user("alice"), fake_discord.add_user("bob")
    fake_comfy.hold()
    async with run_bot(journaled.new_bot()):
        await fake_discord.slash("generate", {"prompt": "first", "workflow": "slow"}, user_id=alice)
        ix = await fake_discord.slash("generate", {"prompt": "second"}, user_id=bob)
        await fake_discord.wait_for(
            lambda c: webhook_of(ix)(c) and "Waiting in line" in (c.json or {}).get("content", "")
        )
        await fake_comfy.close()
        told = await fake_discord.wait_for(
            lambda c: (
                webhook_of(ix)(c)
                and "No ComfyUI server is available" in (c.json or {}).get("content", "")
            ),
            timeout=5,
        )

    assert told.status == 200
    assert "your job will start when one is back" in told.json["content"]


async def test_a_private_reply_whose_token_expired_stays_private_after_a_restart(
    fake_discord: FakeDiscord, fake_comfy: FakeComfy, journaled: Services
) -> None:
    # A private reply has no channel message to fall back to: posting one would make it public.
    user = fake_discord.add_user("paula")
    journal = journaled.jobs.journal
    assert journal is not None
    await Preferences(journal.store).save(str(user), MemberDefaults(is_private=True))
    fake_comfy.hold()
    async with run_bot(journaled.new_bot()):
        ix = await fake_discord.slash(
            "generate", {"prompt": "mine", "workflow": "slow"}, user_id=user
        )
        await ix.wait_response()
        assert ix.response_data is not None
        assert ix.response_data.get("flags", 0) & 64  # ephemeral
        custom_id = await wait_button(
            fake_discord, ix.original_message_id or 0, "comfycord:cancel:"
        )
        job_id = custom_id.rsplit(":", 1)[1]
        await fake_comfy.wait_for_prompt(job_id, "running")
    fake_discord.expire_token(ix)
    since = len(fake_discord.calls)

    async with run_bot(journaled.new_bot()):
        fake_comfy.release()
        await fake_comfy.wait_for_prompt(job_id, "done")
        async with asyncio.timeout(10):  # until the end was "shown": silently, being private
            while (entry := await journal.get(job_id)) is None or entry.state != "done":
                await asyncio.sleep(0.05)
            while job_id in {e.id for e in await journal.undelivered()}:
                await asyncio.sleep(0.05)

    channel = f"/channels/{fake_discord.channel_id}/messages"
    assert not [c for c in fake_discord.calls[since:] if c.path.startswith(channel)]
    webhook = [c for c in fake_discord.calls[since:] if ix.token in c.path]
    assert webhook
    assert all(c.status == 401 for c in webhook)  # tried through the token only, refused
