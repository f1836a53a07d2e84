"""Grids, U/V, Upscale, Vary, Remix and the recipe end to end, also after a bot restart."""

from __future__ import annotations

import json
from typing import Any

import pytest

from bot.config import Settings
from tests.discord_env import final_edit, running
from tests.fakes.comfy import FakeComfy
from tests.fakes.discord import FakeDiscord, Interaction, RecordedCall
from tests.fakes.discord_messages import walk
from tests.iterate_env import (  # noqa: F401  # fixtures
    GRID_LABELS,
    INFO,
    REROLL,
    SINGLE_LABELS,
    ask_grid,
    click_and_wait,
    custom_id,
    labels,
    models_comfy_fixture,
    original_edit,
    refusal,
    settings_fixture,
    size_of,
)


async def test_count_four_is_one_prompt_and_one_grid_with_the_grid_buttons(
    fake_discord: FakeDiscord, fake_comfy: FakeComfy, settings: Settings
) -> None:
    user = fake_discord.add_user("alice")
    async with running(settings):
        _, final = await ask_grid(fake_discord, user, seed=100)

    assert len(final.files) == 1
    name, data, _ = final.files[0]
    assert name == "grid.jpg"
    assert size_of(data) == (64, 48)  # 2 by 2 cells of the slow workflow's 32x24
    assert labels(final.json) == GRID_LABELS
    [prompt] = [entry["prompt"][2] for entry in fake_comfy.history.values()]
    seeds = sorted(node["inputs"]["seed"] for node in prompt.values() if "seed" in node["inputs"])
    assert seeds == [100, 101, 102, 103]
    assert len(fake_comfy.outputs) == 4


async def _pick(
    fake: FakeDiscord, message_id: int, label: str, user: int
) -> tuple[Interaction, RecordedCall]:
    click = await fake.click(message_id, custom_id(fake.messages[message_id], label), user_id=user)
    assert (await click.wait_response())["type"] == 5
    return click, await fake.wait_for(original_edit(click), timeout=10)


def _output(fake_comfy: FakeComfy, number: int) -> bytes:
    """Return the bytes of image `number` of the grid, as ComfyUI saved it."""
    return next(v for k, v in fake_comfy.outputs.items() if f"_c{number}_" in k)


def _assert_posts_image(posted: RecordedCall, fake_comfy: FakeComfy, number: int) -> None:
    """The message's first file is image `number` of the grid, as ComfyUI made it."""
    name, data, _ = posted.files[0]
    assert f"_c{number}_" in name
    assert data == _output(fake_comfy, number)


async def test_u2_posts_image_two_alone_without_comfyui_work(
    fake_discord: FakeDiscord, fake_comfy: FakeComfy, settings: Settings
) -> None:
    user, other = fake_discord.add_user("bob"), fake_discord.add_user("carol")
    async with running(settings) as services:
        ix, _ = await ask_grid(fake_discord, user)
        prompts = len(fake_comfy.history)
        calls = len(services.comfy_calls.calls)

        _, posted = await _pick(fake_discord, ix.original_message_id or 0, "U2", other)

        assert len(fake_comfy.history) == prompts
        assert services.comfy_calls.calls[calls:] == []  # from memory: no request at all
    _assert_posts_image(posted, fake_comfy, 2)
    assert labels(posted.json) == SINGLE_LABELS
    assert f"image 2 of 4 · picked by <@{other}>" in posted.json["content"]


async def _grid_before_a_restart(
    fake: FakeDiscord, settings: Settings, user: int, **options: object
) -> tuple[Interaction, RecordedCall]:
    """Make a grid on a bot with a journal, then stop that bot (the test's next one restarts)."""
    async with running(settings, journal=True):
        return await ask_grid(fake, user, **options)


async def test_u3_after_a_restart_fetches_the_image_from_comfyui(
    fake_discord: FakeDiscord, fake_comfy: FakeComfy, settings: Settings
) -> None:
    user = fake_discord.add_user("dave")
    ix, _ = await _grid_before_a_restart(fake_discord, settings, user)

    async with running(settings, journal=True) as services:
        _, posted = await _pick(fake_discord, ix.original_message_id or 0, "U3", user)
        await services.comfy_calls.wait_for("GET", "/view")

    _assert_posts_image(posted, fake_comfy, 3)


