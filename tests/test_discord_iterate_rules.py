"""Result buttons follow the rules of any job: the clicker's limits, allow-lists, Cancel."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.config import Settings
from bot.jobs.progress import JobState
from tests.discord_env import final_edit, make_settings, open_services, wait_button, webhook_of
from tests.fakes.comfy import FakeComfy
from tests.fakes.discord import FakeDiscord, Interaction, RecordedCall, run_bot
from tests.iterate_env import MODELS, custom_id, iterate_settings


@pytest.fixture
async def fake_comfy() -> AsyncIterator[FakeComfy]:
    """A FakeComfy with checkpoints and LoRAs installed."""
    async with FakeComfy(models=MODELS) as fake:
        yield fake
    assert not fake.errors, fake.errors


async def _grid(fake: FakeDiscord, user: int) -> tuple[Interaction, RecordedCall]:
    ix = await fake.slash(
        "generate", {"prompt": "a fox", "workflow": "slow", "count": 2}, user_id=user
    )
    await ix.wait_response()
    return ix, await fake.wait_for(final_edit(ix), timeout=10)


async def _refusal(fake: FakeDiscord, click: Interaction) -> str:
    await click.wait_response()
    told = await fake.wait_for(lambda c: webhook_of(click)(c) and c.method == "POST")
    assert told.json["flags"] == 64
    return str(told.json["content"])


async def test_a_vary_counts_toward_the_clickers_limit(
    fake_discord: FakeDiscord, fake_comfy: FakeComfy, tmp_path: Path
) -> None:
    settings = iterate_settings(fake_comfy.url, tmp_path, MAX_JOBS_PER_USER="1")
    owner, clicker = fake_discord.add_user("ann"), fake_discord.add_user("ben")
    async with open_services(settings) as services, run_bot(services.new_bot()):
        ix, grid = await _grid(fake_discord, owner)
        fake_comfy.hold()
        busy = await fake_discord.slash("generate", {"prompt": "mine"}, user_id=clicker)
        await busy.wait_response()

        click = await fake_discord.click(
            ix.original_message_id or 0, custom_id(grid.json, "V1"), user_id=clicker
        )
        text = await _refusal(fake_discord, click)
        varies = [j for j in services.jobs.jobs.values() if j.request.workflow == "img2img"]
        fake_comfy.release()

    assert "You already have 1 job queued or running" in text
    assert varies == []


async def test_buttons_honour_the_allow_lists_after_a_restart(
    fake_discord: FakeDiscord, fake_comfy: FakeComfy, tmp_path: Path
) -> None:
    settings = iterate_settings(fake_comfy.url, tmp_path)
    user = fake_discord.add_user("cat")
    async with open_services(settings, journal=True) as services, run_bot(services.new_bot()):
        ix, grid = await _grid(fake_discord, user)
    prompts = len(fake_comfy.history)

    restricted = make_settings(
        fake_comfy.url, settings.workflows_dir, ALLOWED_ROLE_IDS="4242", VARY_WORKFLOW="img2img"
    )
    async with open_services(restricted, journal=True) as services, run_bot(services.new_bot()):
        texts = []
        for label in ("U1", "V2"):
            click = await fake_discord.click(
                ix.original_message_id or 0, custom_id(grid.json, label), user_id=user
            )
            answer = await click.wait_response()
            texts.append(answer["data"]["content"])
            assert answer["data"]["flags"] == 64

    assert all("You need one of these roles" in text for text in texts)
    assert len(fake_comfy.history) == prompts


async def test_a_vary_shows_progress_and_its_cancel_stops_exactly_it(
    fake_discord: FakeDiscord, fake_comfy: FakeComfy, tmp_path: Path
) -> None:
    settings: Settings = iterate_settings(fake_comfy.url, tmp_path)
    user = fake_discord.add_user("dan")
    async with open_services(settings, journal=True) as services, run_bot(services.new_bot()):
        ix, grid = await _grid(fake_discord, user)
    async with open_services(settings, journal=True) as services, run_bot(services.new_bot()):
        fake_comfy.hold()
        click = await fake_discord.click(
            ix.original_message_id or 0, custom_id(grid.json, "V2"), user_id=user
        )
        assert (await click.wait_response())["type"] == 5
        await click.wait_response()
        progress = await fake_discord.wait_for(
            lambda c: webhook_of(click)(c) and c.method == "PATCH" and c.status == 200
        )
        message_id = int(progress.response["id"])
        cancel = await wait_button(fake_discord, message_id, "comfycord:cancel:")
        job = services.jobs.get(cancel.rsplit(":", 1)[1])
        await fake_comfy.wait_for_prompt(job.id, "running")
        await fake_discord.click(message_id, cancel, user_id=user)
        await services.comfy_calls.wait_for("POST", "/interrupt")
        fake_comfy.release()
        final = await fake_discord.wait_for(final_edit(click), timeout=10)

    assert "Waiting" in progress.json["content"] or "Running" in progress.json["content"]
    assert f"🚫 Cancelled by <@{user}>" in final.json["content"]
    assert (await job.result()).state is JobState.CANCELLED
    assert fake_comfy.interrupts == [{"prompt_id": job.id}]
