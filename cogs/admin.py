"""/comfy status and /comfy reload: status for members with Manage Server, reload for bot admins.

A server's managers see their own server's prompts; what spans every server (other servers'
prompts, reloading the workflows they all use) is for the bot's admins: the application's owner
or team, or ADMIN_USER_IDS.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import discord
from discord import app_commands
from discord.ext import commands

from bot.comfy.backend import ComfyBackend
from bot.discord import listings, render
from bot.errors import NotAllowed
from bot.jobs.queue import JobQueue
from bot.workflows.library import WorkflowLibrary
from bot.workflows.server import converter_if_needed

if TYPE_CHECKING:
    from bot.discord.client import ComfyBot

log = logging.getLogger(__name__)

STATUS_TIMEOUT = 5.0
IsBotAdmin = Callable[[discord.abc.User], Awaitable[bool]]


class Admin(commands.Cog):
    """Look after the ComfyUI servers and the workflow library."""

    comfy = app_commands.Group(
        name="comfy",
        description="ComfyUI servers and workflows",
        default_permissions=discord.Permissions(manage_guild=True),
        guild_only=True,
    )

    def __init__(
        self,
        jobs: JobQueue,
        backends: Sequence[ComfyBackend],
        workflows_dir: Path,
        *,
        is_bot_admin: IsBotAdmin,
    ) -> None:
        self.jobs = jobs
        self.backends = tuple(backends)
        self.workflows_dir = workflows_dir
        self.is_bot_admin = is_bot_admin

    @comfy.command(name="status")
    @app_commands.checks.has_permissions(manage_guild=True)
    async def status(self, interaction: discord.Interaction[Any]) -> None:
        """Show each ComfyUI server (up or down, queue, version, GPU) and our own queue."""
        await interaction.response.defer(ephemeral=True, thinking=True)
        await asyncio.gather(*(_check(backend) for backend in self.backends))
        guild_id = None if await self.is_bot_admin(interaction.user) else interaction.guild_id
        lines = [self._describe(backend, guild_id) for backend in self.backends]
        in_comfy = self.jobs.dispatched_count()
        waiting, workflows = self.jobs.waiting_count(), len(self.jobs.workflows)
        lines.append(listings.queue_counts(waiting, in_comfy, workflows))
        text = render.truncate("\n".join(lines), render.CONTENT_LIMIT)
        await interaction.followup.send(text, ephemeral=True)

    def _describe(self, backend: ComfyBackend, guild_id: int | None) -> str:
        """Describe a server; its prompts of `guild_id` only, or all of them for None."""
        jobs = self.jobs.running_on(backend)
        here = [(job.id, job.request) for job in jobs if guild_id in (None, job.request.guild_id)]
        return listings.backend_status(
            backend.url,
            backend.health,
            is_healthy=backend.is_healthy,
            queue_remaining=backend.queue_remaining,
            running=here,
            running_elsewhere=len(jobs) - len(here),
        )

    @comfy.command(name="reload")
    @app_commands.checks.has_permissions(manage_guild=True)
    async def reload(self, interaction: discord.Interaction[Any]) -> None:
        """Re-read the workflow files (bot admins only: every server uses them)."""
        if not await self.is_bot_admin(interaction.user):
            raise NotAllowed(
                "Only the bot's owner or an admin in ADMIN_USER_IDS can reload the workflows:"
                " the reload acts for every server the bot is in."
            )
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

    async def is_bot_admin(user: discord.abc.User) -> bool:
        return user.id in bot.settings.admin_user_ids or await bot.is_owner(user)

    cog = Admin(bot.jobs, bot.backends, bot.settings.workflows_dir, is_bot_admin=is_bot_admin)
    await bot.add_cog(cog)
