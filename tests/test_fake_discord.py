"""The real discord.py 2.7.1 client against the loopback FakeDiscord."""

from __future__ import annotations

import asyncio
import io
from typing import Any

import discord
import pytest
from discord import app_commands
from discord.ext import commands
from PIL import Image

from tests.discord_env import EPHEMERAL, Option, Response
from tests.fakes.discord import FakeDiscord, RecordedCall, run_bot
from tests.fakes.discord_payloads import FLAG_LOADING

ORIGINAL = "/webhooks/*/messages/@original"


def png(width: int = 4, height: int = 3) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), "red").save(buffer, "PNG")
    return buffer.getvalue()


class JobView(discord.ui.View):
    def __init__(self) -> None:
        super().__init__(timeout=None)

    @discord.ui.button(label="Cancel", style=discord.ButtonStyle.danger, custom_id="job:cancel")
    async def cancel(
        self, interaction: discord.Interaction, button: discord.ui.Button[Any]
    ) -> None:
        await interaction.response.edit_message(content="Cancelled by user", view=None)


class Bot(commands.Bot):
    def __init__(self, *, message_content: bool = False) -> None:
        intents = discord.Intents.default()
        intents.message_content = message_content
        super().__init__(command_prefix="!", intents=intents, guild_ready_timeout=0.05)

    async def setup_hook(self) -> None:
        self.add_view(JobView())


def add_generate(bot: commands.Bot, *, finish: bool = True) -> None:
    @bot.tree.command()
    @app_commands.describe(prompt="What to draw", image="Input image")
    async def generate(
        interaction: discord.Interaction, prompt: str, image: discord.Attachment
    ) -> None:
        """Generate an image."""
        await interaction.response.defer(thinking=True)
        source = await image.read()
        for step in range(1, 4):
            await interaction.edit_original_response(
                content=f"{prompt}: step {step}/3 ({len(source)} bytes in)", view=JobView()
            )
        if finish:
            embed = discord.Embed(title=prompt).set_image(url="attachment://result.png")
            await interaction.edit_original_response(
                content="done",
                view=None,
                embed=embed,
                attachments=[discord.File(io.BytesIO(png(8, 6)), "result.png")],
            )


def is_patch_original(call: RecordedCall) -> bool:
    return call.method == "PATCH" and call.path.endswith("/messages/@original")


async def test_login_and_ready(fake_discord: FakeDiscord) -> None:
    async with run_bot(Bot()) as bot:
        assert bot.user is not None
        assert bot.user.id == fake_discord.bot_user_id
        assert bot.application_id == fake_discord.application_id
        guild = bot.get_guild(fake_discord.guild_id)
        assert guild is not None
        assert guild.get_channel(fake_discord.channel_id) is not None
        assert guild.member_count == 2  # members are cached only with the members intent
    paths = [call.path for call in fake_discord.calls]
    assert paths[:2] == ["/users/@me", "/oauth2/applications/@me"]
    assert fake_discord.gateway.identifies[0]["intents"] == discord.Intents.default().value


async def test_slash_defer_download_progress_and_final_file(fake_discord: FakeDiscord) -> None:
    bot = Bot()
    add_generate(bot)
    user = fake_discord.add_user("alice")
    source = png()
    image = fake_discord.add_attachment(source, "input.png")
    async with run_bot(bot):
        ix = await fake_discord.slash("generate", {"prompt": "cat", "image": image}, user_id=user)
        assert await ix.wait_response() == {"type": Response.deferred_channel_message.value}
        final = await fake_discord.wait_for(lambda c: is_patch_original(c) and bool(c.files))

    calls = fake_discord.calls[fake_discord.calls.index(final) - 4 :]
    assert calls[0].path == f"/attachments/{image['id']}/input.png"
    progress = [c.json for c in calls[1:4]]
    assert [p["content"] for p in progress] == [
        f"cat: step {i}/3 ({len(source)} bytes in)" for i in (1, 2, 3)
    ]
    button = progress[0]["components"][0]["components"][0]
    assert (button["custom_id"], button["style"]) == (
        "job:cancel",
        discord.ButtonStyle.danger.value,
    )
    assert final.json["attachments"] == [{"id": 0, "filename": "result.png"}]
    assert final.json["components"] == []
    assert final.files[0][0] == "result.png"
    assert final.files[0][1].startswith(b"\x89PNG")

    message = fake_discord.original(ix)
    assert message is not None
    assert message["content"] == "done"
    assert message["flags"] == 0  # the loading flag is gone after the first edit
    assert message["components"] == []
    [attachment] = message["attachments"]
    assert (attachment["content_type"], attachment["width"], attachment["height"]) == (
        "image/png",
        8,
        6,
    )
    assert fake_discord.attachment_bytes(attachment) == final.files[0][1]
    assert message["embeds"][0]["image"]["url"] == attachment["url"]


