"""/generate end to end: the real discord.py client on FakeDiscord, the queue on FakeComfy."""

from __future__ import annotations

import datetime
import io
import itertools

import pytest
from PIL import Image

from bot.discord.client import ComfyBot
from tests.discord_env import (  # noqa: F401  # fixtures
    EPHEMERAL,
    PNG_MAGIC,
    Response,
    Services,
    assert_told_privately,
    bot_fixture,
    edits_of,
    env_fixture,
    final_edit,
    message_result,
    png,
    services_fixture,
    webhook_of,
)
from tests.fakes.comfy import FakeComfy
from tests.fakes.discord import FakeDiscord, Interaction, RecordedCall
from tests.iterate_env import SINGLE_LABELS, labels


async def test_slash_with_image_uploads_it_and_posts_the_result(
    fake_discord: FakeDiscord, fake_comfy: FakeComfy, bot: ComfyBot
) -> None:
    user = fake_discord.add_user("alice")
    source = png(64, 48)
    attachment = fake_discord.add_attachment(source, "cat.png")

    ix = await fake_discord.slash(
        "generate", {"prompt": "a cat", "image": attachment}, user_id=user
    )

    assert (await ix.wait_response())["type"] == Response.deferred_channel_message.value
    final = await fake_discord.wait_for(final_edit(ix), timeout=10)
    [uploaded] = fake_comfy.uploads.values()
    with Image.open(io.BytesIO(uploaded)) as sent, Image.open(io.BytesIO(source)) as given:
        assert sent.tobytes() == given.tobytes()
    _, data, _ = final.files[0]
    assert data.startswith(PNG_MAGIC)
    with Image.open(io.BytesIO(data)) as image:
        assert image.format == "PNG"
    assert labels(final.json) == SINGLE_LABELS
    assert "comfycord:reroll:" in str(final.json["components"])
    embed = final.json["embeds"][0]
    assert embed["title"] == "a cat"
    assert {f["name"] for f in embed["fields"]} >= {"Workflow", "Time", "Requested by"}
    assert "✅ Done" in final.json["content"]
    progress = [c for c in fake_discord.calls if edits_of(ix)(c) and c is not final]
    assert progress, "no progress edit before the result"
    assert all("Cancel" in str(c.json.get("components")) for c in progress)


async def _generate(
    fake: FakeDiscord, name: str, timeout: float = 10, **options: object
) -> tuple[Interaction, RecordedCall]:
    """Run /generate with `options` as a new member `name`; return it and its result edit."""
    ix = await fake.slash("generate", options, user_id=fake.add_user(name))
    return ix, await fake.wait_for(final_edit(ix), timeout=timeout)


async def test_progress_shows_steps_and_preview_and_is_throttled(
    fake_discord: FakeDiscord, fake_comfy: FakeComfy, services: Services, bot: ComfyBot
) -> None:
    ix, final = await _generate(fake_discord, "bob", prompt="dots", workflow="preview", steps=12)
    edits = [c for c in fake_discord.calls if edits_of(ix)(c) and c is not final]
    texts = [c.json["content"] for c in edits]
    assert any("Running **Slow Steps (SlowProgress)**" in t and "step" in t for t in texts), texts
    assert any("▰" in t for t in texts)
    previews = [c for c in edits if c.files]
    assert previews, "no preview was attached"
    assert previews[0].files[0][0].startswith("preview.")
    gaps = [b.time - a.time for a, b in itertools.pairwise(edits)]
    assert all(gap >= services.settings.progress_interval * 0.8 for gap in gaps), gaps
    assert final.files[0][1].startswith(PNG_MAGIC)
    assert final.json["attachments"] == [{"id": 0, "filename": final.files[0][0]}]


async def test_a_429_on_an_edit_is_retried_and_the_result_arrives(
    fake_discord: FakeDiscord, bot: ComfyBot
) -> None:
    fake_discord.inject_429("PATCH", "/webhooks/*/messages/@original", retry_after=0.2)

    _, final = await _generate(fake_discord, "carol", prompt="x", workflow="slow")
    assert fake_discord.rate_limited == 1
    assert final.files[0][1].startswith(PNG_MAGIC)


