"""Every result button, fresh and after a restart, on ComfyUI 0.3.64 and 0.38, does its thing."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bot.config import Settings
from tests.discord_env import Services, final_edit, open_services
from tests.fakes.comfy import FakeComfy
from tests.fakes.discord import FakeDiscord, Interaction, RecordedCall, run_bot
from tests.iterate_env import (
    INFO,
    MODELS,
    REROLL,
    SINGLE_LABELS,
    custom_id,
    iterate_settings,
    labels,
    original_edit,
)


@pytest.fixture(params=["0.3.64", "0.38"])
async def fake_comfy(request: pytest.FixtureRequest) -> AsyncIterator[FakeComfy]:
    """A FakeComfy of each recorded version, with checkpoints and LoRAs installed."""
    async with FakeComfy(models=MODELS, version=request.param) as fake:
        yield fake
    assert not fake.errors, fake.errors


@pytest.fixture
def settings(fake_comfy: FakeComfy, tmp_path: Path) -> Settings:
    return iterate_settings(fake_comfy.url, tmp_path)


async def _messages(fake: FakeDiscord, user: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """Make a grid of two and pick its first image; return both messages."""
    ix = await fake.slash(
        "generate", {"prompt": "a fox", "workflow": "slow", "count": 2, "seed": 3}, user_id=user
    )
    grid = await fake.wait_for(final_edit(ix), timeout=10)
    click = await fake.click(ix.original_message_id or 0, custom_id(grid.json, "U1"), user_id=user)
    picked = await fake.wait_for(original_edit(click), timeout=10)
    return grid.response, picked.response


async def _outcome(
    fake: FakeDiscord, services: Services, click: Interaction
) -> tuple[str, RecordedCall | dict[str, Any]]:
    """Wait for what a click did: a posted image, a recipe, a form, or a new job's result."""
    answer = await click.wait_response()
    if answer["type"] == 9:
        return "form", answer
    if answer["type"] == 4:
        return "recipe", answer
    is_picked = original_edit(click)
    call = await fake.wait_for(
        lambda c: (is_picked(c) and "picked by" in c.json["content"]) or final_edit(click)(c),
        timeout=10,
    )
    if (call.json or {}).get("embeds"):
        job_id = call.json["embeds"][0]["footer"]["text"].removeprefix("job ")
        return services.jobs.get(job_id).request.workflow, call
    return "picked", call


EXPECTED = {
    ("grid", "U2"): "picked",
    ("grid", "V2"): "img2img",
    ("grid", REROLL): "slow",
    ("grid", INFO): "recipe",
    ("single", "Upscale"): "upscale",
    ("single", "Vary (Subtle)"): "img2img",
    ("single", "Vary (Strong)"): "img2img",
    ("single", "Remix"): "form",
    ("single", REROLL): "slow",
    ("single", INFO): "recipe",
}


@pytest.mark.parametrize("is_restarted", [False, True], ids=["fresh", "after-restart"])
@pytest.mark.parametrize(("where", "label"), list(EXPECTED), ids=[f"{w}-{b}" for w, b in EXPECTED])
async def test_each_button_does_its_thing(
    fake_discord: FakeDiscord,
    settings: Settings,
    where: str,
    label: str,
    is_restarted: bool,
) -> None:
    user = fake_discord.add_user("ana")
    async with open_services(settings, journal=True) as services, run_bot(services.new_bot()):
        grid, single = await _messages(fake_discord, user)
        assert labels(grid) == ["U1", "U2", "V1", "V2", REROLL, INFO]
        assert labels(single) == SINGLE_LABELS
        message = grid if where == "grid" else single
        if not is_restarted:
            click = await fake_discord.click(
                int(message["id"]), custom_id(message, label), user_id=user
            )
            kind, _ = await _outcome(fake_discord, services, click)
    if is_restarted:
        async with open_services(settings, journal=True) as services, run_bot(services.new_bot()):
            click = await fake_discord.click(
                int(message["id"]), custom_id(message, label), user_id=user
            )
            kind, _ = await _outcome(fake_discord, services, click)

    assert kind == EXPECTED[(where, label)]