async def test_when_comfyui_cleaned_its_outputs_u1_is_cut_from_the_grid(
    fake_discord: FakeDiscord, fake_comfy: FakeComfy, settings: Settings
) -> None:
    user = fake_discord.add_user("erin")
    ix, grid = await _grid_before_a_restart(fake_discord, settings, user)
    fake_comfy.outputs.clear()

    async with running(settings, journal=True):
        _, posted = await _pick(fake_discord, ix.original_message_id or 0, "U1", user)

    assert size_of(posted.files[0][1]) == (32, 24)
    assert size_of(grid.files[0][1]) == (64, 48)


async def test_a_button_whose_image_is_gone_says_so(
    fake_discord: FakeDiscord, fake_comfy: FakeComfy, settings: Settings
) -> None:
    user = fake_discord.add_user("frank")
    ix, _ = await _grid_before_a_restart(fake_discord, settings, user)
    fake_comfy.outputs.clear()
    message = fake_discord.messages[ix.original_message_id or 0]
    fake_discord.expire_attachment(message["attachments"][0])

    async with running(settings, journal=True):
        click = await fake_discord.click(
            ix.original_message_id or 0, custom_id(message, "U4"), user_id=user
        )
        told = await refusal(fake_discord, click)

    assert "Image 4 is gone: ComfyUI no longer has" in told


async def test_a_pruned_job_says_so(
    fake_discord: FakeDiscord, fake_comfy: FakeComfy, settings: Settings
) -> None:
    user = fake_discord.add_user("gina")
    async with running(settings) as services:
        ix, grid = await ask_grid(fake_discord, user)
        services.jobs.jobs.clear()  # no journal: pruned from memory, nowhere else
        click = await fake_discord.click(
            ix.original_message_id or 0, custom_id(grid.json, "V1"), user_id=user
        )
        told = await refusal(fake_discord, click)
    assert "no longer knows this job" in told
    assert len(fake_comfy.history) == 1


def _sent_prompt(fake_comfy: FakeComfy, job_id: str) -> dict[str, object]:
    return dict(fake_comfy.history[job_id]["prompt"][2])  # [number, id, prompt, extra, outputs]


def _job_of(call: RecordedCall) -> str:
    return str(call.json["embeds"][0]["footer"]["text"].removeprefix("job "))


async def test_v2_runs_the_vary_workflow_on_image_two_as_a_new_grid(
    fake_discord: FakeDiscord, fake_comfy: FakeComfy, settings: Settings
) -> None:
    user = fake_discord.add_user("hana")
    ix, _ = await _grid_before_a_restart(fake_discord, settings, user)
    image_two = _output(fake_comfy, 2)

    async with running(settings, journal=True) as services:
        _, final = await click_and_wait(
            fake_discord, ix.original_message_id or 0, "V2", user_id=user
        )
        job = services.jobs.get(_job_of(final))

    assert job.request.workflow == "img2img"
    assert job.request.prompt == "a fox"
    assert job.request.denoise == 0.7
    assert job.request.count == 4
    assert image_two in fake_comfy.uploads.values()
    prompt = _sent_prompt(fake_comfy, job.id)
    samplers = [n for n in prompt.values() if n["class_type"] == "KSampler"]
    assert [s["inputs"]["denoise"] for s in samplers] == [0.7] * 4
    assert labels(final.json) == GRID_LABELS
    assert final.files[0][0] == "grid.jpg"


@pytest.mark.parametrize(("label", "denoise"), [("Vary (Subtle)", 0.35), ("Vary (Strong)", 0.7)])
async def test_vary_buttons_use_their_denoise_and_a_new_seed(
    fake_discord: FakeDiscord, fake_comfy: FakeComfy, settings: Settings, label: str, denoise: float
) -> None:
    user = fake_discord.add_user("ivan")
    async with running(settings) as services:
        ix, _ = await ask_grid(fake_discord, user, seed=5)
        _, single = await _pick(fake_discord, ix.original_message_id or 0, "U1", user)
        _, final = await click_and_wait(
            fake_discord, int(single.response["id"]), label, user_id=user
        )
        job = services.jobs.get(_job_of(final))
    assert job.request.denoise == denoise
    assert job.seed != 5
    assert job.request.workflow == "img2img"


async def test_upscale_runs_the_upscale_workflow_on_that_image(
    fake_discord: FakeDiscord, fake_comfy: FakeComfy, settings: Settings
) -> None:
    user = fake_discord.add_user("jo")
    async with running(settings, journal=True) as services:
        ix, _ = await ask_grid(fake_discord, user)
        _, single = await _pick(fake_discord, ix.original_message_id or 0, "U2", user)
    source = single.files[0][1]

    async with running(settings, journal=True) as services:
        _, final = await click_and_wait(
            fake_discord, int(single.response["id"]), "Upscale", user_id=user
        )
        job = services.jobs.get(_job_of(final))

    assert job.request.workflow == "upscale"
    assert source in fake_comfy.uploads.values()
    assert size_of(final.files[0][1]) == (64, 48)  # 2x of 32x24
    assert labels(final.json) == SINGLE_LABELS


