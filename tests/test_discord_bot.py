"""ComfyBot's composition: extensions, command sync, /comfy and /queue, and `comfycord bot`."""

from __future__ import annotations

import argparse
import importlib
import logging
import shutil
from pathlib import Path

import discord
import pytest

import bot.discord.client as bot_module
from bot.config import ConfigError
from bot.discord import main as discord_main
from bot.discord.client import EXTENSIONS, ComfyBot
from tests.discord_env import (  # noqa: F401  # fixtures
    EPHEMERAL,
    FIXTURES,
    Option,
    Services,
    bot_fixture,
    env_fixture,
    library_dir,
    make_settings,
    open_services,
    services_fixture,
    webhook_of,
)
from tests.fakes.comfy import FakeComfy
from tests.fakes.discord import FakeDiscord, run_bot

COGS = Path(__file__).resolve().parent.parent / "cogs"
COMMANDS = {"generate", "queue", "history", "comfy", "settings", "config", "Use as input"}


def test_every_cog_module_is_an_extension_with_setup() -> None:
    modules = {f"cogs.{p.stem}" for p in COGS.glob("*.py") if not p.stem.startswith("_")}

    assert modules == set(EXTENSIONS)
    for name in EXTENSIONS:
        assert callable(getattr(importlib.import_module(name), "setup", None)), name


async def test_commands_are_synced_to_the_dev_guild_only(
    fake_discord: FakeDiscord, fake_comfy: FakeComfy, tmp_path: Path
) -> None:
    settings = make_settings(
        fake_comfy.url, library_dir(tmp_path), DEV_GUILD_ID=str(fake_discord.guild_id)
    )
    async with open_services(settings) as services, run_bot(services.new_bot()):
        pass

    assert None not in fake_discord.commands
    synced = {c["name"]: c for c in fake_discord.commands[fake_discord.guild_id]}
    assert set(synced) == COMMANDS
    options = {o["name"]: o["type"] for o in synced["generate"]["options"]}
    assert options["prompt"] == Option.string.value
    assert options["image"] == Option.attachment.value
    assert options["steps"] == Option.integer.value
    assert synced["Use as input"]["type"] == discord.AppCommandType.message.value
    assert int(synced["comfy"]["default_member_permissions"]) == 1 << 5
    assert int(synced["config"]["default_member_permissions"]) == 1 << 5  # Manage Server
    config = {o["name"]: o for o in synced["config"]["options"]}
    assert set(config) == {"set", "show", "reset"}
    assert {o["name"]: o.get("autocomplete", False) for o in config["set"]["options"]} == {
        "setting": True,
        "value": True,
        "role": False,
    }


async def test_sync_registers_the_commands_globally(
    fake_discord: FakeDiscord, services: Services
) -> None:
    bot = services.new_bot()
    bot.sync_commands = True

    async with run_bot(bot):
        pass

    assert {c["name"] for c in fake_discord.commands[None]} == COMMANDS
    assert fake_discord.guild_id not in fake_discord.commands