async def test_click_reaches_persistent_view_after_restart(fake_discord: FakeDiscord) -> None:
    user = fake_discord.add_user("bob")
    first = Bot()
    add_generate(first, finish=False)
    async with run_bot(first):
        ix = await fake_discord.slash(
            "generate",
            {"prompt": "dog", "image": fake_discord.add_attachment(png(), "in.png")},
            user_id=user,
        )
        await fake_discord.wait_for(lambda c: is_patch_original(c) and "3/3" in c.json["content"])
    message_id = ix.original_message_id
    assert message_id is not None

    async with run_bot(Bot()):
        click = await fake_discord.click(message_id, "job:cancel", user_id=user)
        response = await click.wait_response()
    assert response["type"] == Response.message_update.value
    assert response["data"] | {"tts": False} == {
        "content": "Cancelled by user",
        "components": [],
        "tts": False,
    }
    assert fake_discord.messages[message_id]["content"] == "Cancelled by user"
    assert len(fake_discord.gateway.identifies) == 2


async def test_injected_429_on_edit_is_retried(fake_discord: FakeDiscord) -> None:
    fake_discord.inject_429("PATCH", ORIGINAL, retry_after=0.2)
    bot = Bot()
    add_generate(bot)
    user = fake_discord.add_user("carol")
    async with run_bot(bot):
        ix = await fake_discord.slash(
            "generate",
            {"prompt": "owl", "image": fake_discord.add_attachment(png(), "in.png")},
            user_id=user,
        )
        await fake_discord.wait_for(lambda c: is_patch_original(c) and bool(c.files))
    patches = [c for c in fake_discord.calls if is_patch_original(c)]
    assert [c.status for c in patches] == [429, 200, 200, 200, 200]
    assert patches[0].json == patches[1].json
    assert patches[1].time - patches[0].time >= 0.19
    assert fake_discord.rate_limited == 1
    assert fake_discord.original(ix)["content"] == "done"  # type: ignore[index]


async def test_expired_token_raises_and_channel_fallback_works(fake_discord: FakeDiscord) -> None:
    bot = Bot()
    release = asyncio.Event()
    outcome: asyncio.Future[discord.HTTPException] = asyncio.get_running_loop().create_future()

    @bot.tree.command()
    async def slow(interaction: discord.Interaction) -> None:
        """Take longer than the token lives."""
        await interaction.response.defer(thinking=True)
        await release.wait()
        try:
            await interaction.edit_original_response(content="done")
        except discord.HTTPException as exc:
            outcome.set_result(exc)
            assert isinstance(interaction.channel, discord.TextChannel)
            await interaction.channel.send(f"{interaction.user.mention} your job is done")

    user = fake_discord.add_user("dave")
    async with run_bot(bot):
        ix = await fake_discord.slash("slow", {}, user_id=user)
        await ix.wait_response()
        fake_discord.expire_token(ix)
        release.set()
        sent = await fake_discord.wait_for(
            lambda c: (
                c.method == "POST" and c.path == f"/channels/{fake_discord.channel_id}/messages"
            )
        )
        async with asyncio.timeout(5):
            exc = await outcome
    assert type(exc) is discord.HTTPException  # 401 is neither NotFound nor Forbidden
    assert (exc.status, exc.code) == (401, 50027)
    assert sent.status == 200
    assert sent.headers["Authorization"] == "Bot fake-token"
    assert (
        fake_discord.messages[int(sent.response["id"])]["content"] == f"<@{user}> your job is done"
    )


