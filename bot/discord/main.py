"""`comfycord bot`: compose the journal, backends, workflows, queue and Discord bot, and run."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import sqlite3
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path

import aiohttp
import discord

from bot.comfy.backend import ComfyBackend
from bot.comfy.client import ComfyClient
from bot.comfy.errors import ComfyError
from bot.config import ConfigError, Settings
from bot.discord.client import ComfyBot, bot_class
from bot.jobs.journal import Journal
from bot.jobs.queue import JobQueue
from bot.jobs.store import JobStore
from bot.workflows.library import WorkflowError, WorkflowLibrary, validate

log = logging.getLogger(__name__)

EXIT_UNREACHABLE = 3


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
    _quiet_token_loggers()
    try:
        workflows = await asyncio.to_thread(WorkflowLibrary.load, settings.workflows_dir)
    except WorkflowError as exc:
        raise ConfigError([f"WORKFLOWS_DIR: {exc.user_message}"]) from None
    for name, error in workflows.errors.items():
        log.warning("workflow %s is unusable: %s", name, error.user_message)
    async with (
        _open_store(settings.database_path) as store,
        Journal(store) as journal,
        aiohttp.ClientSession() as session,
        AsyncExitStack() as stack,
    ):
        backends = []
        for url in settings.backend_urls:
            # The same client_id across restarts: ComfyUI keeps sending events of earlier prompts.
            client = ComfyClient(
                url,
                session=session,
                timeout=settings.request_timeout,
                client_id=await store.client_id(url),
                preview_method=settings.preview_method,
            )
            backends.append(await stack.enter_async_context(ComfyBackend(client)))
        await warn_unrunnable(backends, workflows)
        jobs = JobQueue(
            backends,
            workflows,
            max_per_user=settings.max_jobs_per_user,
            max_in_flight=settings.max_in_flight_per_backend,
            journal=journal,
        )
        bot = bot_class(settings)(settings=settings, jobs=jobs, sync_commands=args.sync)
        async with jobs, bot:
            return await _run(bot, settings.discord_token.value)


async def warn_unrunnable(backends: list[ComfyBackend], workflows: WorkflowLibrary) -> int:
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


def _quiet_token_loggers() -> None:
    """Keep interaction tokens out of the log, even at LOG_LEVEL=DEBUG.

    discord.py logs every gateway event and every webhook URL at DEBUG; both carry tokens.
    """
    for name in ("discord.gateway", "discord.webhook.async_"):
        logger = logging.getLogger(name)
        logger.setLevel(max(logger.getEffectiveLevel(), logging.INFO))


@contextlib.asynccontextmanager
async def _open_store(path: Path) -> AsyncIterator[JobStore]:
    """Open the job journal's database.

    Raises:
        ConfigError: the file cannot be opened or created.
    """
    store = JobStore(path)
    try:
        await store.open()
    except sqlite3.Error as exc:
        await store.close()
        raise ConfigError([f"DATABASE_PATH: cannot open {str(path)!r}: {exc}"]) from None
    try:
        yield store
    finally:
        await store.close()


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
