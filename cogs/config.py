"""/config set|show|reset: a server's own settings, for members with Manage Server."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import discord
from discord import app_commands
from discord.ext import commands

from bot.community import options
from bot.config import MODERATION_MODES
from bot.discord import server_settings
from bot.discord.community import Community
from bot.errors import NotAllowed
from bot.jobs.queue import JobQueue

if TYPE_CHECKING:
    from bot.discord.client import ComfyBot

NOT_INSTALLED = (
    "\n-# Image moderation is not installed on this bot (`comfycord[moderation]`): results in"
    " channels not marked NSFW are withheld until it is."
)


class ServerConfig(commands.Cog):
    """Let a server's managers change its settings; every change goes to the mod log."""

    config = app_commands.Group(
        name="config",
        description="This server's settings for the bot",
        default_permissions=discord.Permissions(manage_guild=True),
        guild_only=True,
    )

    def __init__(self, jobs: JobQueue, community: Community) -> None:
        self.jobs = jobs
        self.community = community

    @config.command(name="show")
    @app_commands.checks.has_permissions(manage_guild=True)
    async def show(self, interaction: discord.Interaction[Any]) -> None:
        """Show this server's settings."""
        rules = await self.community.rules(_guild(interaction))
        await interaction.response.send_message(server_settings.listing(rules), ephemeral=True)

    @config.command(name="set")
    @app_commands.describe(
        setting="Which setting", value="The new value", role="For one role (quotas, priority)"
    )
    @app_commands.checks.has_permissions(manage_guild=True)
    async def set_(
        self,
        interaction: discord.Interaction[Any],
        setting: str,
        value: app_commands.Range[str, 1, 1500],
        role: discord.Role | None = None,
    ) -> None:
        """Change one setting of this server."""
        guild = _guild(interaction)
        parsed = options.parse(setting, value, self.jobs.workflows.names())
        if setting == "mod_log" and parsed is not None:
            _check_channel(interaction, parsed)
        role_id = role.id if role is not None else None
        rules = await self.community.gate.change(
            guild, lambda stored: options.set_value(stored, setting, parsed, role_id)
        )
        what = server_settings.change(setting, value, role_id, is_reset=False)
        await self.community.setting_changed(guild, interaction.user.id, what)
        shown = server_settings.values(rules).get(setting, value)
        text = f"`{setting}`{_of(role)} is now {shown}."
        if rules.image_moderation != "off" and not self.community.moderator.is_available:
            text += NOT_INSTALLED
        await interaction.response.send_message(text, ephemeral=True)

    @config.command(name="reset")
    @app_commands.describe(setting="Which setting (empty: all of them)", role="For one role")
    @app_commands.checks.has_permissions(manage_guild=True)
    async def reset(
        self,
        interaction: discord.Interaction[Any],
        setting: str | None = None,
        role: discord.Role | None = None,
    ) -> None:
        """Put one setting, or all of them, back to the bot's defaults."""
        guild = _guild(interaction)
        if setting is not None:
            options.parse_name(setting)
        role_id = role.id if role is not None else None
        await self.community.gate.change(
            guild, lambda stored: options.reset_value(stored, setting, role_id)
        )
        what = server_settings.change(setting, None, role_id, is_reset=True)
        await self.community.setting_changed(guild, interaction.user.id, what)
        text = f"`{setting}`{_of(role)} is back to the default." if setting else what
        await interaction.response.send_message(text, ephemeral=True)

    @set_.autocomplete("setting")
    @reset.autocomplete("setting")
    async def setting_autocomplete(
        self, interaction: discord.Interaction[Any], current: str
    ) -> list[app_commands.Choice[str]]:
        """Offer the settings, with what each one does."""
        typed = current.strip().casefold()
        return [
            app_commands.Choice(name=f"{o.name}: {o.help}"[:100], value=o.name)
            for o in options.OPTIONS.values()
            if typed in o.name or typed in o.help.casefold()
        ][:25]

    @set_.autocomplete("value")
    async def value_autocomplete(
        self, interaction: discord.Interaction[Any], current: str
    ) -> list[app_commands.Choice[str]]:
        """Offer values for the chosen setting where there is a short list of them."""
        setting = str(getattr(interaction.namespace, "setting", "") or "")
        offered: list[str] = []
        if setting in {"workflows", "default_workflow", "default_image_workflow"}:
            offered = list(self.jobs.workflows.names())
        elif setting == "image_moderation":
            offered = list(MODERATION_MODES)
        elif setting == "exempt_admins":
            offered = ["true", "false"]
        elif setting in {"images_per_day", "gpu_seconds_per_day", "cooldown", "mod_log"}:
            offered = ["none"]
        typed = current.strip().casefold()
        return [app_commands.Choice(name=v, value=v) for v in offered if typed in v.casefold()][:25]


def _guild(interaction: discord.Interaction[Any]) -> int:
    if interaction.guild_id is None:
        raise NotAllowed("Settings belong to a server; use /config there.")
    return interaction.guild_id


def _check_channel(interaction: discord.Interaction[Any], channel_id: int) -> None:
    """Refuse a channel of another server (the mod log would leak there).

    Raises:
        BadSetting: the channel is not one of this server's.
    """
    if interaction.guild is None or interaction.guild.get_channel(channel_id) is None:
        raise options.BadSetting("That channel is not one of this server's channels.")


def _of(role: discord.Role | None) -> str:
    return f" of {role.mention}" if role is not None else ""


async def setup(bot: ComfyBot) -> None:
    """Add the ServerConfig cog."""
    await bot.add_cog(ServerConfig(bot.jobs, bot.community))
