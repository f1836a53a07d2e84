"""/comfy status and /comfy reload, for members with Manage Server."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import discord
from discord import app_commands
from discord.ext import commands

from bot.comfy.backend import ComfyBackend
from bot.discord import listings, render
from bot.jobs.queue import JobQueue
from bot.workflows.library import WorkflowLibrary
from bot.workflows.server import converter_if_needed

if TYPE_CHECKING:
    from bot.discord.client import ComfyBot

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
        """Show each ComfyUI server (up or down, queue, version, GPU) and our own queue."""
        await interaction.response.defer(ephemeral=True, thinking=True)
        await asyncio.gather(*(_check(backend) for backend in self.backends))
        lines = [self._describe(backend) for backend in self.backends]
        in_comfy = self.jobs.dispatched_count()
        waiting, workflows = self.jobs.waiting_count(), len(self.jobs.workflows)
        lines.append(listings.queue_counts(waiting, in_comfy, workflows))
        text = render.truncate("\n".join(lines), render.CONTENT_LIMIT)
        await interaction.followup.send(text, ephemeral=True)

    def _describe(self, backend: ComfyBackend) -> str:
        running = [(job.id, job.request) for job in self.jobs.running_on(backend)]
        return listings.backend_status(
            backend.url,
            backend.health,
            is_healthy=backend.is_healthy,
            queue_remaining=backend.queue_remaining,
            running=running,
        )

    @comfy.command(name="reload")
    @app_commands.checks.has_permissions(manage_guild=True)
    async def reload(self, interaction: discord.Interaction[Any]) -> None:
        """Re-read the workflow files."""
        await interaction.response.defer(ephemeral=True, thinking=True)
        # Fresh node definitions when a server answers (custom nodes may have been added).
        converter = await converter_if_needed(
            [self.workflows_dir], [b.url for b in self.backends], request_timeout=STATUS_TIMEOUT
        )
        converter = converter or self.jobs.workflows.converter
        library = await asyncio.to_thread(WorkflowLibrary.load, self.workflows_dir, converter)
        self.jobs.reload_workflows(library)
        log.info("workflows reloaded by %s: %s", interaction.user.id, ", ".join(library.names()))
        lines = [f"Loaded {len(library)} workflows: {', '.join(library.names()) or 'none'}."]
        lines += [f"- {name}: {error.user_message}" for name, error in library.errors.items()]
        text = render.truncate("\n".join(lines), render.CONTENT_LIMIT)
        await interaction.followup.send(text, ephemeral=True)


async def _check(backend: ComfyBackend) -> None:
    """Refresh a server's health; a server slower than STATUS_TIMEOUT keeps its last check."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(STATUS_TIMEOUT):
            await backend.check()


async def setup(bot: ComfyBot) -> None:
    """Add the Admin cog."""
    await bot.add_cog(Admin(bot.jobs, bot.backends, bot.settings.workflows_dir))