async def _held_job_shown(
    fake_discord: FakeDiscord, fake_comfy: FakeComfy, name: str, prompt: str = "x"
) -> Interaction:
    """Hold ComfyUI, ask for a slow job and wait for its first edit (the caller releases)."""
    user = fake_discord.add_user(name)
    fake_comfy.hold()
    ix = await fake_discord.slash("generate", {"prompt": prompt, "workflow": "slow"}, user_id=user)
    await fake_discord.wait_for(lambda c: edits_of(ix)(c) and c.status == 200)
    return ix


@pytest.mark.parametrize("env", [{"PROGRESS_INTERVAL": "30"}])  # the result is the next edit
async def test_a_429_storm_longer_than_discord_py_retries_still_delivers_the_result(
    fake_discord: FakeDiscord, fake_comfy: FakeComfy, bot: ComfyBot
) -> None:
    # Found by the soak: discord.py gives up after five 429s in a row and the result was dropped.
    ix = await _held_job_shown(fake_discord, fake_comfy, "carla")
    fake_discord.inject_429("PATCH", "/webhooks/*/messages/@original", retry_after=0.01, count=8)
    fake_comfy.release()

    final = await fake_discord.wait_for(final_edit(ix), timeout=10)
    assert fake_discord.rate_limited == 8
    assert final.files[0][1].startswith(PNG_MAGIC)
    assert "✅ Done" in final.json["content"]


@pytest.mark.parametrize("env", [{"PROGRESS_INTERVAL": "30"}])  # the result is the next edit
async def test_a_429_storm_longer_than_a_minute_of_retries_still_delivers_the_result(
    fake_discord: FakeDiscord, fake_comfy: FakeComfy, bot: ComfyBot, monkeypatch
) -> None:
    # Found by the short soak: a storm on the edits, then on the channel route once the token
    # expired, outlasted the eight tries (five each) a reply gets, and the images were dropped.
    monkeypatch.setattr("bot.discord.persist.PERSIST_BACKOFF", 0.001)
    ix = await _held_job_shown(fake_discord, fake_comfy, "cora")
    fake_discord.inject_429("PATCH", "/webhooks/*/messages/@original", retry_after=0.01, count=60)
    fake_comfy.release()

    final = await fake_discord.wait_for(final_edit(ix), timeout=20)
    assert fake_discord.rate_limited == 60
    assert final.files[0][1].startswith(PNG_MAGIC)
    assert "✅ Done" in final.json["content"]


@pytest.mark.parametrize("env", [{"PROGRESS_INTERVAL": "30"}])  # the result is the next edit
async def test_a_result_discord_refuses_still_ends_the_message_with_its_buttons(
    fake_discord: FakeDiscord, fake_comfy: FakeComfy, bot: ComfyBot
) -> None:
    # Found by the soak: the fallback edit dropped the buttons, and a lost job lost its Retry.
    ix = await _held_job_shown(fake_discord, fake_comfy, "cleo")
    fake_discord.inject_error("PATCH", "/webhooks/*/messages/@original", 413, 40005)
    fake_comfy.release()

    final = await fake_discord.wait_for(final_edit(ix), timeout=10)
    assert "could not be posted (413)" in final.json["content"]
    assert "comfycord:reroll:" in str(final.json["components"])


async def test_an_expired_token_goes_on_in_the_same_reply_edited_with_the_bot_token(
    fake_discord: FakeDiscord, fake_comfy: FakeComfy, bot: ComfyBot
) -> None:
    # Found by the soak: a new channel message took over, and the member's reply kept showing
    # the job running, its Cancel button dead and no Retry where they looked for it.
    ix = await _held_job_shown(fake_discord, fake_comfy, "dave", "late")
    fake_discord.expire_token(ix)
    fake_comfy.release()

    final = await _result_in_the_reply_by_the_bot_token(fake_discord, ix)
    assert final.status == 200
    assert final.files[0][1].startswith(PNG_MAGIC)
    shown = fake_discord.messages[ix.original_message_id or 0]
    assert shown["attachments"]
    assert "comfycord:reroll:" in str(shown["components"])
    _assert_no_channel_message_posted(fake_discord)