async def test_remix_opens_the_prompt_filled_in_and_varies_with_the_edit(
    fake_discord: FakeDiscord, fake_comfy: FakeComfy, settings: Settings
) -> None:
    user = fake_discord.add_user("kim")
    async with running(settings, journal=True) as services:
        # txt2img has a batch size: count 2 is one batch of two, a 1 by 2 grid.
        ix, grid = await ask_grid(fake_discord, user, workflow="txt2img", count=2, negative="blur")
        assert labels(grid.json) == ["U1", "U2", "V1", "V2", REROLL, INFO]
        _, single = await _pick(fake_discord, ix.original_message_id or 0, "U2", user)

    async with running(settings, journal=True) as services:
        message_id = int(single.response["id"])
        click = await fake_discord.click(
            message_id, custom_id(single.response, "Remix"), user_id=user
        )
        answer = await click.wait_response()
        assert answer["type"] == 9
        fields = {f["label"]: f for f in _text_inputs(answer["data"]["components"])}
        assert fields["Prompt"]["value"] == "a fox"
        assert fields["Negative prompt"]["value"] == "blur"
        submitted = await fake_discord.submit_modal(
            answer["data"]["custom_id"],
            {
                fields["Prompt"]["custom_id"]: "a fox in the rain",
                fields["Negative prompt"]["custom_id"]: "blur, text",
            },
            user_id=user,
            message_id=message_id,
        )
        final = await fake_discord.wait_for(final_edit(submitted), timeout=10)
        job = services.jobs.get(_job_of(final))

    assert job.request.prompt == "a fox in the rain"
    assert job.request.negative == "blur, text"
    prompt = _sent_prompt(fake_comfy, job.id)
    texts = {n["inputs"]["text"] for n in prompt.values() if n["class_type"] == "CLIPTextEncode"}
    assert texts == {"a fox in the rain", "blur, text"}


def _text_inputs(components: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Return the modal's text inputs, each with its label (labels wrap them, or rows hold them)."""
    found = []
    for component in walk(components):
        if component.get("type") == 18 and isinstance(component.get("component"), dict):
            found.append({**component["component"], "label": component.get("label")})
        elif component.get("type") == 4 and "label" in component:
            found.append(component)
    return found


async def test_the_recipe_is_private_and_attaches_exactly_the_graph_that_ran(
    fake_discord: FakeDiscord, fake_comfy: FakeComfy, settings: Settings
) -> None:
    user, other = fake_discord.add_user("lee"), fake_discord.add_user("max")
    ix, grid = await _grid_before_a_restart(fake_discord, settings, user, seed=9)
    job_id = custom_id(grid.json, INFO).rsplit(":", 1)[1]

    async with running(settings, journal=True):
        click = await fake_discord.click(
            ix.original_message_id or 0, custom_id(grid.json, INFO), user_id=other
        )
        answer = await click.wait_response()
        reply = await fake_discord.wait_for(
            lambda c: c.method == "POST" and f"/{click.token}/callback" in c.path
        )

    assert answer["type"] == 4
    assert answer["data"]["flags"] == 64
    [(name, data, _)] = reply.files
    assert name == "workflow_api.json"
    assert json.loads(data) == _sent_prompt(fake_comfy, job_id)
    fields = {f["name"]: f["value"] for f in answer["data"]["embeds"][0]["fields"]}
    assert fields["Seed"] == "9"
    assert fields["Workflow"] == "Slow steps (test)"
    assert fields["Prompt"] == "“a fox”"
    assert fields["Server"] == fake_comfy.url


async def test_u1_of_a_job_whose_bytes_were_released_fetches_from_comfyui(
    fake_discord: FakeDiscord, fake_comfy: FakeComfy, settings: Settings
) -> None:
    user = fake_discord.add_user("nia")
    async with running(settings) as services:
        ix, grid = await ask_grid(fake_discord, user)
        job = services.jobs.get(custom_id(grid.json, "U1").rsplit(":", 1)[1])
        job.release()  # as bot.jobs.ended does to older jobs past the memory budget
        _, posted = await _pick(fake_discord, ix.original_message_id or 0, "U1", user)
        await services.comfy_calls.wait_for("GET", "/view")
    _assert_posts_image(posted, fake_comfy, 1)
