"""Cancel and Reroll buttons end to end, including clicks after a bot restart."""

from __future__ import annotations

import pytest

from bot.discord.client import ComfyBot
from bot.jobs.progress import JobState
from tests.discord_env import (  # noqa: F401  # fixtures
    EPHEMERAL,
    Response,
    Services,
    assert_told_privately,
    bot_fixture,
    env_fixture,
    final_edit,
    services_fixture,
    wait_button,
    webhook_of,
)
from tests.fakes.comfy import FakeComfy
from tests.fakes.discord import FakeDiscord, Interaction, run_bot
from tests.fakes.discord_payloads import MEMBER_PERMISSIONS

MANAGE_MESSAGES = 1 << 13


async def _start(
    fake_discord: FakeDiscord, user: int, prompt: str = "slow one"
) -> tuple[Interaction, str]:
    ix = await fake_discord.slash("generate", {"prompt": prompt, "workflow": "slow"}, user_id=user)
    await ix.wait_response()
    assert ix.original_message_id is not None
    cancel = await wait_button(fake_discord, ix.original_message_id, "comfycord:cancel:")
    return ix, cancel


def _job_id(custom_id: str) -> str:
    return custom_id.rsplit(":", 1)[1]


async def test_the_owner_cancels_a_running_job(
    fake_discord: FakeDiscord, fake_comfy: FakeComfy, services: Services, bot: ComfyBot
) -> None:
    user = fake_discord.add_user("alice")
    fake_comfy.hold()
    ix, cancel = await _start(fake_discord, user)
    job = services.jobs.get(_job_id(cancel))
    await fake_comfy.wait_for_prompt(job.id, "running")

    click = await fake_discord.click(ix.original_message_id or 0, cancel, user_id=user)
    assert (await click.wait_response())["type"] == Response.deferred_message_update.value
    await services.comfy_calls.wait_for("POST", "/interrupt")
    fake_comfy.release()

    final = await fake_discord.wait_for(final_edit(ix), timeout=10)
    assert f"🚫 Cancelled by <@{user}>" in final.json["content"]
    assert "comfycord:cancel:" not in str(final.json["components"])
    assert (await job.result()).state is JobState.CANCELLED
    assert fake_comfy.interrupts == [{"prompt_id": job.id}]


async def test_the_owner_cancels_a_pending_job(
    fake_discord: FakeDiscord, fake_comfy: FakeComfy, services: Services, bot: ComfyBot
) -> None:
    user = fake_discord.add_user("bob")
    fake_comfy.hold()
    _, first = await _start(fake_discord, user, "first")
    await fake_comfy.wait_for_prompt(_job_id(first), "running")
    ix, cancel = await _start(fake_discord, user, "second")
    job = services.jobs.get(_job_id(cancel))
    await fake_comfy.wait_for_prompt(job.id, "pending")

    await fake_discord.click(ix.original_message_id or 0, cancel, user_id=user)

    final = await fake_discord.wait_for(final_edit(ix), timeout=10)
    assert f"🚫 Cancelled by <@{user}>" in final.json["content"]
    assert fake_comfy.state_of(job.id) is None  # removed from the queue, never ran
    assert fake_comfy.interrupts == []
    fake_comfy.release()


@pytest.mark.parametrize("env", [{"MAX_IN_FLIGHT_PER_BACKEND": "1"}])
async def test_the_owner_cancels_a_job_still_in_our_own_queue(
    fake_discord: FakeDiscord, fake_comfy: FakeComfy, services: Services, bot: ComfyBot
) -> None:
    user = fake_discord.add_user("zoe")
    fake_comfy.hold()
    await _start(fake_discord, user, "first")
    ix, cancel = await _start(fake_discord, user, "second")
    job = services.jobs.get(_job_id(cancel))
    assert job.state is JobState.WAITING

    await fake_discord.click(ix.original_message_id or 0, cancel, user_id=user)

    final = await fake_discord.wait_for(final_edit(ix), timeout=10)
    assert f"🚫 Cancelled by <@{user}>" in final.json["content"]
    assert fake_comfy.state_of(job.id) is None
    fake_comfy.release()


async def test_someone_else_cannot_cancel_but_a_moderator_can(
    fake_discord: FakeDiscord, fake_comfy: FakeComfy, services: Services, bot: ComfyBot
) -> None:
    owner = fake_discord.add_user("carol")
    stranger = fake_discord.add_user("mallory")
    moderator = fake_discord.add_user("mod", permissions=MEMBER_PERMISSIONS | MANAGE_MESSAGES)
    fake_comfy.hold()
    ix, cancel = await _start(fake_discord, owner)
    job = services.jobs.get(_job_id(cancel))
    await fake_comfy.wait_for_prompt(job.id, "running")

    refused = await fake_discord.click(ix.original_message_id or 0, cancel, user_id=stranger)
    answer = await fake_discord.wait_for(lambda c: webhook_of(refused)(c) and c.method == "POST")

    assert answer.json["flags"] == EPHEMERAL
    assert "Only the person who asked" in answer.json["content"]
    assert not job.is_done
    await fake_discord.click(ix.original_message_id or 0, cancel, user_id=moderator)
    await services.comfy_calls.wait_for("POST", "/interrupt")
    fake_comfy.release()
    final = await fake_discord.wait_for(final_edit(ix), timeout=10)
    assert f"Cancelled by <@{moderator}>" in final.json["content"]


