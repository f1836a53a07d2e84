"""Rendering of /config show, of one change, and of mod-log embeds; pure."""

import pytest

from bot.community import options
from bot.community.guild import GuildSettings
from bot.discord import server_settings
from bot.discord.modlog import ModEvent, ModKind

ROLE = 223456789012345678


def test_show_marks_what_the_server_changed_and_lists_role_quotas():
    stored = options.set_value({}, "images_per_day", 5)
    stored = options.set_value(stored, "images_per_day", 50, ROLE)
    stored = options.set_value(stored, "priority", 2, ROLE)
    rules = options.apply(GuildSettings(), stored)
    text = server_settings.listing(rules)
    assert "• `images_per_day`: 5 images" in text
    assert "◦ `gpu_seconds_per_day`: no limit" in text
    assert "◦ `banned_terms`: none" in text
    assert f"• quota of <@&{ROLE}>: 50 images and no limit a day, 0 s between jobs" in text
    assert f"• priority of <@&{ROLE}>: 2" in text


@pytest.mark.parametrize(
    ("args", "text"),
    [
        (("cooldown", "30", None, False), "Set `cooldown` to `30`."),
        (("priority", "2", ROLE, False), f"Set `priority` of <@&{ROLE}> to `2`."),
        (("cooldown", None, None, True), "Reset `cooldown` to the default."),
        ((None, None, None, True), "Reset every setting to the bot's defaults."),
    ],
)
def test_a_change_for_the_mod_log(args, text):
    name, value, role, is_reset = args
    assert server_settings.change(name, value, role, is_reset=is_reset) == text


def test_a_mod_log_embed_says_who_what_which_prompt_and_links_the_job():
    event = ModEvent(
        ModKind.CANCELLED,
        7,
        "Cancelled the job.",
        prompt="a fox " * 400,
        job_id="comfycord-1",
        link="https://discord.com/channels/1/2/3",
        for_user_id=8,
    )
    embed = event.embed()
    fields = {f.name: f.value for f in embed.fields}
    assert embed.title == "Job cancelled by a moderator"
    assert fields["Who"] == "<@7>"
    assert fields["Job of"] == "<@8>"
    assert len(fields["Prompt"]) == 1024  # within Discord's field limit
    assert fields["Job"] == "[comfycord-1](https://discord.com/channels/1/2/3)"
