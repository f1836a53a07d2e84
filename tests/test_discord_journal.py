"""The Discord side of the job journal: replies found again, Retry, Reroll, /history, status."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.discord.client import ComfyShardedBot, bot_class
from bot.jobs.progress import JobState
from tests.discord_env import (
    EPHEMERAL,
    Response,
    Services,
    button,
    final_edit,
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
    """Services with a job journal in tmp_path."""
    settings = make_settings(fake_comfy.url, library_dir(tmp_path))
    async with open_services(settings, journal=True) as services:
        yield services


async def _generate(
    fake: FakeDiscord, user: int, prompt: str, **options: object
) -> tuple[Interaction, str]:
    """Run /generate; return the interaction and the job id (from its first buttons)."""
    ix = await fake.slash(
        "generate", {"prompt": prompt, "workflow": "slow", **options}, user_id=user
    )
    await ix.wait_response()
    custom_id = await wait_button(fake, ix.original_message_id or 0, "comfycord:cancel:")
    return ix, custom_id.rsplit(":", 1)[1]


def _has_png(call: RecordedCall) -> bool:
    return bool(call.files) and call.files[0][1].startswith(PNG_MAGIC)


async def test_the_reply_is_recorded_in_the_journal_and_the_token_is_never_logged(
    fake_discord: FakeDiscord,
    journaled: Services,
    caplog: pytest.LogCaptureFixture,
) -> None:
    user = fake_discord.add_user("alice")
    with caplog.at_level(logging.DEBUG, logger="bot"), caplog.at_level(logging.DEBUG, "cogs"):
        async with run_bot(journaled.new_bot()):
            ix, job_id = await _generate(fake_discord, user, "a fox")
            await fake_discord.wait_for(final_edit(ix), timeout=10)

    journal = journaled.jobs.journal
    assert journal is not None
    await journal.flush()
    entry = await journal.store.get(job_id)
    assert entry is not None
    assert entry.state == "done"
    origin = dict(entry.origin)
    assert origin["via"] == "interaction"
    assert origin["token"] == ix.token  # kept locally: it expires 15 minutes after the command
    assert origin["message_id"] == ix.original_message_id
    assert origin["channel_id"] == fake_discord.channel_id
    assert origin["guild_id"] == fake_discord.guild_id
    assert origin["application_id"] == fake_discord.application_id
    assert origin["requester_id"] == str(user)
    assert origin["token_expires"] > 0
    assert all(ix.token not in record.getMessage() for record in caplog.records)


async def test_a_lost_job_offers_retry_for_its_requester_and_runs_again(
    fake_discord: FakeDiscord, fake_comfy: FakeComfy, journaled: Services
) -> None:
    owner, stranger = fake_discord.add_user("bob"), fake_discord.add_user("mallory")
    fake_comfy.hold()
    async with run_bot(journaled.new_bot()):
        ix, job_id = await _generate(fake_discord, owner, "lost one", steps=3)
        job = journaled.jobs.get(job_id)
        async with asyncio.timeout(5):
            async for snapshot in job.updates():
                if snapshot.state is JobState.RUNNING:
                    break
        await fake_comfy.restart()  # ComfyUI forgets the running prompt
        fake_comfy.release()
        lost = await fake_discord.wait_for(final_edit(ix), timeout=10)
        assert "⚠️ ComfyUI lost this job" in lost.json["content"]
        retry = button(lost.json, "comfycord:retry:")
        assert retry == f"comfycord:retry:{job_id}"
        assert button(lost.json, "comfycord:reroll:") is not None
        message_id = ix.original_message_id or 0

        refused = await fake_discord.click(message_id, retry, user_id=stranger)
        answer = (await refused.wait_response())["data"]
        assert answer["flags"] == EPHEMERAL
        assert "can retry it" in answer["content"]

        click = await fake_discord.click(message_id, retry, user_id=owner)
        answer = await click.wait_response()  # the lost message follows the new job
        assert answer["type"] == Response.deferred_message_update.value
        final = await fake_discord.wait_for(final_edit(click), timeout=10)

    assert _has_png(final)
    new_id = final.json["embeds"][0]["footer"]["text"].removeprefix("job ")
    assert new_id != job_id
    assert fake_discord.messages[message_id]["attachments"]
    assert journaled.jobs.get(new_id).request.prompt == "lost one"
    assert journaled.jobs.get(new_id).seed == job.seed  # a retry is the same request


async def _until_delivered(services: Services) -> None:
    """Wait until the journal has recorded that every ended job's reply shows its end."""
    assert services.jobs.journal is not None
    async with asyncio.timeout(5):
        while await services.jobs.journal.undelivered():
            await asyncio.sleep(0.02)  # the mark follows Discord's answer to the final edit


