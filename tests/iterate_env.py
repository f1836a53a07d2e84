"""Helpers of the iterating tests: a library with the vary and upscale workflows, and clicks."""

from __future__ import annotations

import io
import shutil
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from bot.config import Settings
from tests.discord_env import EPHEMERAL, ROOT, final_edit, library_dir, make_settings, webhook_of
from tests.fakes.comfy import FakeComfy
from tests.fakes.discord import FakeDiscord, Interaction, RecordedCall
from tests.fakes.discord_messages import walk

MODELS = {
    "checkpoints": ["sd_xl_base_1.0.safetensors", "juggernaut_xl.safetensors"],
    "loras": ["style/ink.safetensors", "style/watercolor.safetensors", "nsfw/thing.safetensors"],
}
INFO = "\u2139\ufe0f"
REROLL = "\U0001f504"
GRID_LABELS = [*(f"U{n}" for n in range(1, 5)), *(f"V{n}" for n in range(1, 5)), REROLL, INFO]
SINGLE_LABELS = ["Upscale", "Vary (Subtle)", "Vary (Strong)", "Remix", REROLL, INFO]


def iterate_settings(comfy_url: str, tmp_path: Path, **env: str) -> Settings:
    """Settings over the test library plus the shipped img2img, txt2img and upscale."""
    directory = library_dir(tmp_path)
    for name in ("img2img", "txt2img", "upscale"):
        for suffix in (".json", ".toml"):
            shutil.copy(ROOT / "workflows" / f"{name}{suffix}", directory / f"{name}{suffix}")
    return make_settings(comfy_url, directory, **env)


@pytest.fixture(name="fake_comfy")
async def models_comfy_fixture() -> AsyncIterator[FakeComfy]:
    """A FakeComfy with checkpoints and LoRAs installed (img2img and txt2img can run)."""
    async with FakeComfy(models=MODELS) as fake:
        yield fake
    assert not fake.errors, fake.errors


@pytest.fixture(name="settings")
def settings_fixture(fake_comfy: FakeComfy, tmp_path: Path) -> Settings:
    """Return `iterate_settings` on the test's FakeComfy."""
    return iterate_settings(fake_comfy.url, tmp_path)


async def ask_grid(
    fake: FakeDiscord, user: int, **options: object
) -> tuple[Interaction, RecordedCall]:
    """Ask for four slow images of a fox (`options` override) and wait for the grid's result."""
    ix = await fake.slash(
        "generate", {"prompt": "a fox", "workflow": "slow", "count": 4, **options}, user_id=user
    )
    await ix.wait_response()
    return ix, await fake.wait_for(final_edit(ix), timeout=10)


async def refusal(fake: FakeDiscord, click: Interaction) -> str:
    """Wait for the ephemeral follow-up a click was refused with; return its text."""
    await click.wait_response()
    told = await fake.wait_for(lambda c: webhook_of(click)(c) and c.method == "POST")
    assert told.json["flags"] == EPHEMERAL
    return str(told.json["content"])


def labels(message: dict[str, Any]) -> list[str]:
    """Return the labels of a message's buttons, in order."""
    components = message.get("components") or []
    return [str(c.get("label")) for c in walk(components) if c.get("type") == 2]


def custom_id(message: dict[str, Any], label: str) -> str:
    """Return the custom_id of the button labelled `label`."""
    for component in walk(message.get("components") or []):
        if component.get("type") == 2 and component.get("label") == label:
            return str(component["custom_id"])
    raise AssertionError(f"no button {label!r} in {labels(message)}")


def size_of(data: bytes) -> tuple[int, int]:
    """Return an image's pixel size."""
    with Image.open(io.BytesIO(data)) as picture:
        return picture.size


def original_edit(ix: Interaction) -> Callable[[RecordedCall], bool]:
    """Match a successful edit of the interaction's @original that carries a file."""
    return lambda c: (
        c.method == "PATCH"
        and c.status == 200
        and c.path.endswith(f"/{ix.token}/messages/@original")
        and bool(c.files)
    )


async def click_and_wait(
    fake: FakeDiscord, message_id: int, label: str, *, user_id: int, timeout: float = 10
) -> tuple[Interaction, RecordedCall]:
    """Click the button labelled `label` and wait for the result the click produced."""
    click = await fake.click(
        message_id, custom_id(fake.messages[message_id], label), user_id=user_id
    )
    await click.wait_response()
    return click, await fake.wait_for(final_edit(click), timeout=timeout)