async def test_message_context_menu_opens_modal_and_submit(fake_discord: FakeDiscord) -> None:
    bot = Bot()

    class PromptModal(discord.ui.Modal, title="Use as input"):
        prompt: discord.ui.TextInput[Any] = discord.ui.TextInput(label="Prompt", custom_id="prompt")

        def __init__(self, source: discord.Message) -> None:
            super().__init__(custom_id="use-as-input")
            self.source = source

        async def on_submit(self, interaction: discord.Interaction) -> None:
            names = [a.filename for a in self.source.attachments]
            await interaction.response.send_message(
                f"{self.prompt.value} + {names}", ephemeral=True
            )

    @app_commands.context_menu(name="Use as input")
    async def use_as_input(interaction: discord.Interaction, message: discord.Message) -> None:
        await interaction.response.send_modal(PromptModal(message))

    bot.tree.add_command(use_as_input)
    user = fake_discord.add_user("erin")
    async with run_bot(bot):
        posted = await fake_discord.post_message(
            "look", user_id=user, attachments=[fake_discord.add_attachment(png(), "cat.png")]
        )
        menu = await fake_discord.message_command("Use as input", int(posted["id"]), user_id=user)
        opened = await menu.wait_response()
        assert opened["type"] == Response.modal.value
        assert opened["data"]["custom_id"] == "use-as-input"
        submit = await fake_discord.submit_modal("use-as-input", {"prompt": "a cat"}, user_id=user)
        reply = await submit.wait_response()
    assert reply["type"] == Response.channel_message.value
    assert (reply["data"]["content"], reply["data"]["flags"]) == ("a cat + ['cat.png']", EPHEMERAL)
    assert fake_discord.original(submit)["flags"] == EPHEMERAL  # type: ignore[index]


async def test_mention_with_attachment_reaches_on_message(fake_discord: FakeDiscord) -> None:
    bot = Bot(message_content=True)
    seen: asyncio.Queue[tuple[str, bytes]] = asyncio.Queue()

    @bot.listen()
    async def on_message(message: discord.Message) -> None:
        if bot.user is not None and bot.user.mentioned_in(message) and message.attachments:
            await seen.put((message.content, await message.attachments[0].read()))

    user = fake_discord.add_user("frank")
    data = png()
    async with run_bot(bot):
        image = fake_discord.add_attachment(data, "in.png")
        await fake_discord.post_message(
            "make it blue", user_id=user, attachments=[image], mentions_bot=True
        )
        async with asyncio.timeout(5):
            content, downloaded = await seen.get()
    assert content == f"<@{fake_discord.bot_user_id}> make it blue"
    assert downloaded == data


async def test_without_message_content_intent_only_mentions_carry_content(
    fake_discord: FakeDiscord,
) -> None:
    bot = Bot(message_content=False)
    seen: asyncio.Queue[discord.Message] = asyncio.Queue()
    bot.add_listener(seen.put, "on_message")
    user = fake_discord.add_user("gina")
    async with run_bot(bot):
        image = fake_discord.add_attachment(png(), "in.png")
        await fake_discord.post_message("plain", user_id=user, attachments=[image])
        await fake_discord.post_message("hey", user_id=user, attachments=[image], mentions_bot=True)
        async with asyncio.timeout(5):
            plain, mention = await seen.get(), await seen.get()
    assert (plain.content, plain.attachments) == ("", [])
    assert mention.content.endswith("hey")
    assert [a.filename for a in mention.attachments] == ["in.png"]