async def test_reroll_after_a_restart_rebuilds_the_request_from_the_journal(
    fake_discord: FakeDiscord, fake_comfy: FakeComfy, tmp_path: Path
) -> None:
    user, other = fake_discord.add_user("erin"), fake_discord.add_user("frank")
    settings = make_settings(fake_comfy.url, library_dir(tmp_path))
    async with open_services(settings, journal=True) as services, run_bot(services.new_bot()):
        ix, old_id = await _generate(fake_discord, user, "again", seed=7)
        await fake_discord.wait_for(final_edit(ix), timeout=10)
        reroll = await wait_button(fake_discord, ix.original_message_id or 0, "comfycord:reroll:")
        await _until_delivered(services)

    # A new process: a new queue that never saw the job.
    async with open_services(settings, journal=True) as services, run_bot(services.new_bot()):
        assert old_id not in services.jobs.jobs
        click = await fake_discord.click(ix.original_message_id or 0, reroll, user_id=other)
        assert (await click.wait_response())["type"] == Response.deferred_channel_message.value
        final = await fake_discord.wait_for(final_edit(click), timeout=10)
        new_id = final.json["embeds"][0]["footer"]["text"].removeprefix("job ")
        new = services.jobs.get(new_id)

    assert _has_png(final)
    assert new.request.prompt == "again"
    assert new.request.workflow == "slow"
    assert new.request.requester == str(other)
    assert new.request.origin["token"] == click.token  # its own reply, not the old job's


async def test_a_job_running_when_the_discord_client_restarts_finishes_in_its_reply(
    fake_discord: FakeDiscord, fake_comfy: FakeComfy, journaled: Services
) -> None:
    user = fake_discord.add_user("dave")
    fake_comfy.hold()
    async with run_bot(journaled.new_bot()):
        ix, job_id = await _generate(fake_discord, user, "across", steps=3)
        await fake_comfy.wait_for_prompt(job_id, "running")

    since = len(fake_discord.calls)
    async with run_bot(journaled.new_bot()):
        fake_comfy.release()
        final = await fake_discord.wait_for(
            lambda c: webhook_of(ix)(c) and c.method == "PATCH" and _has_png(c),
            timeout=10,
            since=since,
        )

    # Edited by id through the interaction's webhook: the journal kept the token.
    assert final.path.endswith(f"/messages/{ix.original_message_id}")
    assert "✅ Done" in final.json["content"]


async def test_a_job_whose_workflow_disappeared_is_reported_after_a_restart(
    fake_discord: FakeDiscord, fake_comfy: FakeComfy, tmp_path: Path
) -> None:
    user = fake_discord.add_user("gina")
    settings = make_settings(fake_comfy.url, library_dir(tmp_path))
    fake_comfy.hold()
    async with open_services(settings, journal=True) as services, run_bot(services.new_bot()):
        ix, _ = await _generate(fake_discord, user, "orphan")
    (settings.workflows_dir / "slow.json").unlink()
    fake_comfy.release()

    since = len(fake_discord.calls)
    async with open_services(settings, journal=True) as services, run_bot(services.new_bot()):
        told = await fake_discord.wait_for(
            lambda c: webhook_of(ix)(c) and c.method == "PATCH", timeout=10, since=since
        )

    assert "could not be resumed after a restart" in told.json["content"]
    assert told.json["components"] == []


