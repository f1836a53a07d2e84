"""/queue and /history: a member's jobs in this server, now and from the journal, and quota."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import discord
from discord import app_commands
from discord.ext import commands

from bot.community.quotas import describe
from bot.discord import listings
from bot.discord.buttons import history_view
from bot.discord.community import Community
from bot.discord.render import CONTENT_LIMIT, truncate
from bot.errors import NotAllowed
from bot.jobs.model import Job
from bot.jobs.queue import JobQueue

if TYPE_CHECKING:
    from bot.discord.client import ComfyBot

HISTORY_LENGTH = 10


class Jobs(commands.Cog):
    """Show a member their jobs."""

    def __init__(self, jobs: JobQueue, community: Community) -> None:
        self.jobs = jobs
        self.community = community

    @app_commands.command(name="queue")
    async def queue(self, interaction: discord.Interaction[Any]) -> None:
        """Show your jobs here that are waiting or running, and what is left of your quota."""
        mine = [
            job
            for job in self.jobs.active(str(interaction.user.id))
            if job.request.guild_id == interaction.guild_id
        ]
        lines = [_describe(job) for job in mine] or ["You have no jobs right now."]
        member = await self.community.member(interaction)
        gate = self.community.gate
        rules = await gate.rules(member.guild_id)
        if gate.is_exempt(rules, member):
            lines.append("-# Quotas do not apply to you here.")
        else:
            quota, usage = await gate.usage(member, rules, active=len(mine))
            lines.append(f"-# {describe(quota, usage, gate.clock())}")
        text = truncate("\n".join(lines), CONTENT_LIMIT)
        await interaction.response.send_message(text, ephemeral=True)

    @app_commands.command(name="history")
    @app_commands.describe(everyone="Show everyone's recent jobs (needs Manage Server)")
    async def history(self, interaction: discord.Interaction[Any], everyone: bool = False) -> None:
        """Show your recent jobs, with Reroll buttons."""
        if everyone and not interaction.permissions.manage_guild:
            raise NotAllowed("Only members with the Manage Server permission see everyone's jobs.")
        self.jobs.history.check()  # before deferring: the refusal is ephemeral at once
        await interaction.response.defer(ephemeral=True, thinking=True)
        requester = None if everyone else str(interaction.user.id)
        history = self.jobs.history
        entries = await history.recent_in(interaction.guild_id, requester, limit=HISTORY_LENGTH)
        text = listings.history(entries, show_requester=everyone)
        view = history_view([entry.id for entry in entries])
        if view is None:
            await interaction.followup.send(text, ephemeral=True)
        else:
            await interaction.followup.send(text, view=view, ephemeral=True)


def _describe(job: Job) -> str:
    snapshot = job.snapshot
    where = f", position {snapshot.position}" if snapshot.position else ""
    prompt = truncate(" ".join(job.request.prompt.split()), 60) or "(no prompt)"
    return f"- `{job.id}` {job.workflow.name}: {snapshot.state.value}{where} · {prompt}"


async def setup(bot: ComfyBot) -> None:
    """Add the Jobs cog."""
    await bot.add_cog(Jobs(bot.jobs, bot.community))
