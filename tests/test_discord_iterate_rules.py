"""Result buttons follow the rules of any job: the clicker's limits, allow-lists, Cancel."""

from __future__ import annotations

from pathlib import Path

from bot.config import Settings
from bot.jobs.progress import JobState
from tests.discord_env import final_edit, make_settings, running, wait_button, webhook_of
from tests.fakes.comfy import FakeComfy
from tests.fakes.discord import FakeDiscord
from tests.iterate_env import (  # noqa: F401  # fixtures
    ask_grid,
    custom_id,
    iterate_settings,
    models_comfy_fixture,
    refusal,
)


async def test_a_vary_counts_toward_the_clickers_limit(
    fake_discord: FakeDiscord, fake_comfy: FakeComfy, tmp_path: Path
) -> None:
    settings = iterate_settings(fake_comfy.url, tmp_path, MAX_JOBS_PER_USER="1")
    owner, clicker = fake_discord.add_user("ann"), fake_discord.add_user("ben")
    async with running(settings) as services:
        ix, grid = await ask_grid(fake_discord, owner, count=2)
        fake_comfy.hold()
        busy = await fake_discord.slash("generate", {"prompt": "mine"}, user_id=clicker)
        await busy.wait_response()

        click = await fake_discord.click(
            ix.original_message_id or 0, custom_id(grid.json, "V1"), user_id=clicker
        )
        text = await refusal(fake_discord, click)
        varies = [j for j in services.jobs.jobs.values() if j.request.workflow == "img2img"]
        fake_comfy.release()

    assert "You already have 1 job queued or running" in text
    assert varies == []


async def test_buttons_honour_the_allow_lists_after_a_restart(
    fake_discord: FakeDiscord, fake_comfy: FakeComfy, tmp_path: Path
) -> None:
    settings = iterate_settings(fake_comfy.url, tmp_path)
    user = fake_discord.add_user("cat")
    async with running(settings, journal=True):
        ix, grid = await ask_grid(fake_discord, user, count=2)
    prompts = len(fake_comfy.history)

    restricted = make_settings(
        fake_comfy.url, settings.workflows_dir, ALLOWED_ROLE_IDS="4242", VARY_WORKFLOW="img2img"
    )
    async with running(restricted, journal=True):
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
    async with running(settings, journal=True) as services:
        ix, grid = await ask_grid(fake_discord, user, count=2)
    async with running(settings, journal=True) as services:
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
