"""Community controls end to end on the loopback Discord, with two servers.

Settings, listings and buttons stay in their server; refusals are private and reach the mod
log; quotas by role with their daily reset; image moderation with a stub detector.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from bot.community.gate import Gate
from bot.community.guild import GuildSettings
from bot.community.nsfw import ImageModerator, Verdict
from bot.community.quotas import DAY, next_reset
from bot.discord.client import ComfyBot
from bot.jobs.servers import ServerStore
from tests.discord_env import (  # noqa: F401  # fixtures
    Services,
    bot_fixture,
    env_fixture,
    final_edit,
    library_dir,
    make_settings,
    open_services,
    png,
    services_fixture,
    wait_button,
    webhook_of,
)
from tests.fakes.comfy import FakeComfy
from tests.fakes.discord import FakeDiscord, Interaction, RecordedCall, run_bot
from tests.fakes.discord_payloads import MEMBER_PERMISSIONS

MANAGE_GUILD = 1 << 5
MANAGE_MESSAGES = 1 << 13


class Clock:
    """The gate's clock: real time unless a test moves it on.

    The journal writes real time; so that a test never straddles 00:00 UTC (when the counts
    start again), the gate's clock runs a few minutes behind in the last minutes of a day.
    """

    def __init__(self) -> None:
        import time

        self._time = time.time
        now = time.time()
        self.offset = -300.0 if next_reset(now) - now < 300 else 0.0
        self.stopped_at: float | None = None  # a test that needs exact times stops it

    def __call__(self) -> float:
        if self.stopped_at is not None:
            return self.stopped_at
        return self._time() + self.offset


class StubDetector:
    """Finds every image explicit (score 0.9), off the loop like the real one."""

    def __init__(self) -> None:
        self.seen = 0

    def detect(self, data: bytes) -> Verdict:
        self.seen += 1
        return Verdict(0.9, "FEMALE_BREAST_EXPOSED")


@dataclass
class World:
    """Two servers: A with a mod log and an NSFW channel, B plain; a manager and a member."""

    fake: FakeDiscord
    services: Services
    bot: ComfyBot
    clock: Clock
    detector: StubDetector
    guild_b: int
    channel_b: int
    nsfw_a: int
    modlog_a: int
    manager: int
    member: int
    booster_role: int  # roles exist before the bot starts: the fake sends no GUILD_ROLE_CREATE
    booster: int

    async def slash(
        self,
        name: str,
        options: dict[str, Any] | None = None,
        *,
        user: int,
        channel: int | None = None,
        subcommand: str | None = None,
    ) -> Interaction:
        return await self.fake.slash(
            name, options or {}, user_id=user, channel_id=channel, subcommand=subcommand
        )

    async def configure(
        self, setting: str, value: str, *, role: int | None = None, channel: int | None = None
    ) -> str:
        options: dict[str, Any] = {"setting": setting, "value": value}
        if role is not None:
            options["role"] = {"type": 8, "value": str(role)}
        ix = await self.slash(
            "config", options, user=self.manager, channel=channel, subcommand="set"
        )
        answer = await ix.wait_response()
        assert answer["data"]["flags"] == 64, answer
        return str(answer["data"]["content"])

    async def refusal(self, ix: Interaction) -> str:
        answer = await ix.wait_response()
        assert answer["type"] == 4
        assert answer["data"]["flags"] == 64  # private
        return str(answer["data"]["content"])

    async def mod_log(self, title: str, since: int = 0) -> dict[str, Any]:
        def posted(call: RecordedCall) -> bool:
            return (
                call.method == "POST"
                and call.path == f"/channels/{self.modlog_a}/messages"
                and call.status == 200
                and (call.json or {}).get("embeds", [{}])[0].get("title") == title
            )

        call = await self.fake.wait_for(posted, since=since)
        return dict(call.json["embeds"][0])


@pytest.fixture
async def world(
    fake_discord: FakeDiscord, fake_comfy: FakeComfy, tmp_path: Path
) -> AsyncIterator[World]:
    guild_b = fake_discord.add_guild()
    nsfw_a = fake_discord.add_channel(name="nsfw-art", nsfw=True)
    modlog_a = fake_discord.add_channel(name="mod-log")
    mods_a = fake_discord.add_role("Mods", MANAGE_GUILD)
    mods_b = fake_discord.add_role("Mods", MANAGE_GUILD, guild_id=guild_b)
    manager = fake_discord.add_user("mia", roles=[mods_a, mods_b])
    member = fake_discord.add_user("ned", permissions=MEMBER_PERMISSIONS)
    booster_role = fake_discord.add_role("Booster")
    booster = fake_discord.add_user("bea", roles=[booster_role])
    settings = make_settings(fake_comfy.url, library_dir(tmp_path))
    clock = Clock()
    detector = StubDetector()
    async with (
        open_services(settings, journal=True) as services,
        ImageModerator(detector) as moderator,
    ):
        assert services.jobs.journal is not None
        gate = Gate(
            GuildSettings.defaults(settings), ServerStore(services.jobs.journal.store), clock=clock
        )
        bot = ComfyBot(
            settings=settings,
            jobs=services.jobs,
            gate=gate,
            moderator=moderator,
            guild_ready_timeout=0.05,
        )
        async with run_bot(bot):
            world = World(
                fake_discord,
                services,
                bot,
                clock,
                detector,
                guild_b,
                fake_discord.first_channel(guild_b),
                nsfw_a,
                modlog_a,
                manager,
                member,
                booster_role,
                booster,
            )
            await world.configure("mod_log", f"<#{modlog_a}>")
            yield world


async def test_a_banned_term_is_refused_privately_in_its_server_only_and_logged(
    world: World, fake_comfy: FakeComfy
) -> None:
    assert "banned_terms" in await world.configure("banned_terms", "fox, /wolf(ie)?s?/")
    since = len(world.fake.calls)

    refused = await world.slash("generate", {"prompt": "a F0X in snow"}, user=world.member)
    text = await world.refusal(refused)
    elsewhere = await world.slash(
        "generate", {"prompt": "a F0X in snow"}, user=world.member, channel=world.channel_b
    )

    assert text == "Your prompt contains the banned term “fox”; nothing was queued."
    entry = await world.mod_log("Request refused", since)
    fields = {f["name"]: f["value"] for f in entry["fields"]}
    assert fields["Who"] == f"<@{world.member}>"
    assert "banned term “fox”" in fields["What"]
    assert fields["Prompt"] == "a F0X in snow"
    await world.fake.wait_for(final_edit(elsewhere), timeout=10)  # server B has no such rule
    assert fake_comfy.requests.count(("POST", "/prompt")) == 1


async def test_settings_and_listings_stay_in_their_server(world: World) -> None:
    await world.configure("jobs_per_member", "1")
    show_b = await world.slash(
        "config", user=world.manager, channel=world.channel_b, subcommand="show"
    )
    in_b = (await show_b.wait_response())["data"]["content"]
    show_a = await world.slash("config", user=world.manager, subcommand="show")
    in_a = (await show_a.wait_response())["data"]["content"]

    assert "• `jobs_per_member`: 1" in in_a
    assert f"• `mod_log`: <#{world.modlog_a}>" in in_a
    assert "◦ `jobs_per_member`: 3" in in_b  # B keeps the .env default
    assert "◦ `mod_log`: none" in in_b

    done = await world.slash(
        "generate", {"prompt": "only in B"}, user=world.member, channel=world.channel_b
    )
    await world.fake.wait_for(final_edit(done), timeout=10)
    history_a = await world.slash("history", {"everyone": True}, user=world.manager)
    history_b = await world.slash(
        "history", {"everyone": True}, user=world.manager, channel=world.channel_b
    )
    listed_a = await world.fake.wait_for(lambda c: c.method == "POST" and webhook_of(history_a)(c))
    listed_b = await world.fake.wait_for(lambda c: c.method == "POST" and webhook_of(history_b)(c))
    assert listed_a.json["content"] == "No jobs yet."
    assert "only in B" in listed_b.json["content"]


async def test_a_button_of_another_servers_job_is_refused(world: World) -> None:
    ix = await world.slash("generate", {"prompt": "a job in A"}, user=world.member)
    await world.fake.wait_for(final_edit(ix), timeout=10)
    assert ix.original_message_id is not None
    reroll = await wait_button(world.fake, ix.original_message_id, "comfycord:reroll:")
    # The same button on a message in server B (a forged or copied custom_id).
    copy = world.fake.new_bot_message(None, 0, world.channel_b)
    copy["components"] = [
        {"type": 1, "components": [{"type": 2, "style": 2, "label": "Reroll", "custom_id": reroll}]}
    ]
    world.fake.messages[int(copy["id"])] = copy

    click = await world.fake.click(int(copy["id"]), reroll, user_id=world.member)

    assert await world.refusal(click) == "That job belongs to another server."
    assert len(world.services.jobs.jobs) == 1


async def test_quota_by_role_with_its_refusal_and_its_reset(world: World) -> None:
    await world.configure("images_per_day", "1")
    await world.configure("images_per_day", "5", role=world.booster_role)
    for who in (world.member, world.booster):
        first = await world.slash("generate", {"prompt": "one"}, user=who)
        await world.fake.wait_for(final_edit(first), timeout=10)
    await world.services.jobs.journal.flush()

    second = await world.slash("generate", {"prompt": "two"}, user=world.member)
    text = await world.refusal(second)
    boosted = await world.slash("generate", {"prompt": "boosted"}, user=world.booster)
    await world.fake.wait_for(final_edit(boosted), timeout=10)
    queue = await world.slash("queue", user=world.member)
    shown = (await queue.wait_response())["data"]["content"]
    queue_b = await world.slash("queue", user=world.booster)
    shown_b = (await queue_b.wait_response())["data"]["content"]

    reset = int(next_reset(world.clock()))
    assert text == f"You have used 1 of 1 images today; more <t:{reset}:R>."
    assert f"Today: 1 of 1 images; counts start again <t:{reset}:R>." in shown
    assert "Today: 2 of 5 images" in shown_b  # the booster's role quota, past the server's 1
    world.clock.offset += DAY  # tomorrow: the counts start again
    third = await world.slash("generate", {"prompt": "next day"}, user=world.member)
    await world.fake.wait_for(final_edit(third), timeout=10)


async def test_a_manager_is_exempt_unless_the_setting_says_otherwise(world: World) -> None:
    await world.configure("images_per_day", "1")
    for prompt in ("one", "two"):
        ix = await world.slash("generate", {"prompt": prompt}, user=world.manager)
        await world.fake.wait_for(final_edit(ix), timeout=10)
    await world.services.jobs.journal.flush()
    await world.configure("exempt_admins", "false")

    refused = await world.slash("generate", {"prompt": "three"}, user=world.manager)

    assert "You have used 2 of 1 images today" in await world.refusal(refused)


async def test_blocked_results_spoilers_and_nsfw_channels(world: World) -> None:
    await world.configure("image_moderation", "block")
    since = len(world.fake.calls)
    blocked = await world.slash("generate", {"prompt": "sfw channel"}, user=world.member)
    final = await world.fake.wait_for(final_edit(blocked), timeout=10)
    in_nsfw = await world.slash(
        "generate", {"prompt": "nsfw channel"}, user=world.member, channel=world.nsfw_a
    )
    posted = await world.fake.wait_for(final_edit(in_nsfw), timeout=10)
    await world.configure("image_moderation", "spoiler")
    spoiled = await world.slash("generate", {"prompt": "spoiler"}, user=world.member)
    hidden = await world.fake.wait_for(final_edit(spoiled), timeout=10)

    assert "🚫 The images were withheld: this server's image moderation" in final.json["content"]
    assert not final.files
    entry = await world.mod_log("Result blocked", since)
    fields = {f["name"]: f["value"] for f in entry["fields"]}
    assert fields["Prompt"] == "sfw channel"
    blocked_job = next(
        j for j in world.services.jobs.jobs.values() if j.request.prompt == "sfw channel"
    )
    assert fields["Job"].startswith(f"[{blocked_job.id}](https://discord.com/channels/")
    assert "FEMALE_BREAST_EXPOSED (0.90)" in fields["What"]
    assert posted.files  # an age-restricted channel takes the result as it is
    assert not any(name.startswith("SPOILER_") for name, *_ in posted.files)
    assert hidden.files
    assert all(name.startswith("SPOILER_") for name, *_ in hidden.files)


async def test_an_explicit_input_image_is_refused_before_comfyui(
    world: World, fake_comfy: FakeComfy
) -> None:
    await world.configure("image_moderation", "spoiler")
    attachment = world.fake.add_attachment(png(), "cat.png")

    ix = await world.slash(
        "generate", {"prompt": "x", "workflow": "demo", "image": attachment}, user=world.member
    )

    answer = await world.fake.wait_for(
        lambda c: (
            c.method == "POST" and f"/{ix.token}" in c.path and c.path.startswith("/webhooks/")
        )
    )
    assert answer.json["flags"] == 64
    assert (
        answer.json["content"]
        == "That input image looks explicit, and this channel is not marked NSFW."
    )
    assert ("POST", "/prompt") not in fake_comfy.requests
    assert ("POST", "/upload/image") not in fake_comfy.requests


async def test_a_moderators_cancel_and_every_setting_change_reach_the_mod_log(
    world: World, fake_comfy: FakeComfy
) -> None:
    moderator = world.fake.add_user("max", permissions=MEMBER_PERMISSIONS | MANAGE_MESSAGES)
    since = len(world.fake.calls)
    await world.configure("cooldown", "5")
    changed = await world.mod_log("Setting changed", since)
    fake_comfy.hold()
    ix = await world.slash("generate", {"prompt": "to cancel"}, user=world.member)
    await ix.wait_response()
    assert ix.original_message_id is not None
    cancel = await wait_button(world.fake, ix.original_message_id, "comfycord:cancel:")

    await world.fake.click(ix.original_message_id, cancel, user_id=moderator)

    entry = await world.mod_log("Job cancelled by a moderator", since)
    fake_comfy.release()
    fields = {f["name"]: f["value"] for f in entry["fields"]}
    assert fields["Who"] == f"<@{moderator}>"
    assert fields["Job of"] == f"<@{world.member}>"
    assert fields["Prompt"] == "to cancel"
    assert {f["name"]: f["value"] for f in changed["fields"]}["What"] == "Set `cooldown` to `5`."


async def test_config_is_for_managers_and_says_what_is_wrong(world: World) -> None:
    denied = await world.slash(
        "config", {"setting": "cooldown", "value": "1"}, user=world.member, subcommand="set"
    )
    bad = await world.slash(
        "config", {"setting": "workflows", "value": "sdxl"}, user=world.manager, subcommand="set"
    )
    choices = await world.fake.autocomplete(
        "config",
        {"setting": "work", "value": ""},
        "setting",
        user_id=world.manager,
        subcommand="set",
    )
    values = await world.fake.autocomplete(
        "config",
        {"setting": "image_moderation", "value": "sp"},
        "value",
        user_id=world.manager,
        subcommand="set",
    )

    elsewhere = await world.slash(
        "config",
        {"setting": "mod_log", "value": f"<#{world.channel_b}>"},
        user=world.manager,
        subcommand="set",
    )
    assert "not one of this server's channels" in await world.refusal(elsewhere)
    assert "You need the Manage Server permission" in await world.refusal(denied)
    assert (await world.refusal(bad)).startswith(
        "There is no workflow 'sdxl'; there are: batch, demo"
    )
    assert [c["value"] for c in choices] == [
        "workflows",
        "default_workflow",
        "default_image_workflow",
    ]
    assert values == [{"name": "spoiler", "value": "spoiler"}]


async def test_direct_messages_are_off_by_default(world: World) -> None:
    dm = world.fake.dm_channel(world.member)

    ix = await world.slash("generate", {"prompt": "in a DM"}, user=world.member, channel=dm)

    assert await world.refusal(ix) == "I don't take requests in direct messages; ask in a server."


@pytest.mark.parametrize("env", [{"ALLOW_DMS": "true"}])
async def test_allow_dms_lets_members_generate_in_direct_messages(
    fake_discord: FakeDiscord, services: Services, bot: ComfyBot
) -> None:
    member = fake_discord.add_user("dee")
    dm = fake_discord.dm_channel(member)

    ix = await fake_discord.slash("generate", {"prompt": "in a DM"}, user_id=member, channel_id=dm)

    final = await fake_discord.wait_for(final_edit(ix), timeout=10)
    assert final.json["embeds"]
    job = next(iter(services.jobs.jobs.values()))
    assert job.request.guild_id is None


async def test_comfy_status_shows_other_servers_jobs_only_as_a_count(
    world: World, fake_comfy: FakeComfy
) -> None:
    fake_comfy.hold()
    ix = await world.slash("generate", {"prompt": "a secret fox"}, user=world.member)
    await fake_comfy.wait_for_request("POST", "/prompt")  # the job is in the queue by then
    job = await _running(world)

    in_b = await world.slash(
        "comfy", user=world.manager, channel=world.channel_b, subcommand="status"
    )
    in_a = await world.slash("comfy", user=world.manager, subcommand="status")
    shown_b = await world.fake.wait_for(lambda c: c.method == "POST" and webhook_of(in_b)(c))
    shown_a = await world.fake.wait_for(lambda c: c.method == "POST" and webhook_of(in_a)(c))
    fake_comfy.release()
    await world.fake.wait_for(final_edit(ix), timeout=10)

    assert "secret" not in shown_b.json["content"]
    assert "running 1 job of other servers" in shown_b.json["content"]
    assert f"running `{job.id}` “a secret fox”" in shown_a.json["content"]


async def _running(world: World):
    """Wait until the one job runs in ComfyUI (by its updates, not by polling)."""
    import asyncio

    from bot.jobs.progress import JobState

    (job,) = world.services.jobs.active()
    async with asyncio.timeout(5):
        async for snapshot in job.updates():
            if snapshot.state is JobState.RUNNING:
                return job
    raise AssertionError(f"{job} never ran")


async def test_a_mention_with_a_banned_term_is_answered_and_logged_in_its_server(
    world: World, fake_comfy: FakeComfy
) -> None:
    await world.configure("banned_terms", "gore")
    since = len(world.fake.calls)
    attachment = world.fake.add_attachment(png(), "cat.png")

    posted = await world.fake.post_message(
        "make it G0RE", user_id=world.member, attachments=[attachment], mentions_bot=True
    )

    reply = await world.fake.wait_for(
        lambda c: c.method == "POST" and c.path == f"/channels/{world.fake.channel_id}/messages",
        since=since,
    )
    assert str(reply.json["message_reference"]["message_id"]) == posted["id"]
    assert (
        reply.json["content"] == "Your prompt contains the banned term “gore”; nothing was queued."
    )
    entry = await world.mod_log("Request refused", since)
    assert {f["name"]: f["value"] for f in entry["fields"]}["Prompt"] == "make it G0RE"
    assert ("POST", "/upload/image") not in fake_comfy.requests


async def test_a_roles_priority_goes_ahead_in_the_line(world: World, fake_comfy: FakeComfy) -> None:
    await world.configure("priority", "2", role=world.booster_role)
    fake_comfy.hold()
    busy = [  # the two prompts ComfyUI may hold at once (MAX_IN_FLIGHT_PER_BACKEND)
        await world.slash("generate", {"prompt": f"busy {n}"}, user=world.manager) for n in (1, 2)
    ]
    for ix in busy:
        await world.fake.wait_for(lambda c, ix=ix: webhook_of(ix)(c) and c.method == "PATCH")
    plain = await world.slash("generate", {"prompt": "plain"}, user=world.member)
    await world.fake.wait_for(lambda c: webhook_of(plain)(c) and c.method == "PATCH")
    boosted = await world.slash("generate", {"prompt": "boosted"}, user=world.booster)
    await world.fake.wait_for(lambda c: webhook_of(boosted)(c) and c.method == "PATCH")

    fake_comfy.release()
    for ix in (*busy, plain, boosted):
        await world.fake.wait_for(final_edit(ix), timeout=10)

    by_prompt = {job.request.prompt: job.id for job in world.services.jobs.jobs.values()}
    order = list(fake_comfy.history)
    assert order.index(by_prompt["boosted"]) < order.index(by_prompt["plain"])
    assert {job.request.prompt: job.request.priority for job in world.services.jobs.jobs.values()}[
        "boosted"
    ] == 2


@pytest.mark.parametrize(
    ("setting", "value", "admitted", "refusal"),
    [
        ("images_per_day", "2", 2, "You have used 2 of 2 images today; more <t:{reset}:R>."),
        ("cooldown", "60", 1, "Please wait between jobs; your next one <t:{ready}:R>."),
    ],
)
async def test_requests_fired_at_once_admit_exactly_the_quota(
    world: World, setting: str, value: str, admitted: int, refusal: str
) -> None:
    await world.configure("jobs_per_member", "10")
    await world.configure(setting, value)
    now = world.clock.stopped_at = world.clock()  # the refusal names the cooldown's end
    prompts = [f"at once {n}" for n in range(4)]

    fired = await asyncio.gather(
        *(world.slash("generate", {"prompt": p}, user=world.member) for p in prompts)
    )
    answers = [await ix.wait_response() for ix in fired]

    kinds = [answer["type"] for answer in answers]
    assert kinds == [5] * admitted + [4] * (len(prompts) - admitted)  # deferred, then refused
    texts = [answer["data"]["content"] for answer in answers[admitted:]]
    expected = refusal.format(reset=int(next_reset(now)), ready=f"{now + 60:.0f}")
    assert texts == [expected] * (len(prompts) - admitted)
    assert all(answer["data"]["flags"] == 64 for answer in answers[admitted:])  # private
    for ix in fired[:admitted]:
        await world.fake.wait_for(final_edit(ix), timeout=10)
    mine = await world.services.jobs.history.recent(str(world.member), limit=10)
    assert sorted(entry.params["prompt"] for entry in mine) == prompts[:admitted]