async def test_edit_bucket_answers_429_and_discord_py_retries(fake_discord: FakeDiscord) -> None:
    fake_discord.edit_bucket = (2, 0.3)
    bot = Bot()

    @bot.tree.command()
    async def chatty(interaction: discord.Interaction) -> None:
        """Edit too often."""
        await interaction.response.defer()
        for step in range(5):
            await interaction.edit_original_response(content=f"step {step}")

    user = fake_discord.add_user("hank")
    async with run_bot(bot):
        await fake_discord.slash("chatty", {}, user_id=user)
        await fake_discord.wait_for(
            lambda c: is_patch_original(c) and c.status == 200 and c.json["content"] == "step 4",
            timeout=10,
        )
    patches = [c for c in fake_discord.calls if is_patch_original(c)]
    assert [c.json["content"] for c in patches if c.status == 200] == [
        f"step {i}" for i in range(5)
    ]
    assert fake_discord.rate_limited == sum(c.status == 429 for c in patches) >= 2
    limited = next(c for c in patches if c.status == 429)
    assert limited.response["retry_after"] > 0
    assert limited.response["global"] is False


async def test_sync_records_put_body_and_guild_scope(fake_discord: FakeDiscord) -> None:
    bot = Bot()
    add_generate(bot)
    guild = discord.Object(fake_discord.guild_id)
    async with run_bot(bot):
        bot.tree.copy_global_to(guild=guild)
        synced = await bot.tree.sync(guild=guild)
        ix = await fake_discord.slash(
            "generate",
            {"prompt": "x", "image": fake_discord.add_attachment(png(), "in.png")},
            user_id=fake_discord.owner_id,
        )
        await fake_discord.wait_for(lambda c: is_patch_original(c) and bool(c.files))
    put = next(c for c in fake_discord.calls if c.method == "PUT")
    assert put.path == f"/applications/{fake_discord.application_id}/guilds/{guild.id}/commands"
    [command] = put.json
    assert [(o["name"], o["type"]) for o in command["options"]] == [
        ("prompt", Option.string.value),
        ("image", Option.attachment.value),
    ]
    assert [c.id for c in synced] == [int(c["id"]) for c in fake_discord.commands[guild.id]]
    assert ix.payload["data"]["guild_id"] == str(guild.id)
    assert ix.payload["data"]["id"] == str(synced[0].id)