async def test_history_lists_my_jobs_and_everyone_only_for_managers(
    fake_discord: FakeDiscord, journaled: Services
) -> None:
    alice, bob = fake_discord.add_user("alice"), fake_discord.add_user("bob")
    async with run_bot(journaled.new_bot()):
        for user, prompt in ((alice, "alpha"), (bob, "beta")):
            ix, _ = await _generate(fake_discord, user, prompt)
            await fake_discord.wait_for(final_edit(ix), timeout=10)

        mine = await fake_discord.slash("history", user_id=alice)
        listing = await fake_discord.wait_for(lambda c: webhook_of(mine)(c) and c.method == "POST")
        refused = await fake_discord.slash("history", {"everyone": True}, user_id=bob)
        denied = (await refused.wait_response())["data"]
        everyone = await fake_discord.slash(
            "history", {"everyone": True}, user_id=fake_discord.owner_id
        )
        full = await fake_discord.wait_for(lambda c: webhook_of(everyone)(c) and c.method == "POST")

        reroll = button(listing.json, "comfycord:reroll:")
        assert reroll is not None
        click = await fake_discord.click(mine.original_message_id or 0, reroll, user_id=alice)
        rerolled = await fake_discord.wait_for(final_edit(click), timeout=10)

    content = listing.json["content"]
    assert listing.json["flags"] == EPHEMERAL
    assert "alpha" in content
    assert "beta" not in content
    assert "✅ done" in content
    assert (
        f"https://discord.com/channels/{fake_discord.guild_id}/{fake_discord.channel_id}/"
        in content
    )
    assert denied["flags"] == EPHEMERAL
    assert "Manage Server" in denied["content"]
    assert "alpha" in full.json["content"]
    assert "beta" in full.json["content"]
    assert f"by <@{bob}>" in full.json["content"]
    assert _has_png(rerolled)
    assert "alpha" in rerolled.json["content"]


async def test_comfy_status_lists_every_backend_up_or_down_and_our_running_job(
    fake_discord: FakeDiscord, fake_comfy: FakeComfy, tmp_path: Path
) -> None:
    async with FakeComfy() as gone:
        down_url = gone.url
    settings = make_settings(
        fake_comfy.url, library_dir(tmp_path), COMFYUI_URLS=f"{fake_comfy.url},{down_url}"
    )
    user = fake_discord.add_user("alice")
    fake_comfy.hold()
    async with open_services(settings) as services, run_bot(services.new_bot()):
        _, job_id = await _generate(fake_discord, user, "busy")
        job = services.jobs.get(job_id)
        async with asyncio.timeout(5):
            async for snapshot in job.updates():
                if snapshot.state is JobState.RUNNING:
                    break
        ix = await fake_discord.slash("comfy", subcommand="status", user_id=fake_discord.owner_id)
        answer = await fake_discord.wait_for(lambda c: webhook_of(ix)(c) and c.method == "POST")
        fake_comfy.release()
        loaded = len(services.jobs.workflows)

    lines = answer.json["content"].splitlines()
    assert lines[0].startswith(
        f"🟢 `{fake_comfy.url}` · ComfyUI 0.3.64 via /queue + /history · queue 1 · cpu: "
    )
    assert "GiB free" in lines[0]
    assert lines[1] == f"   ⚙️ running `{job_id}` “busy” for <@{user}>"
    assert lines[2].startswith(f"🔴 `{down_url}` · down: ")
    assert (
        lines[3] == f"Our queue: 0 waiting for a server, 1 in ComfyUI; {loaded} workflows loaded."
    )


async def test_waiting_jobs_say_when_no_comfyui_server_is_available(
    fake_discord: FakeDiscord, fake_comfy: FakeComfy, tmp_path: Path
) -> None:
    settings = make_settings(fake_comfy.url, library_dir(tmp_path))
    user = fake_discord.add_user("hank")
    async with open_services(settings) as services, run_bot(services.new_bot()):
        await fake_comfy.close()
        async with asyncio.timeout(5):
            # A check now, not the next round of the backend's own: it finds the server gone.
            assert not (await services.backend.check()).is_up
        assert not services.jobs.placement.has_healthy_backend
        ix = await fake_discord.slash("generate", {"prompt": "patient"}, user_id=user)
        waiting = await fake_discord.wait_for(
            lambda c: (
                webhook_of(ix)(c)
                and c.method == "PATCH"
                and "No ComfyUI server is available right now" in (c.json or {}).get("content", "")
            )
        )
        await fake_comfy.start()
        final = await fake_discord.wait_for(final_edit(ix), timeout=20)

    assert waiting.status == 200
    assert "your job will start when one is back" in waiting.json["content"]
    assert _has_png(final)