async def test_a_broken_extension_is_logged_and_the_others_load(
    fake_discord: FakeDiscord,
    services: Services,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setattr(bot_module, "EXTENSIONS", ("cogs.missing", *EXTENSIONS))

    async with run_bot(services.new_bot()) as running:
        assert set(running.cogs) == {
            "Generate",
            "Chat",
            "Jobs",
            "Admin",
            "MemberSettings",
            "ServerConfig",
        }

    assert any("could not load cogs.missing" in r.getMessage() for r in caplog.records)


async def test_comfy_status_for_managers_only(
    fake_discord: FakeDiscord, bot: ComfyBot, fake_comfy: FakeComfy
) -> None:
    member = fake_discord.add_user("member")

    status = await fake_discord.slash("comfy", subcommand="status", user_id=fake_discord.owner_id)
    refused = await fake_discord.slash("comfy", subcommand="status", user_id=member)

    answer = await fake_discord.wait_for(lambda c: webhook_of(status)(c) and c.method == "POST")
    assert (
        f"🟢 `{fake_comfy.url}` · ComfyUI 0.3.64 via /queue + /history · queue 0 · cpu:"
        in answer.json["content"]
    )
    assert answer.json["flags"] == EPHEMERAL
    denied = await refused.wait_response()
    assert denied["data"]["flags"] == EPHEMERAL
    assert "You need the Manage Server permission" in denied["data"]["content"]


async def test_comfy_reload_reads_new_workflows(
    fake_discord: FakeDiscord, services: Services, bot: ComfyBot
) -> None:
    shutil.copy(FIXTURES / "workflows" / "invert.json", services.settings.workflows_dir)

    ix = await fake_discord.slash("comfy", subcommand="reload", user_id=fake_discord.owner_id)

    answer = await fake_discord.wait_for(lambda c: webhook_of(ix)(c) and c.method == "POST")
    assert "invert" in answer.json["content"]
    assert "invert" in bot.workflows
    assert services.jobs.workflows is bot.workflows


async def test_queue_lists_my_waiting_and_running_jobs(
    fake_discord: FakeDiscord, fake_comfy: FakeComfy, bot: ComfyBot
) -> None:
    user = fake_discord.add_user("alice")
    fake_comfy.hold()
    await fake_discord.slash("generate", {"prompt": "mine", "workflow": "slow"}, user_id=user)
    await fake_discord.wait_for(lambda c: c.method == "PATCH")

    mine = await fake_discord.slash("queue", user_id=user)
    empty = await fake_discord.slash("queue", user_id=fake_discord.owner_id)

    listed = (await mine.wait_response())["data"]
    assert listed["flags"] == EPHEMERAL
    assert "slow" in listed["content"]
    assert "mine" in listed["content"]
    assert listed["content"].endswith("\n-# No quota applies to you.")
    assert (await empty.wait_response())["data"]["content"] == (
        "You have no jobs right now.\n-# Quotas do not apply to you here."  # the owner
    )
    fake_comfy.release()


async def test_main_refuses_a_missing_token(fake_comfy: FakeComfy, tmp_path: Path) -> None:
    settings = make_settings(fake_comfy.url, library_dir(tmp_path), DISCORD_TOKEN="")

    with pytest.raises(ConfigError, match="DISCORD_TOKEN: missing"):
        await discord_main.main(argparse.Namespace(sync=False), settings)


async def test_main_reports_a_rejected_token_without_logging_it(
    fake_discord: FakeDiscord,
    fake_comfy: FakeComfy,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    fake_discord.token = "the.right.token"
    settings = make_settings(fake_comfy.url, library_dir(tmp_path), DISCORD_TOKEN="a.wrong.token")

    with caplog.at_level(logging.DEBUG), pytest.raises(ConfigError) as raised:
        await discord_main.main(argparse.Namespace(sync=False), settings)

    assert raised.value.problems[0].startswith("DISCORD_TOKEN was rejected by Discord")
    assert all("a.wrong.token" not in r.getMessage() for r in caplog.records)


async def test_main_reports_a_missing_workflow_directory(
    fake_comfy: FakeComfy, tmp_path: Path
) -> None:
    settings = make_settings(fake_comfy.url, tmp_path / "nowhere")

    with pytest.raises(ConfigError, match="WORKFLOWS_DIR"):
        await discord_main.main(argparse.Namespace(sync=False), settings)


async def test_main_exits_3_when_discord_is_unreachable(
    fake_comfy: FakeComfy, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(discord.http.Route, "BASE", "http://127.0.0.1:1/api/v10")
    settings = make_settings(fake_comfy.url, library_dir(tmp_path))

    assert await discord_main.main(argparse.Namespace(sync=False), settings) == 3


async def test_main_explains_a_missing_message_content_intent(
    fake_discord: FakeDiscord, fake_comfy: FakeComfy, tmp_path: Path
) -> None:
    fake_discord.allowed_intents = 0
    settings = make_settings(fake_comfy.url, library_dir(tmp_path))

    with pytest.raises(ConfigError, match="Message Content intent"):
        await discord_main.main(argparse.Namespace(sync=False), settings)