async def test_a_refusal_reaches_the_clicker_through_a_429_storm(
    fake_discord: FakeDiscord, fake_comfy: FakeComfy, services: Services, bot: ComfyBot
) -> None:
    # Found by the soak: the private "only the person who asked" gave up after five 429s.
    owner, stranger = fake_discord.add_user("cora"), fake_discord.add_user("mal")
    fake_comfy.hold()
    ix, cancel = await _start(fake_discord, owner)
    fake_discord.inject_429("POST", "/webhooks/*", retry_after=0.01, count=6)

    refused = await fake_discord.click(ix.original_message_id or 0, cancel, user_id=stranger)
    answer = await fake_discord.wait_for(
        lambda c: webhook_of(refused)(c) and c.method == "POST" and c.status == 200, timeout=10
    )

    assert answer.json["flags"] == 64
    assert "Only the person who asked" in answer.json["content"]
    assert fake_discord.rate_limited == 6
    fake_comfy.release()


async def test_a_cancel_meeting_a_strange_comfyui_answer_says_so(
    fake_discord: FakeDiscord, fake_comfy: FakeComfy, services: Services, bot: ComfyBot
) -> None:
    # Found by the soak: a /queue answered by a proxy's page gave the owner a generic apology.
    owner = fake_discord.add_user("olga")
    fake_comfy.hold()
    ix, cancel = await _start(fake_discord, owner)
    await fake_comfy.wait_for_prompt(_job_id(cancel), "running")
    fake_comfy.answer_strangely("html", paths=["/queue"])

    click = await fake_discord.click(ix.original_message_id or 0, cancel, user_id=owner)
    answer = await fake_discord.wait_for(lambda c: webhook_of(click)(c) and c.method == "POST")

    assert answer.json["flags"] == 64
    assert "ComfyUI gave an answer ComfyCord does not understand" in answer.json["content"]
    fake_comfy.answer_normally()
    fake_comfy.release()


async def test_cancel_works_after_a_bot_restart(
    fake_discord: FakeDiscord, fake_comfy: FakeComfy, services: Services
) -> None:
    user = fake_discord.add_user("dave")
    fake_comfy.hold()
    async with run_bot(services.new_bot()):
        ix, cancel = await _start(fake_discord, user)
        job = services.jobs.get(_job_id(cancel))
        await fake_comfy.wait_for_prompt(job.id, "running")

    async with run_bot(services.new_bot()):
        click = await fake_discord.click(ix.original_message_id or 0, cancel, user_id=user)
        await click.wait_response()
        await services.comfy_calls.wait_for("POST", "/interrupt")
        fake_comfy.release()
        final = await fake_discord.wait_for(final_edit(click), timeout=10)

    assert f"🚫 Cancelled by <@{user}>" in final.json["content"]
    assert (await job.result()).state is JobState.CANCELLED


async def test_reroll_runs_the_same_request_with_a_new_seed(
    fake_discord: FakeDiscord, services: Services, bot: ComfyBot
) -> None:
    user = fake_discord.add_user("erin")
    other = fake_discord.add_user("frank")
    ix = await fake_discord.slash(
        "generate", {"prompt": "again", "workflow": "slow", "seed": 7}, user_id=user
    )
    await fake_discord.wait_for(final_edit(ix), timeout=10)
    reroll = await wait_button(fake_discord, ix.original_message_id or 0, "comfycord:reroll:")

    click = await fake_discord.click(ix.original_message_id or 0, reroll, user_id=other)

    assert (await click.wait_response())["type"] == Response.deferred_channel_message.value
    final = await fake_discord.wait_for(final_edit(click), timeout=10)
    new_id = final.json["embeds"][0]["footer"]["text"].removeprefix("job ")
    old, new = services.jobs.get(_job_id(reroll)), services.jobs.get(new_id)
    assert new.request.prompt == old.request.prompt == "again"
    assert old.seed == 7
    assert new.seed != 7
    assert new.request.requester == str(other)


async def test_reroll_of_a_job_unknown_after_a_restart_is_refused(
    fake_discord: FakeDiscord, services: Services, bot: ComfyBot
) -> None:
    user = fake_discord.add_user("gina")
    ix = await fake_discord.slash("generate", {"prompt": "x", "workflow": "slow"}, user_id=user)
    await fake_discord.wait_for(final_edit(ix), timeout=10)
    reroll = await wait_button(fake_discord, ix.original_message_id or 0, "comfycord:reroll:")
    services.jobs.jobs.clear()  # as after a restart: a new queue knows no old job

    click = await fake_discord.click(ix.original_message_id or 0, reroll, user_id=user)

    assert_told_privately(await click.wait_response(), "can no longer be rerolled")
