"""ComfyBackend: one ComfyUI server's client, stream and health, following our prompts."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Self

from bot.comfy.client import ComfyClient, new_prompt_id
from bot.comfy.errors import ComfyError, ComfyUnavailable
from bot.comfy.models import HistoryEntry
from bot.comfy.runs import (
    CancelResult,
    Outcome,
    PromptFailure,
    PromptResult,
    PromptRun,
)
from bot.comfy.stream import Backoff, EventStream
from bot.comfy.urls import redact

__all__ = [
    "BackendHealth",
    "CancelResult",
    "ComfyBackend",
    "Outcome",
    "PromptFailure",
    "PromptResult",
    "PromptRun",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class BackendHealth:
    """What the last health check of a server found."""

    is_up: bool = False
    version: str | None = None
    devices: tuple[dict[str, Any], ...] = field(default_factory=tuple)
    error: str | None = None
    checked_at: float = 0.0


class ComfyBackend:
    """One ComfyUI server: submit, cancel, and follow prompts over a single WebSocket."""

    def __init__(
        self,
        client: ComfyClient,
        *,
        backoff: Backoff | None = None,
        check_interval: float = 5.0,
        dead_after: float = 30.0,
        silence_limit: float = 30.0,
    ) -> None:
        self.client = client
        self.stream = EventStream(client.ws_url, backoff=backoff, on_connect=self._on_connect)
        self.health = BackendHealth()
        self.check_interval = check_interval
        self.dead_after = dead_after
        self.silence_limit = silence_limit
        self._runs: dict[str, PromptRun] = {}
        self._abandoned: set[str] = set()
        self._down_since: float | None = None
        self._watcher: asyncio.Task[None] | None = None

    def __repr__(self) -> str:
        return f"ComfyBackend({self.url!r}, in_flight={len(self._runs)})"

    @property
    def url(self) -> str:
        """Return the server's base URL as it may be shown and journaled (no user or password)."""
        return self.client.shown_url

    @property
    def in_flight(self) -> int:
        """Return how many of our prompts have no outcome yet."""
        return len(self._runs)

    @property
    def queue_remaining(self) -> int:
        """Return ComfyUI's own count of running plus pending prompts (every client's)."""
        return self.stream.queue_remaining

    def matches(self, names: Sequence[str]) -> bool:
        """Tell whether a workflow's placement names this server (by URL, host:port or host)."""
        url = self.client.base_url
        return bool({self.url, f"{url.host}:{url.port}", url.host or ""} & set(names))

    @property
    def is_healthy(self) -> bool:
        """Tell whether new work may go here: the socket is up and /system_stats answered."""
        return self.stream.is_connected and self.health.is_up

    async def __aenter__(self) -> Self:
        self.stream.start()
        self._watcher = asyncio.create_task(self._watch(), name=f"comfy-health {self.url}")
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._watcher is not None:
            self._watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watcher
            self._watcher = None
        await self.stream.close()
        # Whoever still waits learns the backend is gone; the prompts themselves are not
        # touched, so a restarted process can pick them up again from the journal.
        for run in list(self._runs.values()):
            run.abort(ComfyUnavailable(f"the connection to {self.url} was closed"))

    def track(self, prompt_id: str) -> PromptRun:
        """Follow a prompt by id: subscribe before submitting, or re-attach after a restart."""
        run = PromptRun(prompt_id, self.stream.subscribe(prompt_id))
        self._runs[prompt_id] = run
        run.on_done(self._forget)
        return run

    def _forget(self, run: PromptRun) -> None:
        if self._runs.get(run.prompt_id) is run:
            del self._runs[run.prompt_id]

    async def submit(self, prompt: Mapping[str, Any], *, prompt_id: str | None = None) -> PromptRun:
        """Queue a prompt; its events are captured from before ComfyUI sees it.

        Raises:
            PromptRejected: ComfyUI refused the prompt (nothing is tracked then).
            ComfyUnavailable: the server could not be reached.
        """
        run = self.track(prompt_id or new_prompt_id())
        connection = self.stream.connections
        try:
            await self.client.submit(prompt, prompt_id=run.prompt_id)
        except BaseException:
            run.finish(PromptResult(run.prompt_id, Outcome.LOST, was_started=False))
            raise
        run.is_acknowledged = True
        log.info("submitted %s to %s", run.prompt_id, self.url)
        if self.stream.connections != connection:
            # The socket came back while ComfyUI took the prompt: the reconnect's reconcile
            # skipped this run (not yet acknowledged), and its end may have gone to the old one.
            await self.reconcile()
        return run

    async def cancel(self, prompt_id: str) -> CancelResult:
        """Stop one prompt: remove it if pending, interrupt it if running; nobody else's."""
        for _ in range(3):
            queue = await self.client.queue()
            if queue.is_pending(prompt_id):
                await self.client.delete_pending([prompt_id])
                if not (await self.client.queue()).is_running(prompt_id):
                    # A deleted prompt gets no further message from ComfyUI: settle it here.
                    if (run := self._runs.get(prompt_id)) is not None:
                        run.finish(PromptResult(prompt_id, Outcome.CANCELLED))
                    return CancelResult.REMOVED
            elif queue.is_running(prompt_id):
                await self.client.interrupt(prompt_id)
                return CancelResult.INTERRUPTED
            else:
                return CancelResult.NOT_FOUND
        return CancelResult.NOT_FOUND

    async def _on_connect(self, is_reconnect: bool) -> None:
        self._down_since = None
        if self._abandoned:
            await self._withdraw_abandoned()
        if is_reconnect:
            await self.reconcile()

    async def check(self) -> BackendHealth:
        """Ask /system_stats whether the server is up, and remember the answer."""
        try:
            stats = await self.client.system_stats()
        except ComfyError as exc:
            self.health = BackendHealth(is_up=False, error=redact(str(exc)), checked_at=time.time())
        else:
            system = stats.get("system") or {}
            self.health = BackendHealth(
                is_up=True,
                version=system.get("comfyui_version"),
                devices=tuple(d for d in stats.get("devices") or () if isinstance(d, dict)),
                checked_at=time.time(),
            )
        return self.health

    async def _watch(self) -> None:
        """Check health, abandon runs of a server that stays down, and reconcile periodically."""
        while True:
            await self.check()
            if self.stream.is_connected:
                # A missed WebSocket message can never leave a prompt hanging: one /queue a round.
                await self.reconcile()
            else:
                now = time.monotonic()
                self._down_since = self._down_since or now
                if now - self._down_since >= self.dead_after:
                    self._abandon_all()
            await asyncio.sleep(self.check_interval)

    def _abandon_all(self) -> None:
        """Give up on every prompt of a server that has been down too long."""
        for run in list(self._runs.values()):
            if run.is_acknowledged and not run.is_done:
                log.warning("%s down for %.0fs: giving up on %s", self.url, self.dead_after, run)
                self._abandoned.add(run.prompt_id)
                run.lose()

    async def _withdraw_abandoned(self) -> None:
        """Remove prompts we gave up on from a server that came back, so they never run twice."""
        abandoned, self._abandoned = self._abandoned, set()
        try:
            queue = await self.client.queue()
            pending = [p for p in abandoned if queue.is_pending(p)]
            if pending:
                await self.client.delete_pending(pending)
            for prompt_id in abandoned:
                if queue.is_running(prompt_id):
                    await self.client.interrupt(prompt_id)
        except ComfyError as exc:
            log.warning("could not withdraw abandoned prompts from %s: %s", self.url, exc)

    async def reconcile(self) -> None:
        """Settle every acknowledged prompt that ended, or vanished, while we were away."""
        runs = [run for run in self._runs.values() if run.is_acknowledged and not run.is_done]
        if not runs:
            return
        try:
            queue = await self.client.queue()
            if self.stream.silence > self.silence_limit and any(
                queue.is_running(run.prompt_id) for run in runs
            ):
                # ComfyUI drops a client_id's registration when its *older* socket closes
                # late (a half-open connection after a blip): the new socket then hears
                # nothing. Our prompt is running but silent: register again.
                log.warning(
                    "%s silent for %.0fs while running our prompt: reconnecting",
                    self.url,
                    self.stream.silence,
                )
                await self.stream.reconnect()
            for run in runs:
                if queue.is_running(run.prompt_id) or queue.is_pending(run.prompt_id):
                    continue
                entry = await self.client.history(run.prompt_id)
                if entry is None:
                    log.warning("%s is unknown to %s (restarted?): lost", run, self.url)
                    run.lose()
                else:
                    run.finish(_result_from_history(run.prompt_id, entry))
        except ComfyError as exc:
            log.warning("reconcile with %s failed: %s", self.url, exc)


def _result_from_history(prompt_id: str, entry: HistoryEntry) -> PromptResult:
    if entry.status == "success" and entry.completed:
        return PromptResult(prompt_id, Outcome.SUCCESS, entry.files)
    if (error := entry.message("execution_error")) is not None:
        failure = PromptFailure(
            error.get("node_id"),
            error.get("node_type"),
            str(error.get("exception_type", "")),
            str(error.get("exception_message", "")),
        )
        return PromptResult(prompt_id, Outcome.ERROR, entry.files, failure)
    if entry.message("execution_interrupted") is not None:
        return PromptResult(prompt_id, Outcome.INTERRUPTED)
    return PromptResult(prompt_id, Outcome.LOST)
