"""`comfycord bot`: compose the journal, backends, workflows, queue and Discord bot, and run."""

from __future__ import annotations

import argparse
import asyncio
import logging
import time
from collections.abc import Sequence
from contextlib import AsyncExitStack
from typing import Any

import aiohttp
import discord

from bot.comfy.backend import ComfyBackend
from bot.comfy.errors import ComfyError
from bot.community.gate import Gate
from bot.community.guild import GuildSettings
from bot.community.nsfw import ImageModerator, load_detector
from bot.community.terms import BadTerm
from bot.config import ConfigError, Settings
from bot.discord.client import ComfyBot, bot_class
from bot.errors import EXIT_UNREACHABLE
from bot.jobs.engine import Engine
from bot.jobs.queue import JobQueue
from bot.jobs.servers import ServerStore
from bot.ops.health import OpsServer, bot_health
from bot.ops.metrics import Metrics
from bot.workflows.library import WorkflowError, WorkflowLibrary, validate
from bot.workflows.server import converter_if_needed

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the bot's arguments."""
    parser.add_argument(
        "--sync",
        action="store_true",
        help="register the slash commands with Discord for every server at start"
        " (once, and after commands change; DEV_GUILD_ID syncs one server on every start)",
    )


async def main(args: argparse.Namespace, settings: Settings) -> int:
    """Run the Discord bot until it is stopped; return the exit code (3: Discord unreachable).

    Raises:
        ConfigError: DISCORD_TOKEN is missing, malformed or rejected; workflows cannot load.
    """
    settings.require_discord()
    settings.require_metrics_token()
    _quiet_token_loggers()
    workflows = await _load_workflows(settings)
    defaults = _server_defaults(settings)
    # Metrics only with METRICS_PORT: nothing is counted that nobody can read.
    port = settings.metrics_port
    metrics = Metrics("discord") if port is not None else None
    stopping = _Stopping()
    async with AsyncExitStack() as stack:
        stack.callback(stopping.stopped)
        moderator = await stack.enter_async_context(ImageModerator(load_detector()))
        session = None
        if metrics is not None:
            await stack.enter_async_context(metrics)
            traced = aiohttp.ClientSession(trace_configs=[metrics.comfy_trace()])
            session = await stack.enter_async_context(traced)
        engine = Engine(settings, workflows, has_journal=True, session=session)
        await stack.enter_async_context(engine)
        gate = _gate(settings, defaults, engine.jobs)
        await warn_unchecked(gate, moderator)
        await warn_unrunnable(engine.backends, workflows)
        bot = bot_class(settings)(
            settings=settings,
            jobs=engine.jobs,
            gate=gate,
            moderator=moderator,
            sync_commands=args.sync,
            **_metered(metrics, engine.jobs),
        )
        if metrics is not None and port is not None:
            health = bot_health(engine.jobs, bot.is_gateway_connected)
            ops = OpsServer(
                metrics,
                health,
                host=settings.metrics_host,
                port=port,
                token=settings.metrics_token.value,
            )
            await stack.enter_async_context(ops)
        async with bot:
            try:
                return await _run(bot, settings.discord_token.value)
            finally:
                stopping.start()


class _Stopping:
    """Log the start and the end of stopping (Ctrl+C, SIGTERM, SIGINT), and how long it took."""

    def __init__(self) -> None:
        self._since: float | None = None

    def start(self) -> None:
        self._since = time.monotonic()
        log.info("stopping: unfinished jobs are taken up again at the next start")

    def stopped(self) -> None:
        if self._since is not None:
            log.info("stopped in %.1fs", time.monotonic() - self._since)


async def _load_workflows(settings: Settings) -> WorkflowLibrary:
    """Load WORKFLOWS_DIR (UI files converted when a server answers); log the unusable ones.

    Raises:
        ConfigError: the folder cannot be read.
    """
    converter = await converter_if_needed(
        [settings.workflows_dir], settings.backend_urls, request_timeout=settings.request_timeout
    )
    try:
        workflows = await asyncio.to_thread(WorkflowLibrary.load, settings.workflows_dir, converter)
    except WorkflowError as exc:
        raise ConfigError([f"WORKFLOWS_DIR: {exc.user_message}"]) from None
    for name, error in workflows.errors.items():
        log.warning("workflow %s is unusable: %s", name, error.user_message)
    return workflows


