"""ComfyBot: the discord.py client, composed from services it is given; loads the cogs."""

from __future__ import annotations

import logging
from typing import Any

import discord
from discord.ext import commands

from bot.comfy.backend import ComfyBackend
from bot.community.gate import Gate
from bot.community.guild import GuildSettings
from bot.community.nsfw import ImageModerator, load_detector
from bot.config import Settings
from bot.discord.buttons import DYNAMIC_ITEMS
from bot.discord.community import Community
from bot.discord.delivery import Delivered, Delivery
from bot.discord.errors import ErrorTree
from bot.discord.iterate import ITERATE_ITEMS, result_controls
from bot.discord.modlog import ModLog
from bot.discord.restore import reattach
from bot.jobs.preferences import Preferences
from bot.jobs.queue import JobQueue
from bot.jobs.servers import ServerStore
from bot.workflows.library import WorkflowLibrary

log = logging.getLogger(__name__)

EXTENSIONS = (
    "cogs.generate",
    "cogs.chat",
    "cogs.jobs",
    "cogs.admin",
    "cogs.preferences",
    "cogs.config",
)


def intents() -> discord.Intents:
    """Return the gateway intents: the defaults plus Message Content, for mention-with-image."""
    chosen = discord.Intents.default()
    chosen.message_content = True
    return chosen


class ComfyBot(commands.Bot):
    """The Discord bot; it owns only its message deliveries, not the queue or the backends.

    With a job journal (`jobs.journal`), it takes up unfinished jobs at start and finds their
    replies again (`bot.discord.restore`), and servers keep their own settings in it. Without a
    `moderator`, it makes (and closes) one with NudeNet when the moderation extra is installed.
    """

    def __init__(
        self,
        *,
        settings: Settings,
        jobs: JobQueue,
        gate: Gate | None = None,
        moderator: ImageModerator | None = None,
        sync_commands: bool = False,
        on_delivered: Delivered | None = None,
        **options: Any,
    ) -> None:
        options.setdefault("intents", intents())
        options.setdefault("allowed_mentions", discord.AllowedMentions.none())
        super().__init__(
            command_prefix=commands.when_mentioned, tree_cls=ErrorTree, help_command=None, **options
        )
        self.settings = settings
        self.jobs = jobs
        self.preferences = Preferences(jobs.journal.store if jobs.journal else None)
        self._own_moderator = moderator is None
        if gate is None:
            servers = ServerStore(jobs.journal.store) if jobs.journal is not None else None
            gate = Gate(GuildSettings.defaults(settings), servers, allow_dms=settings.allow_dms)
        self.community = Community(
            gate,
            moderator or ImageModerator(load_detector()),
            ModLog(self),
            is_owner=self.is_owner,
        )
        self.delivery = Delivery(
            settings,
            result_controls,
            journal=jobs.journal,
            is_available=lambda: jobs.placement.has_healthy_backend,
            screen=self.community.screen,
            on_delivered=on_delivered,
        )
        self.sync_commands = sync_commands

    def __repr__(self) -> str:
        return f"ComfyBot(backends={len(self.backends)}, jobs={self.jobs!r})"

    @property
    def backends(self) -> tuple[ComfyBackend, ...]:
        """Return the ComfyUI servers (the queue's)."""
        return self.jobs.backends

    @property
    def workflows(self) -> WorkflowLibrary:
        """Return the current workflow library (the queue's; /comfy reload replaces it)."""
        return self.jobs.workflows

    async def setup_hook(self) -> None:
        """Register the persistent buttons, load the cogs, take up unfinished jobs, sync."""
        self.add_dynamic_items(*DYNAMIC_ITEMS, *ITERATE_ITEMS)
        for extension in EXTENSIONS:
            try:
                await self.load_extension(extension)
            except Exception:
                log.exception("could not load %s; the other extensions go on", extension)
        try:
            await reattach(self, self.jobs, self.delivery)
        except Exception:
            log.exception("could not take up the journal's unfinished jobs; starting anyway")
        if self.settings.dev_guild_id is not None:
            guild = discord.Object(id=self.settings.dev_guild_id)
            self.tree.copy_global_to(guild=guild)
            await self._sync(guild)
        if self.sync_commands:
            await self._sync(None)

    async def _sync(self, guild: discord.Object | None) -> None:
        where = f"guild {guild.id}" if guild else "every server (global)"
        try:
            synced = await self.tree.sync(guild=guild)
        except discord.HTTPException:
            log.exception("syncing commands to %s failed", where)
        else:
            log.info("synced %d commands to %s", len(synced), where)

    def is_gateway_connected(self) -> bool:
        """Tell whether the gateway session is up (ready, and its WebSocket open)."""
        return not self.is_closed() and self.is_ready() and self.ws is not None and self.ws.open

    async def on_ready(self) -> None:
        """Log who we are."""
        log.info("logged in as %s (%s)", self.user, getattr(self.user, "id", "?"))

    async def on_message(self, message: discord.Message, /) -> None:
        """Ignore prefix commands; chat requests are the Generate cog's listener."""

    async def close(self) -> None:
        """Stop following jobs before discord.py closes its connections."""
        await self.delivery.close()
        await self.community.close()
        await super().close()
        if self._own_moderator:
            await self.community.moderator.close()


class ComfyShardedBot(ComfyBot, commands.AutoShardedBot):
    """ComfyBot on discord.py's AutoShardedBot: the shard count comes from GET /gateway/bot."""

    def is_gateway_connected(self) -> bool:
        """Tell whether every shard's gateway session is up."""
        shards = self.shards.values()
        is_up = not self.is_closed() and self.is_ready() and bool(shards)
        return is_up and not any(shard.is_closed() for shard in shards)


def bot_class(settings: Settings) -> type[ComfyBot]:
    """Return the bot class the settings ask for (SHARDED=true: one process, several shards)."""
    return ComfyShardedBot if settings.sharded else ComfyBot
