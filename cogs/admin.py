"""/comfy status and /comfy reload, for members with Manage Server."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import discord
from discord import app_commands
from discord.ext import commands

from bot import render
from bot.comfy.backend import ComfyBackend
from bot.comfy.errors import ComfyError
from bot.jobqueue import JobQueue
from bot.workflows import WorkflowLibrary

if TYPE_CHECKING:
    from bot.bot import ComfyBot

log = logging.getLogger(__name__)

STATUS_TIMEOUT = 5.0


class Admin(commands.Cog):
    """Look after the ComfyUI servers and the workflow library."""

    comfy = app_commands.Group(
        name="comfy",
        description="ComfyUI servers and workflows",
        default_permissions=discord.Permissions(manage_guild=True),
        guild_only=True,
    )

    def __init__(
        self, jobs: JobQueue, backends: Sequence[ComfyBackend], workflows_dir: Path
    ) -> None:
        self.jobs = jobs
        self.backends = tuple(backends)
        self.workflows_dir = workflows_dir

    @comfy.command(name="status")
    @app_commands.checks.has_permissions(manage_guild=True)
    async def status(self, interaction: discord.Interaction[Any]) -> None:
        """Show each ComfyUI server: up or down, its queue and version."""
        await interaction.response.defer(ephemeral=True, thinking=True)
        lines = await asyncio.gather(*(_describe(backend) for backend in self.backends))
        waiting = self.jobs.waiting_count()
        lines.append(f"Our queue: {waiting} waiting, {len(self.jobs.workflows)} workflows loaded.")
        await interaction.followup.send(render.truncate("\n".join(lines), 2000), ephemeral=True)

    @comfy.command(name="reload")
    @app_commands.checks.has_permissions(manage_guild=True)
    async def reload(self, interaction: discord.Interaction[Any]) -> None:
        """Re-read the workflow files."""
        await interaction.response.defer(ephemeral=True, thinking=True)
        library = await asyncio.to_thread(WorkflowLibrary.load, self.workflows_dir)
        self.jobs.workflows = library
        log.info("workflows reloaded by %s: %s", interaction.user.id, ", ".join(library.names()))
        lines = [f"Loaded {len(library)} workflows: {', '.join(library.names()) or 'none'}."]
        lines += [f"- {name}: {error.user_message}" for name, error in library.errors.items()]
        await interaction.followup.send(render.truncate("\n".join(lines), 2000), ephemeral=True)


async def _describe(backend: ComfyBackend) -> str:
    try:
        async with asyncio.timeout(STATUS_TIMEOUT):
            stats, queue = await asyncio.gather(
                backend.client.system_stats(), backend.client.queue()
            )
    except (ComfyError, TimeoutError) as exc:
        problem = "timed out" if isinstance(exc, TimeoutError) else type(exc).__name__
        return render.backend_line(
            backend.url, is_connected=False, stats=None, queue=None, problem=problem
        )
    return render.backend_line(
        backend.url, is_connected=backend.stream.is_connected, stats=stats, queue=queue
    )


async def setup(bot: ComfyBot) -> None:
    """Add the Admin cog."""
    await bot.add_cog(Admin(bot.jobs, bot.backends, bot.settings.workflows_dir))