async def test_autocomplete_returns_the_bots_choices(fake_discord: FakeDiscord) -> None:
    bot = Bot()

    async def suggest(
        interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        return [app_commands.Choice(name=f"{current} {i}", value=f"{current}{i}") for i in range(2)]

    @bot.tree.command()
    @app_commands.autocomplete(workflow=suggest)
    async def pick(interaction: discord.Interaction, workflow: str, steps: int = 20) -> None:
        """Pick a workflow."""
        await interaction.response.send_message(workflow)

    async with run_bot(bot):
        choices = await fake_discord.autocomplete(
            "pick", {"workflow": "sd", "steps": 5}, "workflow", user_id=fake_discord.owner_id
        )
    assert choices == [{"name": "sd 0", "value": "sd0"}, {"name": "sd 1", "value": "sd1"}]


async def test_oversized_upload_is_rejected_with_413(fake_discord: FakeDiscord) -> None:
    fake_discord.attachment_size_limit = 1000
    bot = Bot()
    outcome: asyncio.Future[discord.HTTPException] = asyncio.get_running_loop().create_future()

    @bot.tree.command()
    async def big(interaction: discord.Interaction) -> None:
        """Send too much."""
        assert interaction.filesize_limit == 1000
        await interaction.response.defer()
        try:
            await interaction.edit_original_response(
                attachments=[discord.File(io.BytesIO(b"x" * 2000), "big.bin")]
            )
        except discord.HTTPException as exc:
            outcome.set_result(exc)

    async with run_bot(bot):
        await fake_discord.slash("big", {}, user_id=fake_discord.owner_id)
        async with asyncio.timeout(5):
            exc = await outcome
    assert (exc.status, exc.code) == (413, 40005)


async def test_followup_after_defer_fills_the_loading_message(fake_discord: FakeDiscord) -> None:
    bot = Bot()

    @bot.tree.command()
    async def later(interaction: discord.Interaction) -> None:
        """Defer, then follow up twice."""
        await interaction.response.defer(thinking=True, ephemeral=True)
        first = await interaction.followup.send("first", wait=True)
        second = await interaction.followup.send("second", wait=True)
        await interaction.followup.edit_message(second.id, content=f"second after {first.id}")

    async with run_bot(bot):
        ix = await fake_discord.slash("later", {}, user_id=fake_discord.owner_id)
        await fake_discord.wait_for(lambda c: c.method == "PATCH" and c.status == 200)
    original = fake_discord.original(ix)
    assert original is not None
    assert (original["content"], original["flags"]) == ("first", EPHEMERAL)
    second = fake_discord.messages[ix.message_ids[-1]]
    assert second["content"] == f"second after {original['id']}"


class RefusingView(discord.ui.View):
    def __init__(self) -> None:
        super().__init__(timeout=None)

    @discord.ui.button(label="Cancel", custom_id="job:refuse")
    async def refuse(
        self, interaction: discord.Interaction, button: discord.ui.Button[Any]
    ) -> None:
        await interaction.response.defer()  # a deferred update: type 6
        await interaction.followup.send("Only the owner can do that.", ephemeral=True)


async def test_a_refusal_after_a_deferred_update_leaves_the_clicked_message_alone(
    fake_discord: FakeDiscord,
) -> None:
    # Found by the soak: a job message the bot had edited through the channel (its token
    # gone) stayed "thinking" in the fake, and a stranger's refused click (defer, then a
    # followup) replaced it, Retry button and all. Discord fills only the interaction's own
    # deferred message; a deferred update's followup is a new message.
    bot = Bot()
    bot.add_view(RefusingView())

    @bot.tree.command()
    async def job(interaction: discord.Interaction) -> None:
        """Defer, then show the job through the channel, as after the token expired."""
        await interaction.response.defer(thinking=True)
        original = await interaction.original_response()
        assert isinstance(interaction.channel, discord.TextChannel)
        message = interaction.channel.get_partial_message(original.id)
        await message.edit(content="lost: press Retry", view=RefusingView())

    owner, stranger = fake_discord.add_user("olga"), fake_discord.add_user("sam")
    async with run_bot(bot):
        ix = await fake_discord.slash("job", {}, user_id=owner)
        await fake_discord.wait_for(lambda c: c.method == "PATCH" and c.path.startswith("/ch"))
        message_id = ix.original_message_id or 0
        assert fake_discord.messages[message_id]["flags"] & FLAG_LOADING == 0
        click = await fake_discord.click(message_id, "job:refuse", user_id=stranger)
        await fake_discord.wait_for(lambda c: c.method == "POST" and click.token in c.path)
    shown = fake_discord.messages[message_id]
    assert shown["content"] == "lost: press Retry"
    assert shown["components"][0]["components"][0]["custom_id"] == "job:refuse"
    refusal = fake_discord.messages[click.message_ids[-1]]
    assert (refusal["content"], refusal["flags"]) == ("Only the owner can do that.", EPHEMERAL)


async def test_reconnect_resumes_the_session(fake_discord: FakeDiscord) -> None:
    bot = Bot()
    add_generate(bot)
    async with run_bot(bot):
        resumed = bot.wait_for("resumed", timeout=5)
        await fake_discord.request_reconnect()
        await resumed
        ix = await fake_discord.slash(
            "generate",
            {"prompt": "x", "image": fake_discord.add_attachment(png(), "in.png")},
            user_id=fake_discord.owner_id,
        )
        assert (await ix.wait_response())["type"] == Response.deferred_channel_message.value
        await fake_discord.wait_for(lambda c: is_patch_original(c) and bool(c.files))
    assert len(fake_discord.gateway.identifies) == 1


@pytest.mark.parametrize("method", ["callback twice", "edit before responding"])
async def test_protocol_errors_look_like_discord(fake_discord: FakeDiscord, method: str) -> None:
    bot = Bot()
    outcome: asyncio.Future[discord.HTTPException] = asyncio.get_running_loop().create_future()
    adapter = discord.webhook.async_.async_context.get()

    @bot.tree.command()
    async def broken(interaction: discord.Interaction) -> None:
        """Misuse the interaction API."""
        try:
            if method == "callback twice":
                await interaction.response.defer()
                await adapter.create_interaction_response(
                    interaction.id,
                    interaction.token,
                    session=interaction._session,
                    params=discord.http.MultipartParameters(
                        {"type": Response.deferred_channel_message.value}, [], []
                    ),
                )
            else:
                await interaction.edit_original_response(content="too early")
        except discord.HTTPException as exc:
            outcome.set_result(exc)

    async with run_bot(bot):
        await fake_discord.slash("broken", {}, user_id=fake_discord.owner_id)
        async with asyncio.timeout(5):
            exc = await outcome
    expected = {"callback twice": (400, 40060), "edit before responding": (404, 10015)}
    assert (exc.status, exc.code) == expected[method]


async def test_reply_with_file_to_a_mention(fake_discord: FakeDiscord) -> None:
    bot = Bot(message_content=True)

    @bot.listen()
    async def on_message(message: discord.Message) -> None:
        if bot.user is not None and bot.user.mentioned_in(message) and message.attachments:
            result = discord.File(io.BytesIO(await message.attachments[0].read()), "echo.png")
            await message.reply("here", file=result)

    user = fake_discord.add_user("ivy")
    data = png()
    fake_discord.inject_429("POST", f"/channels/{fake_discord.channel_id}/messages", 0.1)
    async with run_bot(bot):
        image = fake_discord.add_attachment(data, "in.png")
        posted = await fake_discord.post_message(
            "again", user_id=user, attachments=[image], mentions_bot=True
        )
        sent = await fake_discord.wait_for(lambda c: c.method == "POST" and c.status == 200)
    reply = fake_discord.messages[int(sent.response["id"])]
    assert reply["type"] == discord.MessageType.reply.value
    assert reply["message_reference"]["message_id"] == posted["id"]
    assert fake_discord.attachment_bytes(reply["attachments"][0]) == data
    assert fake_discord.rate_limited == 1


async def test_a_second_channel_carries_commands_mentions_and_replies(
    fake_discord: FakeDiscord,
) -> None:
    bot = Bot(message_content=True)
    add_generate(bot)

    @bot.listen()
    async def on_message(message: discord.Message) -> None:
        if bot.user is not None and bot.user.mentioned_in(message):
            await message.reply(f"in {message.channel.id}")

    user = fake_discord.add_user("jo")
    art = fake_discord.add_channel(name="art")
    seen: list[RecordedCall] = []
    fake_discord.observe(seen.append)
    async with run_bot(bot):
        assert bot.get_channel(art) is not None
        ix = await fake_discord.slash(
            "generate",
            {"prompt": "x", "image": fake_discord.add_attachment(png(), "in.png")},
            user_id=user,
            channel_id=art,
        )
        await ix.wait_response()
        await fake_discord.wait_for(lambda c: is_patch_original(c) and bool(c.files))
        posted = await fake_discord.post_message(
            "hi", user_id=user, mentions_bot=True, channel_id=art
        )
        sent = await fake_discord.wait_for(
            lambda c: c.method == "POST" and c.path.startswith("/channels/")
        )
    assert ix.payload["channel_id"] == str(art)
    assert fake_discord.messages[ix.original_message_id or 0]["channel_id"] == str(art)
    assert sent.path == f"/channels/{art}/messages"
    assert sent.response["message_reference"]["message_id"] == posted["id"]
    assert sent.response["content"] == f"in {art}"
    assert seen == fake_discord.calls


async def test_observing_without_keeping_calls(fake_discord: FakeDiscord) -> None:
    seen: list[RecordedCall] = []
    fake_discord.observe(seen.append, keep_calls=False)
    async with run_bot(Bot()):
        pass
    assert any(call.path == "/users/@me" for call in seen)
    assert fake_discord.calls == []


async def test_dropped_gateway_socket_is_resumed(fake_discord: FakeDiscord) -> None:
    bot = Bot()
    async with run_bot(bot):
        resumed = bot.wait_for("resumed", timeout=5)
        await fake_discord.drop_gateway()
        await resumed
    assert len(fake_discord.gateway.identifies) == 1
