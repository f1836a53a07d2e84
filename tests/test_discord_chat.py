"""Requests from chat: a mention with an image, and the "Use as input" message menu."""

from __future__ import annotations

import asyncio
from typing import Any

import discord
import pytest

from bot.discord import inputs
from bot.discord.client import ComfyBot
from tests.discord_env import (  # noqa: F401  # fixtures
    PNG_MAGIC,
    Response,
    Services,
    as_uploaded,
    assert_told_privately,
    bot_fixture,
    env_fixture,
    final_edit,
    message_result,
    png,
    services_fixture,
)
from tests.fakes.comfy import FakeComfy
from tests.fakes.discord import FakeDiscord, RecordedCall
from tests.fakes.discord_messages import walk


async def _mention(
    fake_discord: FakeDiscord, name: str, text: str, image: bytes | None = None
) -> tuple[int, dict[str, Any]]:
    """Post `text` from a new member `name`, mentioning the bot, with an image (photo.png)."""
    user = fake_discord.add_user(name)
    attachment = fake_discord.add_attachment(png() if image is None else image, "photo.png")
    posted = await fake_discord.post_message(
        text, user_id=user, attachments=[attachment], mentions_bot=True
    )
    return user, posted


def _reply_posted(call: RecordedCall) -> bool:
    """Match a channel message the bot posted (a mention's reply)."""
    return call.method == "POST" and call.path.endswith("/messages") and call.status == 200


async def test_a_mention_with_an_image_runs_the_image_workflow(
    fake_discord: FakeDiscord, fake_comfy: FakeComfy, services: Services, bot: ComfyBot
) -> None:
    source = png(40, 30, (10, 20, 30))
    user, posted = await _mention(fake_discord, "alice", "make it pop", source)

    reply = await fake_discord.wait_for(_reply_posted)
    assert str(reply.json["message_reference"]["message_id"]) == posted["id"]
    final = await fake_discord.wait_for(message_result(int(reply.response["id"])), timeout=10)
    assert final.files[0][1].startswith(PNG_MAGIC)
    assert as_uploaded(source) in fake_comfy.uploads.values()
    job = next(iter(services.jobs.jobs.values()))
    assert job.request.prompt == "make it pop"
    assert job.workflow.name == "demo"
    assert job.request.requester == str(user)


async def test_a_mention_reply_outlasts_a_429_storm_and_the_job_is_followed(
    fake_discord: FakeDiscord, fake_comfy: FakeComfy, services: Services, bot: ComfyBot
) -> None:
    # Found by the soak: the reply gave up after discord.py's five tries; the job ran unseen.
    reply = await _reply_through_a_429_storm(fake_discord, "ann", "again")
    reply_id = int(reply.response["id"])
    final = await fake_discord.wait_for(
        lambda c: c.path.endswith(f"/messages/{reply_id}") and bool(c.files), timeout=10
    )
    assert final.files[0][1].startswith(PNG_MAGIC)


async def _reply_through_a_429_storm(fake: FakeDiscord, name: str, text: str) -> RecordedCall:
    """Mention the bot while Discord answers six channel posts in a row with 429 (more than
    discord.py retries); return the bot's reply, posted through all six."""
    fake.inject_429("POST", "/channels/*/messages", retry_after=0.01, count=6)
    await _mention(fake, name, text)
    reply = await fake.wait_for(_reply_posted, timeout=10)
    assert fake.rate_limited == 6
    return reply


async def test_a_mention_job_is_accepted_only_once_its_reply_exists_and_names_it(
    fake_discord: FakeDiscord, fake_comfy: FakeComfy, services: Services, bot: ComfyBot
) -> None:
    # Found by the soak: the job was accepted (and could reach ComfyUI) before its reply was
    # posted, so a bot killed in between left a prompt that ran where no member saw it.
    fake_discord.inject_429("POST", "/channels/*/messages", retry_after=0.01, count=2)

    await _mention(fake_discord, "ada", "first the reply")

    await fake_discord.wait_for(lambda c: c.method == "POST" and c.status == 429)
    assert services.jobs.jobs == {}  # the reply is not there yet: nor is the job
    reply = await fake_discord.wait_for(_reply_posted)
    await fake_discord.wait_for(lambda c: c.method == "PATCH" and "/messages/" in c.path)
    job = next(iter(services.jobs.jobs.values()))
    assert job.request.origin is not None  # what the journal's first record keeps
    assert job.request.origin["message_id"] == int(reply.response["id"])
    assert job.request.origin["channel_id"] == fake_discord.channel_id


async def test_a_mention_whose_reply_discord_refuses_does_not_run(
    fake_discord: FakeDiscord, fake_comfy: FakeComfy, services: Services, bot: ComfyBot
) -> None:
    fake_discord.inject_error("POST", "/channels/*/messages", 403, 50013)

    await _mention(fake_discord, "abe", "nope")

    await fake_discord.wait_for(lambda c: c.method == "POST" and c.status == 403)
    # The reply comes before the job: without a reply there is no job and no prompt.
    assert services.jobs.jobs == {}
    assert not [path for method, path in fake_comfy.requests if path.endswith("/prompt")]