async def test_a_sharded_bot_starts_and_serves_generate(
    fake_discord: FakeDiscord, fake_comfy: FakeComfy, tmp_path: Path
) -> None:
    settings = make_settings(fake_comfy.url, library_dir(tmp_path), SHARDED="true")
    user = fake_discord.add_user("ivy")
    assert bot_class(settings) is ComfyShardedBot
    async with open_services(settings) as services, run_bot(services.new_bot(sharded=True)) as bot:
        ix = await fake_discord.slash("generate", {"prompt": "shards"}, user_id=user)
        final = await fake_discord.wait_for(final_edit(ix), timeout=10)
        shard_count = bot.shard_count

    assert _has_png(final)
    assert shard_count == 1
    assert any(c.path == "/gateway/bot" for c in fake_discord.calls)
    assert fake_discord.gateway.identifies[-1]["shard"] == [0, 1]


async def _refuse_writes(services: Services, *, is_refusing: bool) -> None:
    """Make the journal's SQLite connection refuse writes, as a file system remounted read-only."""
    assert services.jobs.journal is not None
    query = f"PRAGMA query_only = {'ON' if is_refusing else 'OFF'}"
    await services.jobs.journal.store.call(lambda db: db.execute(query))


@pytest.mark.parametrize("env", [{"MAX_IN_FLIGHT_PER_BACKEND": "1"}])
async def test_a_reply_shows_a_job_cancelled_only_once_the_journal_has_it(
    fake_discord: FakeDiscord,
    fake_comfy: FakeComfy,
    tmp_path: Path,
    env: dict[str, str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Found by the soak: "cancelled" was shown, the bot was killed before the journal wrote it,
    # and the restarted bot ran the job and posted its image under the cancelled one.
    settings = make_settings(fake_comfy.url, library_dir(tmp_path), **env)
    owner = fake_discord.add_user("gail")
    journal_at_cancel: list[str] = []

    def note_journal(call: RecordedCall) -> None:
        if "🚫" in str((call.json or {}).get("content")) and call.status == 200:
            with contextlib.closing(sqlite3.connect(settings.database_path)) as db:
                query = "SELECT state FROM jobs WHERE params LIKE '%\"waits\"%'"
                journal_at_cancel.extend(r[0] for r in db.execute(query))

    fake_discord.observe(note_journal)
    fake_comfy.hold()
    async with open_services(settings, journal=True) as services, run_bot(services.new_bot()):
        await _generate(fake_discord, owner, "runs")
        ix, job_id = await _generate(fake_discord, owner, "waits")
        await _refuse_writes(services, is_refusing=True)
        message_id = ix.original_message_id or 0
        click = await fake_discord.click(message_id, f"comfycord:cancel:{job_id}", user_id=owner)
        await click.wait_response()
        async with asyncio.timeout(5):
            while "journal busy" not in caplog.text:
                await asyncio.sleep(0.05)  # until the writer has met the refusing disk
        await _refuse_writes(services, is_refusing=False)
        await fake_discord.wait_for(final_edit(ix), timeout=10)
        fake_comfy.release()

    assert journal_at_cancel == ["cancelled"]


async def test_a_job_is_journalled_with_its_reply_from_its_first_record(
    fake_discord: FakeDiscord, fake_comfy: FakeComfy, journaled: Services
) -> None:
    # Found by the soak: a bot killed between accepting a job and its first edit restored the
    # job without its reply; it ran for nobody and the member saw "thinking…" forever.
    user = fake_discord.add_user("hal")
    fake_comfy.hold()
    async with run_bot(journaled.new_bot()):
        ix, job_id = await _generate(fake_discord, user, "found again")
        job = journaled.jobs.get(job_id)
        fake_comfy.release()

    assert job.request.origin["message_id"] == ix.original_message_id  # what `accepted` wrote
    assert job.request.origin["token"] == ix.token
    assert job.request.origin["requester_id"] == str(user)