async def _result_in_the_reply_by_the_bot_token(
    fake_discord: FakeDiscord, ix: Interaction
) -> RecordedCall:
    """Wait for the result edit of the interaction's reply made as a channel message edit."""
    reply = f"/channels/{fake_discord.channel_id}/messages/{ix.original_message_id}"
    return await fake_discord.wait_for(
        lambda c: c.method == "PATCH" and c.path == reply and bool(c.json.get("embeds")),
        timeout=10,
    )


def _assert_no_channel_message_posted(fake_discord: FakeDiscord) -> None:
    """The bot posted no new channel message (the reply itself went on)."""
    posts = f"/channels/{fake_discord.channel_id}/messages"
    assert not any(c.method == "POST" and c.path == posts for c in fake_discord.calls)


async def test_an_expired_token_of_a_deleted_reply_continues_in_a_new_channel_message(
    fake_discord: FakeDiscord, fake_comfy: FakeComfy, bot: ComfyBot
) -> None:
    ix = await _held_job_shown(fake_discord, fake_comfy, "dora", "gone")
    fake_discord.expire_token(ix)
    await fake_discord.delete_message(ix.original_message_id or 0)
    fake_comfy.release()

    sent = await fake_discord.wait_for(
        lambda c: c.method == "POST" and c.path == f"/channels/{fake_discord.channel_id}/messages"
    )
    assert sent.status == 200
    message_id = int(sent.response["id"])
    final = await fake_discord.wait_for(message_result(message_id), timeout=10)
    assert final.status == 200
    assert final.files[0][1].startswith(PNG_MAGIC)
    assert fake_discord.messages[message_id]["attachments"]


async def test_an_oversized_output_is_reencoded_under_the_limit(
    fake_discord: FakeDiscord, bot: ComfyBot
) -> None:
    fake_discord.attachment_size_limit = 1500
    attachment = fake_discord.add_attachment(png(1200, 900), "big.png")

    _, final = await _generate(fake_discord, "erin", prompt="big", image=attachment)
    _assert_fitted_as_jpeg(final, "re-encoded")


def _assert_fitted_as_jpeg(final: RecordedCall, note: str) -> None:
    """The result was posted as a JPEG within the 1500-byte limit, its message saying `note`."""
    assert final.status == 200
    name, data, _ = final.files[0]
    assert name.endswith(".jpg")
    assert len(data) <= 1500
    assert note in final.json["content"]


async def test_an_output_over_pillows_bomb_limit_is_still_fitted_and_posted(
    fake_discord: FakeDiscord, bot: ComfyBot, monkeypatch: pytest.MonkeyPatch
) -> None:
    # An upscaler's 14000x14000 output is over Pillow's limit; the limit is lowered here (to
    # 2 Mpx for an error) rather than the output raised, so the test stays small: the 64x48
    # input passes, the 2000x2000 output is what Image.open would refuse as a bomb.
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1_000_000)
    fake_discord.attachment_size_limit = 1500
    attachment = fake_discord.add_attachment(png(64, 48), "small.png")

    _, final = await _generate(
        fake_discord, "frank", 15, prompt="big", workflow="upscale", image=attachment
    )
    _assert_fitted_as_jpeg(final, "was re-encoded as JPEG at")


async def test_more_than_ten_images_are_split_across_messages(
    fake_discord: FakeDiscord, bot: ComfyBot
) -> None:
    ix, final = await _generate(fake_discord, "frank", prompt="many", workflow="batch")
    assert len(final.files) == 10
    extra = await fake_discord.wait_for(
        lambda c: webhook_of(ix)(c) and c.method == "POST" and bool(c.files)
    )
    assert len(extra.files) == 2


async def test_a_bad_attachment_is_refused_before_anything_reaches_comfyui(
    fake_discord: FakeDiscord, fake_comfy: FakeComfy, bot: ComfyBot
) -> None:
    user = fake_discord.add_user("gina")
    text = fake_discord.add_attachment(b"hello", "notes.txt", "text/plain")
    broken = fake_discord.add_attachment(PNG_MAGIC + b"garbage", "broken.png")

    refused = await fake_discord.slash("generate", {"prompt": "x", "image": text}, user_id=user)
    corrupt = await fake_discord.slash("generate", {"prompt": "x", "image": broken}, user_id=user)

    assert_told_privately(await refused.wait_response(), "notes.txt is not an image")
    deferred = await corrupt.wait_response()  # deferred before downloading
    assert deferred["type"] == Response.deferred_channel_message.value
    followup = await fake_discord.wait_for(lambda c: webhook_of(corrupt)(c) and c.method == "POST")
    assert followup.json["flags"] == EPHEMERAL
    assert "broken.png" in followup.json["content"]
    assert corrupt.original_message_id in fake_discord.deleted_messages
    paths = {path for _, path in fake_comfy.requests}
    assert "/upload/image" not in paths
    assert "/prompt" not in paths