async def test_a_mention_without_an_image_is_ignored(
    fake_discord: FakeDiscord, services: Services, bot: ComfyBot
) -> None:
    user = fake_discord.add_user("bob")
    attachment = fake_discord.add_attachment(png(), "later.png")

    await fake_discord.post_message("hello there", user_id=user, mentions_bot=True)
    await fake_discord.post_message("not for the bot", user_id=user, attachments=[attachment])
    await fake_discord.post_message(
        "with image", user_id=user, attachments=[attachment], mentions_bot=True
    )

    # The reply is posted, then the job is accepted and shown in it (its first edit).
    await fake_discord.wait_for(lambda c: c.method == "PATCH" and "/messages/" in c.path)
    assert len(services.jobs.jobs) == 1


async def test_use_as_input_asks_for_a_prompt_then_runs(
    fake_discord: FakeDiscord, fake_comfy: FakeComfy, services: Services, bot: ComfyBot
) -> None:
    user = fake_discord.add_user("carol")
    source = png(20, 20, (1, 2, 3))
    attachment = fake_discord.add_attachment(source, "mine.png")
    posted = await fake_discord.post_message("look", user_id=user, attachments=[attachment])

    menu = await fake_discord.message_command("Use as input", int(posted["id"]), user_id=user)

    answer = await menu.wait_response()
    assert answer["type"] == Response.modal.value
    modal = answer["data"]
    field = next(
        c
        for c in walk(modal["components"])
        if c.get("type") == discord.ComponentType.text_input.value
    )
    submitted = await fake_discord.submit_modal(
        modal["custom_id"], {field["custom_id"]: "as a watercolour"}, user_id=user
    )
    assert (await submitted.wait_response())["type"] == Response.deferred_channel_message.value
    final = await fake_discord.wait_for(final_edit(submitted), timeout=10)
    assert final.files[0][1].startswith(PNG_MAGIC)
    assert as_uploaded(source) in fake_comfy.uploads.values()
    job = next(iter(services.jobs.jobs.values()))
    assert job.request.prompt == "as a watercolour"


async def test_use_as_input_on_a_message_without_images_is_refused(
    fake_discord: FakeDiscord, bot: ComfyBot
) -> None:
    user = fake_discord.add_user("dave")
    posted = await fake_discord.post_message("just text", user_id=user)

    menu = await fake_discord.message_command("Use as input", int(posted["id"]), user_id=user)

    assert_told_privately(await menu.wait_response(), "no image")


@pytest.mark.parametrize("env", [{"MAX_INPUT_IMAGE_BYTES": "10"}])
async def test_a_refused_mention_is_told_through_a_429_storm(
    fake_discord: FakeDiscord, fake_comfy: FakeComfy, services: Services, bot: ComfyBot
) -> None:
    # Found by the soak: the refusal's reply gave up after discord.py's five tries.
    reply = await _reply_through_a_429_storm(fake_discord, "ada", "big")
    assert "MiB" in reply.json["content"]
    assert ("POST", "/prompt") not in fake_comfy.requests


async def test_a_form_closed_without_submitting_is_forgotten_after_its_timeout(
    fake_discord: FakeDiscord, bot: ComfyBot, monkeypatch
) -> None:
    opened: list[inputs.PromptModal] = []

    class SeenModal(inputs.PromptModal):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            opened.append(self)

    monkeypatch.setattr(inputs, "PromptModal", SeenModal)
    monkeypatch.setattr(inputs, "MODAL_TIMEOUT", 0.05)
    user = fake_discord.add_user("erin")
    attachment = fake_discord.add_attachment(png(), "mine.png")
    posted = await fake_discord.post_message("look", user_id=user, attachments=[attachment])

    menu = await fake_discord.message_command("Use as input", int(posted["id"]), user_id=user)
    answer = await menu.wait_response()

    assert answer["type"] == Response.modal.value
    [modal] = opened
    assert modal.custom_id == answer["data"]["custom_id"]
    async with asyncio.timeout(5):
        assert await modal.wait()  # True: it timed out, and discord.py let go of it
    assert modal.custom_id not in bot._connection._view_store._modals


async def test_the_default_form_timeout_is_finite() -> None:
    async def on_prompt(interaction: object, prompt: str) -> None:
        raise AssertionError("never submitted")

    assert inputs.PromptModal(on_prompt).timeout == inputs.MODAL_TIMEOUT < 3600


async def test_job_replies_leave_nothing_in_discords_view_store(
    fake_discord: FakeDiscord, services: Services, bot: ComfyBot
) -> None:
    store = bot._connection._view_store
    user = fake_discord.add_user("frank")
    attachment = fake_discord.add_attachment(png(), "photo.png")
    for number in range(3):
        await fake_discord.post_message(
            f"take {number}", user_id=user, attachments=[attachment], mentions_bot=True
        )
    since = 0
    for _ in range(3):  # each reply's final edit, with its Reroll button
        final = await fake_discord.wait_for(
            lambda c: c.method == "PATCH" and bool((c.json or {}).get("embeds")),
            timeout=10,
            since=since,
        )
        since = fake_discord.calls.index(final) + 1
    assert len(services.jobs.jobs) == 3

    assert store._synced_message_views == {}
    assert store._views == {}
    assert store.persistent_views == []
