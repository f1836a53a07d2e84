"""HealthMonitor: what one ComfyUI server is, learned afresh when needed, and its health rounds."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable

from bot.comfy.client import ComfyClient
from bot.comfy.errors import ComfyError
from bot.comfy.info import BackendHealth, ServerInfo
from bot.comfy.stream import EventStream
from bot.comfy.urls import redact

log = logging.getLogger(__name__)


class HealthMonitor:
    """Learn a server's version, features and API path; run the rounds that watch it.

    A round checks a server that is down or unknown; while the socket is up it hands over to
    `on_round`, and once the server has been down `dead_after` seconds it calls `on_dead`.
    """

    def __init__(
        self,
        client: ComfyClient,
        stream: EventStream,
        *,
        on_round: Callable[[], Awaitable[None]],
        on_dead: Callable[[], None],
        check_interval: float,
        dead_after: float,
    ) -> None:
        self.client = client
        self.stream = stream
        self.health = BackendHealth()
        self.info: ServerInfo | None = None
        self.check_interval = check_interval
        self.dead_after = dead_after
        self._on_round = on_round
        self._on_dead = on_dead
        self._down_since: float | None = None
        self._watcher: asyncio.Task[None] | None = None
        self._check_lock = asyncio.Lock()
        self._checks = 0

    def __repr__(self) -> str:
        return f"HealthMonitor({self.client.shown_url!r}, is_up={self.health.is_up})"

    def start(self) -> None:
        """Start the health rounds."""
        name = f"comfy-health {self.client.shown_url}"
        self._watcher = asyncio.create_task(self._watch(), name=name)

    async def close(self) -> None:
        """Stop the health rounds and wait until they have stopped."""
        if self._watcher is not None:
            self._watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watcher
            self._watcher = None

    def connected(self) -> None:
        """Note that the socket is open: the server is no longer counted as down."""
        self._down_since = None

    async def check(self) -> BackendHealth:
        """Learn the server's version, features and API path now, and remember the answer.

        Callers arriving while a check runs get that check's answer: one set of requests.
        """
        generation = self._checks
        async with self._check_lock:
            if self._checks == generation:
                await self._check_now()
                self._checks += 1
        return self.health

    async def _check_now(self) -> None:
        try:
            self.info = await self.client.server_info()
        except ComfyError as exc:
            self.health = BackendHealth(is_up=False, error=redact(str(exc)), checked_at=time.time())
        else:
            self.health = BackendHealth.of(self.info, checked_at=time.time())

    async def _watch(self) -> None:
        """Run the health rounds forever; no failure of one round ends the loop."""
        failures = 0
        while True:
            try:
                await self._round()
                failures = 0
            except ComfyError as exc:
                failures += 1
                log.warning("health round on %s failed: %s", self.client.shown_url, exc)
            except Exception:
                failures += 1
                log.exception("health round on %s failed", self.client.shown_url)
            await asyncio.sleep(min(self.check_interval * 2**failures, 60.0))

    async def _round(self) -> None:
        """Check a server that is down or unknown; give up on one that stays down."""
        if not self.stream.is_connected:
            await self.check()
        if self.stream.is_connected:  # (again: it may have opened during the check)
            self._down_since = None
            if not self.health.is_up:
                await self.check()
            await self._on_round()
            return
        now = time.monotonic()
        self._down_since = self._down_since or now
        if now - self._down_since >= self.dead_after:
            self._on_dead()