async def test_values_outside_the_workflow_are_refused_privately(
    fake_discord: FakeDiscord, fake_comfy: FakeComfy, bot: ComfyBot
) -> None:
    user = fake_discord.add_user("hank")
    attachment = fake_discord.add_attachment(png(), "in.png")

    ix = await fake_discord.slash(
        "generate", {"prompt": "x", "image": attachment, "steps": 20}, user_id=user
    )
    out_of_range = await fake_discord.slash(
        "generate", {"prompt": "x", "workflow": "slow", "steps": 501}, user_id=user
    )
    unknown = await fake_discord.slash(
        "generate", {"prompt": "x", "workflow": "nope"}, user_id=user
    )

    for interaction, expected in [
        (ix, "no place for steps"),
        (out_of_range, "steps must be between 1 and 500"),
        (unknown, "No workflow 'nope'"),
    ]:
        assert_told_privately(await interaction.wait_response(), expected)
    assert "/prompt" not in {path for _, path in fake_comfy.requests}


@pytest.mark.parametrize("env", [{"ALLOWED_CHANNEL_IDS": "42"}])
async def test_requests_outside_the_allowed_channels_are_refused(
    fake_discord: FakeDiscord, bot: ComfyBot
) -> None:
    user = fake_discord.add_user("ivy")

    ix = await fake_discord.slash("generate", {"prompt": "x"}, user_id=user)

    answer = await ix.wait_response()
    assert answer["data"]["flags"] == EPHEMERAL
    assert "only take requests in <#42>" in answer["data"]["content"]


async def test_workflow_autocomplete_offers_names_and_display_names(
    fake_discord: FakeDiscord, bot: ComfyBot
) -> None:
    user = fake_discord.add_user("jon")

    by_name = await fake_discord.autocomplete(
        "generate", {"prompt": "x", "workflow": "sl"}, "workflow", user_id=user
    )
    by_display = await fake_discord.autocomplete(
        "generate", {"prompt": "x", "workflow": "twelve"}, "workflow", user_id=user
    )

    assert by_name == [{"name": "Slow steps (test) (slow)", "value": "slow"}]
    assert by_display == [{"name": "Twelve images (test) (batch)", "value": "batch"}]


async def test_an_execution_error_names_the_node_and_the_message(
    fake_discord: FakeDiscord, bot: ComfyBot
) -> None:
    _, final = await _generate(fake_discord, "kim", prompt="x", workflow="fail")
    assert (
        "❌ Failed in node 2 “Always Fails” (FailNode): the test asked this node to fail"
        in final.json["content"]
    )
    assert final.json["embeds"] == []
    assert "comfycord:reroll:" in str(final.json["components"])


async def test_a_job_outliving_the_token_goes_on_with_the_bot_token_before_it_expires(
    fake_discord: FakeDiscord, fake_comfy: FakeComfy, bot: ComfyBot, monkeypatch
) -> None:
    # As if 15 minutes had passed: the reply switches by the clock, without waiting for an error.
    monkeypatch.setattr("bot.discord.reply.TOKEN_MARGIN", datetime.timedelta(minutes=15))
    user = fake_discord.add_user("fiona")
    ix = await fake_discord.slash("generate", {"prompt": "long", "workflow": "slow"}, user_id=user)
    await ix.wait_response(10)
    final = await _result_in_the_reply_by_the_bot_token(fake_discord, ix)
    assert final.files[0][1].startswith(PNG_MAGIC)
    webhook_edits = [c for c in fake_discord.calls if c.method == "PATCH" and ix.token in c.path]
    assert all(not c.files for c in webhook_edits)
    assert not any(c.status >= 400 for c in fake_discord.calls)
    _assert_no_channel_message_posted(fake_discord)
