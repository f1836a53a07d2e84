"""Per-server settings: .env defaults, /config values parsed, set, reset, applied; pure."""

import json

import pytest

from bot.community import options
from bot.community.guild import GuildSettings
from bot.community.options import BadSetting
from bot.community.quotas import Quota
from bot.config import Settings

WORKFLOWS = ("txt2img", "img2img", "demo")
CHANNEL, ROLE, BOOSTER = 123456789012345678, 223456789012345678, 323456789012345678


@pytest.fixture
def defaults():
    env = {
        "DAILY_IMAGES": "20",
        "JOB_COOLDOWN": "10",
        "BANNED_TERMS": "gore",
        "MAX_JOBS_PER_USER": "3",
    }
    return GuildSettings.defaults(Settings.from_env(env))


def test_env_gives_the_defaults(defaults):
    assert defaults.quota == Quota(20, None, 10.0)
    assert defaults.jobs_per_member == 3
    assert defaults.banned_terms.find({"prompt": "g0re"}) is not None
    assert defaults.image_moderation == "off"
    assert defaults.mod_log_channel_id is None


@pytest.mark.parametrize(
    ("name", "raw", "stored"),
    [
        ("channels", f"<#{CHANNEL}> {CHANNEL + 1}", [CHANNEL, CHANNEL + 1]),
        ("channels", "all", []),
        ("roles", f"<@&{ROLE}>", [ROLE]),
        ("workflows", "demo, txt2img", ["demo", "txt2img"]),
        ("default_workflow", " demo ", "demo"),
        ("jobs_per_member", "4", 4),
        ("images_per_day", "50", 50),
        ("images_per_day", "none", None),
        ("gpu_seconds_per_day", "600s", 600.0),
        ("cooldown", "30", 30.0),
        ("priority", "2", 2),
        ("exempt_admins", "no", False),
        ("banned_terms", "nsfw, /n[a@]ked{1,2}/", ["nsfw", "/n[a@]ked{1,2}/"]),
        ("banned_terms", "none", []),
        ("image_moderation", "Spoiler", "spoiler"),
        ("nsfw_threshold", "0.5", 0.5),
        ("mod_log", f"<#{CHANNEL}>", CHANNEL),
        ("mod_log", "none", None),
    ],
)
def test_a_typed_value_is_parsed_to_its_stored_form(name, raw, stored):
    assert options.parse(name, raw, WORKFLOWS) == stored


@pytest.mark.parametrize(
    ("name", "raw", "message"),
    [
        ("colour", "red", "There is no setting 'colour'"),
        ("channels", "general", "Expected channels or roles"),
        ("workflows", "sdxl", "There is no workflow 'sdxl'; there are: demo, img2img, txt2img."),
        ("jobs_per_member", "0", "at least 1"),
        ("images_per_day", "many", "Expected a number"),
        ("nsfw_threshold", "1", "at most 0.99"),
        ("banned_terms", "/(oops/", "not a valid regular expression"),
        ("image_moderation", "blur", "Expected one of off, block, spoiler"),
        ("exempt_admins", "perhaps", "Expected true or false"),
        ("mod_log", f"<#{CHANNEL}> <#{CHANNEL + 1}>", "Name one channel."),
    ],
)
def test_a_bad_value_is_refused_with_what_would_do(name, raw, message):
    with pytest.raises(BadSetting, match=message):
        options.parse(name, raw, WORKFLOWS)


def test_set_and_apply_reach_every_field(defaults):
    stored: dict = {}
    for name, raw, role in [
        ("channels", str(CHANNEL), None),
        ("workflows", "demo", None),
        ("images_per_day", "5", None),
        ("images_per_day", "100", BOOSTER),
        ("cooldown", "0", BOOSTER),
        ("priority", "2", BOOSTER),
        ("banned_terms", "kill", None),
        ("image_moderation", "block", None),
        ("mod_log", str(CHANNEL), None),
    ]:
        stored = options.set_value(stored, name, options.parse(name, raw, WORKFLOWS), role)
    stored = json.loads(json.dumps(stored))  # as the journal keeps it
    guild = options.apply(defaults, stored)
    assert guild.allowed_channel_ids == {CHANNEL}
    assert guild.allows_workflow("demo")
    assert not guild.allows_workflow("txt2img")
    assert guild.quota == Quota(5, None, 10.0)
    # The booster's quota: their own limits where set, the server's elsewhere; most generous wins.
    assert guild.quota_for([ROLE]) == Quota(5, None, 10.0)
    assert guild.quota_for([ROLE, BOOSTER]) == Quota(100, None, 0.0)
    assert (guild.priority_for([BOOSTER]), guild.priority_for([ROLE])) == (2, 0)
    assert guild.banned_terms.find({"prompt": "k1ll"}) is not None
    assert guild.banned_terms.find({"prompt": "gore"}) is None  # the server's list replaces .env's
    assert (guild.image_moderation, guild.mod_log_channel_id) == ("block", CHANNEL)
    assert guild.overrides == stored


def test_reset_one_setting_one_roles_setting_or_everything(defaults):
    stored = options.set_value({}, "images_per_day", 5)
    stored = options.set_value(stored, "images_per_day", 100, BOOSTER)
    stored = options.set_value(stored, "priority", 2, BOOSTER)
    after = options.reset_value(stored, "images_per_day", BOOSTER)
    assert after == {"images_per_day": 5, "role_priorities": {str(BOOSTER): 2}}
    after = options.reset_value(after, "priority", BOOSTER)
    assert after == {"images_per_day": 5}
    assert options.reset_value(after, "images_per_day") == {}
    assert options.reset_value(stored) == {}
    assert options.apply(defaults, {}) == defaults


@pytest.mark.parametrize(
    ("name", "role", "message"),
    [("priority", None, "belongs to a role"), ("channels", ROLE, "same for every role")],
)
def test_roles_go_only_with_the_settings_that_have_them(name, role, message):
    with pytest.raises(BadSetting, match=message):
        options.set_value({}, name, 1, role)
