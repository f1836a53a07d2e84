"""Run the real ComfyBot against FakeDiscord and FakeComfy: settings, services, predicates."""

from __future__ import annotations

import asyncio
import io
import shutil
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import discord
import pytest
from PIL import Image

from bot.comfy.backend import ComfyBackend
from bot.config import Settings
from bot.discord.client import ComfyBot, ComfyShardedBot
from bot.images import check_input_image
from bot.jobs.engine import Engine
from bot.jobs.queue import JobQueue
from bot.workflows.library import WorkflowLibrary
from tests.fakes.comfy import FakeComfy
from tests.fakes.discord import FakeDiscord, Interaction, RecordedCall, run_bot
from tests.fakes.discord_messages import walk

# discord.py's own names for the numbers of Discord's payloads.
Response = discord.InteractionResponseType
Option = discord.AppCommandOptionType
EPHEMERAL = discord.MessageFlags(ephemeral=True).value
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures"
SOURCES = (
    *sorted((ROOT / "workflows").glob("demo.*")),
    *sorted((FIXTURES / "workflows").glob("slow.*")),
    FIXTURES / "workflows" / "fail.json",
    *sorted((FIXTURES / "discord_workflows").glob("*.*")),
    FIXTURES / "media" / "moving.json",
)


def library_dir(tmp_path: Path) -> Path:
    """Copy the workflows of the Discord tests (demo, slow, fail, preview, batch, moving)."""
    directory = tmp_path / "workflows"
    directory.mkdir()
    for source in SOURCES:
        shutil.copy(source, directory / source.name)
    return directory


def make_settings(comfy_url: str, workflows_dir: Path, **env: str) -> Settings:
    """Return settings for a test: fast progress edits, the test workflows, overrides in `env`."""
    base = {
        "DISCORD_TOKEN": "fake.discord.token",
        "COMFYUI_URL": comfy_url,
        "WORKFLOWS_DIR": str(workflows_dir),
        "DEFAULT_WORKFLOW": "slow",
        "DEFAULT_IMAGE_WORKFLOW": "demo",
        "PROGRESS_INTERVAL": "0.05",
        "MAX_JOBS_PER_USER": "3",
        "DATABASE_PATH": str(workflows_dir.parent / "journal.db"),
    }
    return Settings.from_env({**base, **env})


class ComfyCalls:
    """The HTTP calls the bot made to ComfyUI (an aiohttp trace), with a waiter."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, int]] = []
        self._changed = asyncio.Condition()
        self.trace = aiohttp.TraceConfig()
        self.trace.on_request_end.append(self._on_end)

    async def _on_end(
        self, session: object, context: object, params: aiohttp.TraceRequestEndParams
    ) -> None:
        async with self._changed:
            self.calls.append((params.method, params.url.path, params.response.status))
            self._changed.notify_all()

    async def wait_for(self, method: str, path: str, timeout: float = 5) -> None:
        """Wait until the bot got an answer to `method path` from ComfyUI."""
        async with asyncio.timeout(timeout), self._changed:
            await self._changed.wait_for(lambda: any(c[:2] == (method, path) for c in self.calls))


@dataclass
class Services:
    """What the bot is given: settings, backends on FakeComfy, the job queue (and journal)."""

    settings: Settings
    backends: list[ComfyBackend]
    jobs: JobQueue
    comfy_calls: ComfyCalls

    @property
    def backend(self) -> ComfyBackend:
        """Return the first (usually the only) backend."""
        return self.backends[0]

    def new_bot(self, *, sharded: bool = False) -> ComfyBot:
        """Build a ComfyBot on these services (start it with `run_bot`)."""
        cls = ComfyShardedBot if sharded else ComfyBot
        return cls(
            settings=self.settings,
            jobs=self.jobs,
            guild_ready_timeout=0.05,
        )


@asynccontextmanager
async def open_services(
    settings: Settings, *, journal: bool = False, wait_healthy: bool = True
) -> AsyncIterator[Services]:
    """Open the journal (if asked), backends and queue on an Engine, as `bot.discord.main` does."""
    calls = ComfyCalls()
    library = WorkflowLibrary.load(settings.workflows_dir)
    async with (
        aiohttp.ClientSession(trace_configs=[calls.trace]) as session,
        Engine(settings, library, has_journal=journal, session=session) as engine,
    ):
        if wait_healthy:
            async with asyncio.timeout(5):
                await engine.backends[0].stream.wait_connected()
        yield Services(settings, list(engine.backends), engine.jobs, calls)


@asynccontextmanager
async def running(settings: Settings, *, journal: bool = False) -> AsyncIterator[Services]:
    """Open the services (`open_services`) and run a ComfyBot on them until the block ends."""
    async with open_services(settings, journal=journal) as services, run_bot(services.new_bot()):
        yield services


def png(width: int = 64, height: int = 48, color: tuple[int, int, int] = (200, 30, 30)) -> bytes:
    """Return a small PNG."""
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), color).save(buffer, "PNG")
    return buffer.getvalue()


def as_uploaded(data: bytes) -> bytes:
    """Return what ComfyUI receives for an input image: its first frame re-encoded as PNG."""
    return check_input_image(data, "input.png", max_bytes=len(data)).data


def webhook_of(ix: Interaction) -> Callable[[RecordedCall], bool]:
    """Match calls on the interaction's webhook (edits of @original and follow-ups)."""
    return lambda call: f"/{ix.token}" in call.path and call.path.startswith("/webhooks/")