def _metered(metrics: Metrics | None, jobs: JobQueue) -> dict[str, Any]:
    """Return the bot's options that feed `metrics` (none without), and follow the queue's jobs."""
    if metrics is None:
        return {}
    metrics.watch(jobs)
    return {"on_delivered": metrics.delivered, "http_trace": metrics.discord_trace()}


async def warn_unrunnable(backends: Sequence[ComfyBackend], workflows: WorkflowLibrary) -> int:
    """Log each workflow a reachable server cannot run (missing model, custom node...).

    Advice for the admin at start, never a reason not to start: ComfyUI may be down now and
    fine later, and `comfycord check` gives the full report. Returns the problems logged.
    """
    logged = 0
    for backend in backends:
        try:
            object_info = await backend.client.object_info()
        except ComfyError as exc:
            log.warning("ComfyUI at %s does not answer yet: %s", backend.url, exc)
            continue
        for workflow in workflows:
            for problem in validate(workflow.graph, object_info):
                log.warning("workflow %s cannot run on %s: %s", workflow.name, backend.url, problem)
                logged += 1
    return logged


def _gate(settings: Settings, defaults: GuildSettings, jobs: JobQueue) -> Gate:
    """Return the servers' gate, their settings kept in the job journal."""
    servers = ServerStore(jobs.journal.store) if jobs.journal is not None else None
    return Gate(defaults, servers, allow_dms=settings.allow_dms)


def _server_defaults(settings: Settings) -> GuildSettings:
    """Return every server's rules before it changes any.

    Raises:
        ConfigError: a banned term of BANNED_TERMS cannot be used.
    """
    try:
        return GuildSettings.defaults(settings)
    except BadTerm as exc:
        raise ConfigError([f"BANNED_TERMS: {exc}"]) from None


async def warn_unchecked(gate: Gate, moderator: ImageModerator) -> list[int | None]:
    """Say at start which servers ask for image moderation this bot cannot do (no extra).

    Their results outside NSFW channels are withheld, never posted unchecked. Returns them
    (None: the .env default).
    """
    if moderator.is_available:
        return []
    asking: list[int | None] = []
    if gate.defaults.image_moderation != "off":
        asking.append(None)
    if gate.servers is not None:
        for guild_id, stored in await gate.servers.all_settings():
            if stored.get("image_moderation", gate.defaults.image_moderation) != "off":
                asking.append(guild_id)
    if asking:
        log.warning(
            "image moderation is asked for (%s) but comfycord[moderation] is not installed:"
            " results outside NSFW channels will be withheld, not posted unchecked",
            ", ".join("IMAGE_MODERATION" if g is None else f"server {g}" for g in asking),
        )
    return asking


def _quiet_token_loggers() -> None:
    """Keep interaction tokens out of the log, even at LOG_LEVEL=DEBUG.

    discord.py logs every gateway event and every webhook URL at DEBUG; both carry tokens.
    """
    for name in ("discord.gateway", "discord.webhook.async_"):
        logger = logging.getLogger(name)
        logger.setLevel(max(logger.getEffectiveLevel(), logging.INFO))


async def _run(bot: ComfyBot, token: str) -> int:
    """Run the bot until it is closed; turn Discord's refusals into clear messages.

    Raises:
        ConfigError: the token was rejected, or the Message Content intent is not enabled.
    """
    try:
        await bot.start(token)
    except discord.LoginFailure:
        raise ConfigError(
            [
                "DISCORD_TOKEN was rejected by Discord: copy a fresh token from the"
                " Developer Portal (Bot > Reset Token)."
            ]
        ) from None
    except discord.PrivilegedIntentsRequired:
        raise ConfigError(
            [
                "DISCORD_TOKEN: the bot needs the Message Content intent; enable it in the"
                " Developer Portal (Bot > Privileged Gateway Intents)."
            ]
        ) from None
    except (aiohttp.ClientError, OSError, discord.GatewayNotFound) as exc:
        log.error("cannot reach Discord: %s", exc)
        return EXIT_UNREACHABLE
    return 0
