"""/generate's count, aspect, model and LoRA options, prompt flags and file autocomplete."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.config import Settings
from tests.discord_env import final_edit, png, running
from tests.fakes.comfy import FakeComfy
from tests.fakes.discord import FakeDiscord
from tests.fakes.discord_messages import walk
from tests.iterate_env import (  # noqa: F401  # fixtures
    iterate_settings,
    models_comfy_fixture,
    settings_fixture,
    size_of,
)


def _graph(fake_comfy: FakeComfy) -> dict[str, dict[str, object]]:
    [entry] = fake_comfy.history.values()
    return dict(entry["prompt"][2])


async def test_aspect_model_and_lora_reach_the_graph(
    fake_discord: FakeDiscord, fake_comfy: FakeComfy, settings: Settings
) -> None:
    user = fake_discord.add_user("ada")
    options = {
        "prompt": "a fox",
        "workflow": "txt2img",
        "aspect": "16:9",
        "model": "juggernaut_xl.safetensors",
        "lora": "style/ink.safetensors",
        "lora_strength": 0.5,
    }
    async with running(settings):
        ix = await fake_discord.slash("generate", options, user_id=user)
        final = await fake_discord.wait_for(final_edit(ix), timeout=10)

    assert "✅ Done" in final.json["content"]
    graph = _graph(fake_comfy)
    assert (graph["5"]["inputs"]["width"], graph["5"]["inputs"]["height"]) == (1344, 768)
    assert graph["4"]["inputs"]["ckpt_name"] == "juggernaut_xl.safetensors"
    assert graph["10"]["class_type"] == "LoraLoader"
    assert graph["10"]["inputs"]["lora_name"] == "style/ink.safetensors"
    assert graph["10"]["inputs"]["strength_model"] == 0.5
    assert graph["3"]["inputs"]["model"] == ["10", 0]
    assert size_of(final.files[0][1]) == (1344, 768)


async def test_prompt_flags_work_in_the_slash_command(
    fake_discord: FakeDiscord, fake_comfy: FakeComfy, settings: Settings
) -> None:
    user = fake_discord.add_user("bo")
    prompt = "a fox --ar 2:3 --seed 77 --steps 12 --no text, logo"
    async with running(settings):
        ix = await fake_discord.slash(
            "generate", {"prompt": prompt, "workflow": "txt2img"}, user_id=user
        )
        await fake_discord.wait_for(final_edit(ix), timeout=10)

    graph = _graph(fake_comfy)
    assert graph["6"]["inputs"]["text"] == "a fox"
    # "text" is in the workflow's default negative already: only "logo" is added
    assert graph["7"]["inputs"]["text"] == "blurry, low quality, watermark, text, logo"
    assert (graph["3"]["inputs"]["seed"], graph["3"]["inputs"]["steps"]) == (77, 12)
    assert (graph["5"]["inputs"]["width"], graph["5"]["inputs"]["height"]) == (832, 1280)


async def test_flags_work_in_a_chat_mention(
    fake_discord: FakeDiscord, fake_comfy: FakeComfy, tmp_path: Path
) -> None:
    settings = iterate_settings(fake_comfy.url, tmp_path, DEFAULT_IMAGE_WORKFLOW="img2img")
    user = fake_discord.add_user("cy")
    attachment = fake_discord.add_attachment(png(40, 30), "in.png")
    async with running(settings):
        await fake_discord.post_message(
            "as ink --seed 5 --steps 7 --no colour",
            user_id=user,
            attachments=[attachment],
            mentions_bot=True,
        )
        await fake_discord.wait_for(
            lambda c: c.method == "PATCH" and "✅" in str((c.json or {}).get("content")),
            timeout=10,
        )
    graph = _graph(fake_comfy)
    assert graph["6"]["inputs"]["text"] == "as ink"
    assert graph["7"]["inputs"]["text"] == "blurry, low quality, watermark, text, colour"
    assert (graph["3"]["inputs"]["seed"], graph["3"]["inputs"]["steps"]) == (5, 7)


@pytest.mark.parametrize(
    ("prompt", "message"),
    [
        ("a fox --zoom 2", "Unknown flag --zoom"),
        ("a fox --ar 5:4", "--ar 5:4 is not an aspect ratio I know"),
        ("a fox --count 9", "--count must be between 1 and 4, not 9."),
    ],
)
async def test_a_bad_flag_is_refused_by_name_and_nothing_is_sent(
    fake_discord: FakeDiscord, fake_comfy: FakeComfy, settings: Settings, prompt: str, message: str
) -> None:
    user = fake_discord.add_user("di")
    async with running(settings):
        ix = await fake_discord.slash("generate", {"prompt": prompt}, user_id=user)
        answer = await ix.wait_response()
    assert answer["type"] == 4
    assert answer["data"]["flags"] == 64
    assert message in answer["data"]["content"]
    assert fake_comfy.history == {}


async def test_a_bad_flag_in_a_mention_is_answered_by_name(
    fake_discord: FakeDiscord, fake_comfy: FakeComfy, settings: Settings
) -> None:
    user = fake_discord.add_user("ed")
    attachment = fake_discord.add_attachment(png(40, 30), "in.png")
    async with running(settings):
        await fake_discord.post_message(
            "x --steps lots", user_id=user, attachments=[attachment], mentions_bot=True
        )
        told = await fake_discord.wait_for(
            lambda c: c.method == "POST" and c.path.endswith("/messages"), timeout=10
        )
    assert "--steps takes a whole number, not 'lots'" in told.json["content"]
    assert fake_comfy.history == {}


async def test_model_and_lora_autocomplete_is_fuzzy_and_within_the_allow_patterns(
    fake_discord: FakeDiscord, settings: Settings
) -> None:
    (settings.workflows_dir / "txt2img.toml").write_text(
        (settings.workflows_dir / "txt2img.toml").read_text() + '\n[allow]\nlora = ["style/*"]\n'
    )
    user = fake_discord.add_user("flo")
    async with running(settings) as services:
        options = {"prompt": "x", "workflow": "txt2img"}
        models = await fake_discord.autocomplete(
            "generate", {**options, "model": "jugg"}, "model", user_id=user
        )
        loras = await fake_discord.autocomplete(
            "generate", {**options, "lora": ""}, "lora", user_id=user
        )
        hidden = await fake_discord.autocomplete(
            "generate", {**options, "lora": "thing"}, "lora", user_id=user
        )
        demo = await fake_discord.autocomplete(
            "generate", {"prompt": "x", "workflow": "demo", "model": ""}, "model", user_id=user
        )
        object_infos = [c for c in services.comfy_calls.calls if c[1] == "/object_info"]

    assert models == [{"name": "juggernaut_xl.safetensors", "value": "juggernaut_xl.safetensors"}]
    assert [c["value"] for c in loras] == ["style/ink.safetensors", "style/watercolor.safetensors"]
    assert hidden == []
    assert demo == []  # demo loads no model
    assert len(object_infos) == 1  # cached: one /object_info for every key press


async def test_a_lora_outside_the_allow_patterns_is_refused(
    fake_discord: FakeDiscord, fake_comfy: FakeComfy, settings: Settings
) -> None:
    (settings.workflows_dir / "txt2img.toml").write_text(
        (settings.workflows_dir / "txt2img.toml").read_text() + '\n[allow]\nlora = ["style/*"]\n'
    )
    user = fake_discord.add_user("gus")
    async with running(settings):
        ix = await fake_discord.slash(
            "generate",
            {"prompt": "x", "workflow": "txt2img", "lora": "nsfw/thing.safetensors"},
            user_id=user,
        )
        answer = await ix.wait_response()
    assert answer["data"]["flags"] == 64
    assert "The lora nsfw/thing.safetensors may not be picked" in answer["data"]["content"]
    assert fake_comfy.history == {}


async def test_flags_work_in_the_use_as_input_form(
    fake_discord: FakeDiscord, fake_comfy: FakeComfy, tmp_path: Path
) -> None:
    settings = iterate_settings(fake_comfy.url, tmp_path, DEFAULT_IMAGE_WORKFLOW="img2img")
    user = fake_discord.add_user("hal")
    attachment = fake_discord.add_attachment(png(40, 30), "in.png")
    async with running(settings):
        posted = await fake_discord.post_message("look", user_id=user, attachments=[attachment])
        menu = await fake_discord.message_command("Use as input", int(posted["id"]), user_id=user)
        modal = (await menu.wait_response())["data"]
        field = next(c for c in walk(modal["components"]) if c.get("type") == 4)
        submitted = await fake_discord.submit_modal(
            modal["custom_id"], {field["custom_id"]: "pencil --seed 12 --count 2"}, user_id=user
        )
        final = await fake_discord.wait_for(final_edit(submitted), timeout=10)
    graph = _graph(fake_comfy)
    seeds = sorted(n["inputs"]["seed"] for n in graph.values() if n["class_type"] == "KSampler")
    assert seeds == [12, 13]
    assert final.files[0][0] == "grid.jpg"
