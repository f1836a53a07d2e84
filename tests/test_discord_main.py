"""`comfycord bot` start-up advice: workflows a reachable ComfyUI cannot run are logged."""

import logging
from pathlib import Path

from bot.comfy.backend import ComfyBackend
from bot.comfy.client import ComfyClient
from bot.discord.main import warn_unrunnable
from bot.workflows.library import WorkflowLibrary
from tests.fakes.comfy import FakeComfy

WORKFLOWS = Path(__file__).resolve().parent.parent / "workflows"


async def test_a_missing_checkpoint_is_logged_and_a_runnable_workflow_is_not(caplog):
    library = WorkflowLibrary.load(WORKFLOWS)
    async with FakeComfy() as fake, ComfyClient(fake.url, timeout=5) as client:
        with caplog.at_level(logging.WARNING, logger="bot.discord.main"):
            logged = await warn_unrunnable([ComfyBackend(client)], library)
    text = caplog.text
    assert logged == 2  # txt2img and img2img name a checkpoint this server lacks
    assert "workflow txt2img cannot run on" in text
    assert "sd_xl_base_1.0.safetensors" in text
    assert "workflow demo" not in text


async def test_an_unreachable_server_is_only_a_warning(caplog, unused_tcp_port):
    library = WorkflowLibrary.load(WORKFLOWS)
    async with ComfyClient(f"http://127.0.0.1:{unused_tcp_port}", timeout=2) as client:
        with caplog.at_level(logging.WARNING, logger="bot.discord.main"):
            assert await warn_unrunnable([ComfyBackend(client)], library) == 0
    assert "does not answer yet" in caplog.text


async def test_moderation_asked_for_without_the_extra_is_named_at_start(caplog, tmp_path):
    from bot.community.gate import Gate
    from bot.community.guild import GuildSettings
    from bot.community.nsfw import ImageModerator, Verdict
    from bot.config import Settings
    from bot.discord.main import warn_unchecked
    from bot.jobs.servers import ServerStore
    from bot.jobs.store import JobStore

    class Stub:
        def detect(self, data: bytes) -> Verdict:
            return Verdict()

    defaults = GuildSettings.defaults(Settings.from_env({"IMAGE_MODERATION": "block"}))
    async with JobStore(tmp_path / "m.db") as store, ImageModerator(None) as missing:
        servers = ServerStore(store)
        await servers.save_settings(7, {"image_moderation": "spoiler"})
        await servers.save_settings(8, {"image_moderation": "off"})
        await servers.save_settings(9, {"cooldown": 5.0})  # the .env default: block
        with caplog.at_level(logging.WARNING, logger="bot.discord.main"):
            asking = await warn_unchecked(Gate(defaults, servers), missing)
        async with ImageModerator(Stub()) as installed:
            assert await warn_unchecked(Gate(defaults, servers), installed) == []
    assert asking == [None, 7, 9]
    assert "IMAGE_MODERATION, server 7, server 9" in caplog.text
    assert "comfycord[moderation] is not installed" in caplog.text


def test_a_broken_banned_term_in_env_is_a_config_error():
    import pytest

    from bot.config import ConfigError, Settings
    from bot.discord.main import _server_defaults

    with pytest.raises(ConfigError) as caught:
        _server_defaults(Settings.from_env({"BANNED_TERMS": "ok, /(broken/"}))
    assert caught.value.problems[0].startswith(
        "BANNED_TERMS: /(broken/ is not a valid regular expression"
    )
