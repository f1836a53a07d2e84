"""/settings: a member's own defaults for /generate (workflow, aspect, count, private results).

This cog only reads the options and answers privately; the defaults live in
`bot.jobs.preferences`, kept in the job journal.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

import discord
from discord import app_commands
from discord.ext import commands

from bot.discord import inputs
from bot.discord.cards import defaults_text
from bot.jobs.preferences import MemberDefaults, Preferences
from bot.workflows.library import WorkflowLibrary

if TYPE_CHECKING:
    from bot.discord.client import ComfyBot

Aspect = Literal["1:1", "4:3", "3:4", "3:2", "2:3", "16:9", "9:16", "21:9"]


class MemberSettings(commands.Cog):
    """Let a member choose their own defaults."""

    def __init__(self, preferences: Preferences, workflows: WorkflowLibrary) -> None:
        self.preferences = preferences
        self.workflows = workflows

    @app_commands.command(name="settings")
    @app_commands.describe(
        workflow="Your default workflow for /generate",
        aspect="Your default aspect ratio",
        count="How many images /generate makes for you (1-4)",
        private="Show your results only to you",
        reset="Forget your settings",
    )
    async def settings(
        self,
        interaction: discord.Interaction[Any],
        workflow: str | None = None,
        aspect: Aspect | None = None,
        count: app_commands.Range[int, 1, 4] | None = None,
        private: bool | None = None,
        reset: bool = False,
    ) -> None:
        """Choose your defaults for /generate; without options, show them."""
        user = str(interaction.user.id)
        current = MemberDefaults() if reset else await self.preferences.get(user)
        if workflow is not None:
            workflow = inputs.find_workflow(self.workflows, workflow).name
        chosen = current.with_changes(
            workflow=workflow, aspect=aspect, count=count, is_private=private
        )
        if reset or chosen != current:
            await self.preferences.save(user, chosen)
        await interaction.response.send_message(defaults_text(chosen), ephemeral=True)

    @settings.autocomplete("workflow")
    async def workflow_autocomplete(
        self, interaction: discord.Interaction[Any], current: str
    ) -> list[app_commands.Choice[str]]:
        """Offer the library's workflows."""
        found = inputs.workflow_choices(self.workflows, current)
        return [app_commands.Choice(name=label, value=name) for label, name in found]


async def setup(bot: ComfyBot) -> None:
    """Add the MemberSettings cog."""
    await bot.add_cog(MemberSettings(bot.preferences, bot.workflows))