def edits_of(ix: Interaction) -> Callable[[RecordedCall], bool]:
    """Match successful PATCHes of the interaction's @original."""
    is_webhook = webhook_of(ix)
    return lambda c: is_webhook(c) and c.method == "PATCH" and c.path.endswith("/@original")


def final_edit(ix: Interaction) -> Callable[[RecordedCall], bool]:
    """Match the result edit of @original (the one carrying the result embed or an end line)."""
    is_edit = edits_of(ix)
    return lambda c: is_edit(c) and c.status == 200 and _is_final(c.json)


def message_result(message_id: int) -> Callable[[RecordedCall], bool]:
    """Match the edit of a channel message (a mention's reply, a moved job) carrying the result."""
    return lambda c: (
        c.method == "PATCH"
        and c.path.endswith(f"/messages/{message_id}")
        and bool(c.json.get("embeds"))
    )


def assert_told_privately(answer: dict[str, Any], text: str) -> None:
    """Assert an interaction was answered at once, ephemerally, with a message holding `text`."""
    assert answer["type"] == Response.channel_message.value, answer
    assert answer["data"]["flags"] == EPHEMERAL, answer
    assert text in answer["data"]["content"], answer


def _is_final(body: Any) -> bool:
    content = (body or {}).get("content") or ""
    return bool((body or {}).get("embeds")) or any(
        mark in content for mark in ("✅", "❌", "🚫", "⚠️")
    )


def button(message: dict[str, Any], prefix: str) -> str | None:
    """Return the custom_id of the message's button starting with `prefix`, if any."""
    for component in walk(message.get("components") or []):
        custom_id = component.get("custom_id") or ""
        if custom_id.startswith(prefix):
            return str(custom_id)
    return None


async def wait_button(fake: FakeDiscord, message_id: int, prefix: str) -> str:
    """Wait until the message carries a button whose custom_id starts with `prefix`."""
    found = button(fake.messages.get(message_id, {}), prefix)
    if found:
        return found
    call = await fake.wait_for(
        lambda c: (
            c.method == "PATCH"
            and c.status == 200
            and button(c.response or {}, prefix) is not None
            and str((c.response or {}).get("id")) == str(message_id)
        )
    )
    found = button(call.response or {}, prefix)
    assert found is not None
    return found


# Fixtures, imported by the tests/test_discord_*.py modules.


@pytest.fixture(name="env")
def env_fixture() -> dict[str, str]:
    """Return extra settings of a test (override with `@pytest.mark.parametrize("env", ...)`)."""
    return {}


@pytest.fixture(name="services")
async def services_fixture(
    fake_comfy: FakeComfy, tmp_path: Path, env: dict[str, str]
) -> AsyncIterator[Services]:
    """Open the bot's services against FakeComfy."""
    settings = make_settings(fake_comfy.url, library_dir(tmp_path), **env)
    async with open_services(settings) as opened:
        yield opened


@pytest.fixture(name="bot")
async def bot_fixture(fake_discord: FakeDiscord, services: Services) -> AsyncIterator[ComfyBot]:
    """Run a ComfyBot on FakeDiscord until the test ends."""
    async with run_bot(services.new_bot()) as running:
        yield running
