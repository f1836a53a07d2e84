"""Test-only: run `comfycord bot` in its own process against the test's fake Discord.

The parent test sets FAKE_DISCORD_API (REST base, ending in /api/v10) and FAKE_DISCORD_GATEWAY
(ws:// URL); everything else is the ordinary environment `comfycord bot` reads. Only the two
discord.py class attributes that name Discord's servers are changed, and the wait for guilds at
start is shortened, as the in-process tests do with `guild_ready_timeout`.
"""

from __future__ import annotations

import os
import sys
from typing import Any

import discord
import yarl

from bot import cli
from bot.discord import client as bot_module

GUILD_READY_TIMEOUT = 0.05


def _point_at_fake() -> None:
    discord.http.Route.BASE = os.environ["FAKE_DISCORD_API"]
    discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(os.environ["FAKE_DISCORD_GATEWAY"])
    original = bot_module.ComfyBot.__init__

    def init(self: bot_module.ComfyBot, **options: Any) -> None:
        options.setdefault("guild_ready_timeout", GUILD_READY_TIMEOUT)
        original(self, **options)

    bot_module.ComfyBot.__init__ = init  # type: ignore[method-assign]  # test-only start-up


if __name__ == "__main__":
    _point_at_fake()
    sys.exit(cli.main(["--env-file", os.devnull, "bot"]))
