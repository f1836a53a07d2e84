"""Job buttons that survive restarts (Cancel, Reroll) and /queue; the work is in JobQueue."""

from __future__ import annotations

import re
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Self, cast

import discord
from discord import app_commands
from discord.ext import commands

from bot.discord_errors import reply_error
from bot.errors import BotError, UnknownJob
from bot.jobqueue import JobQueue
from bot.jobs import Job
from bot.render import truncate
from cogs._inputs import check_interaction
from cogs._sinks import InteractionSink

if TYPE_CHECKING:
    from bot.bot import ComfyBot

_JOB_ID = r"(?P<job_id>[A-Za-z0-9_-]{1,80})"


def _bot(interaction: discord.Interaction[Any]) -> ComfyBot:
    return cast("ComfyBot", interaction.client)


class CancelButton(
    discord.ui.DynamicItem[discord.ui.Button[discord.ui.View]],
    template=re.compile(f"comfycord:cancel:{_JOB_ID}"),
):
    """Cancel a job: its requester or a member with Manage Messages."""

    def __init__(self, job_id: str) -> None:
        button: discord.ui.Button[discord.ui.View] = discord.ui.Button(
            label="Cancel", style=discord.ButtonStyle.danger, custom_id=f"comfycord:cancel:{job_id}"
        )
        super().__init__(button)
        self.job_id = job_id

    @classmethod
    async def from_custom_id(
        cls,
        interaction: discord.Interaction[Any],
        item: discord.ui.Item[Any],
        match: re.Match[str],
        /,
    ) -> Self:
        """Rebuild the button from a click, also on messages sent before a restart."""
        return cls(match["job_id"])

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        """Cancel the job; the job's message then says who cancelled it."""
        bot = _bot(interaction)
        try:
            job = bot.jobs.get(self.job_id)
            await interaction.response.defer()
            is_moderator = interaction.permissions.manage_messages
            await bot.jobs.cancel(job.id, by=str(interaction.user.id), is_moderator=is_moderator)
        except Exception as exc:  # the one catch point of this button
            await reply_error(interaction, exc)
            return
        if not bot.delivery.is_following(job.id):
            # Sent before a restart: keep the clicked message up to date from now on.
            bot.delivery.follow(job, InteractionSink(interaction))


class RerollButton(
    discord.ui.DynamicItem[discord.ui.Button[discord.ui.View]],
    template=re.compile(f"comfycord:reroll:{_JOB_ID}"),
):
    """Run the same request again with a new seed, for whoever clicks."""

    def __init__(self, job_id: str) -> None:
        button: discord.ui.Button[discord.ui.View] = discord.ui.Button(
            label="Reroll",
            style=discord.ButtonStyle.secondary,
            custom_id=f"comfycord:reroll:{job_id}",
        )
        super().__init__(button)
        self.job_id = job_id

    @classmethod
    async def from_custom_id(
        cls,
        interaction: discord.Interaction[Any],
        item: discord.ui.Item[Any],
        match: re.Match[str],
        /,
    ) -> Self:
        """Rebuild the button from a click, also on messages sent before a restart."""
        return cls(match["job_id"])

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        """Submit a copy of the job's request with a new seed, in a new message."""
        bot = _bot(interaction)
        try:
            job = _rerollable(bot.jobs, self.job_id)
            check_interaction(bot.settings, interaction)
            request = replace(job.request, seed=None, requester=str(interaction.user.id))
            new_job = bot.jobs.submit(request)
            await interaction.response.defer(thinking=True)
        except Exception as exc:  # the one catch point of this button
            await reply_error(interaction, exc)
            return
        bot.delivery.follow(new_job, InteractionSink(interaction))


def _rerollable(jobs: JobQueue, job_id: str) -> Job:
    try:
        return jobs.get(job_id)
    except UnknownJob:
        raise BotError(
            "This job can no longer be rerolled (the bot restarted since it ran);"
            " use /generate again."
        ) from None


def job_view(job: Job, has_ended: bool) -> discord.ui.View:
    """Return the buttons of a job's message: Cancel while it runs, Reroll always."""
    view = discord.ui.View(timeout=None)
    if not has_ended:
        view.add_item(CancelButton(job.id))
    view.add_item(RerollButton(job.id))
    return view


class Jobs(commands.Cog):
    """Show a member their jobs."""

    def __init__(self, jobs: JobQueue) -> None:
        self.jobs = jobs

    @app_commands.command(name="queue")
    async def queue(self, interaction: discord.Interaction[Any]) -> None:
        """Show your jobs that are waiting or running."""
        mine = [
            job
            for job in self.jobs.jobs.values()
            if job.request.requester == str(interaction.user.id) and not job.is_done
        ]
        if not mine:
            await interaction.response.send_message("You have no jobs right now.", ephemeral=True)
            return
        lines = [_describe(job) for job in mine]
        await interaction.response.send_message(truncate("\n".join(lines), 2000), ephemeral=True)


def _describe(job: Job) -> str:
    snapshot = job.snapshot
    where = f", position {snapshot.position}" if snapshot.position else ""
    prompt = truncate(" ".join(job.request.prompt.split()), 60) or "(no prompt)"
    return f"- `{job.id}` {job.workflow.name}: {snapshot.state.value}{where} · {prompt}"


async def setup(bot: ComfyBot) -> None:
    """Add the Jobs cog."""
    await bot.add_cog(Jobs(bot.jobs))
