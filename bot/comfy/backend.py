"""ComfyBackend: one ComfyUI server's client, stream and health, following our prompts."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import Any, Self

from bot.comfy.cancel import cancel_prompt, withdraw
from bot.comfy.client import ComfyClient
from bot.comfy.errors import ComfyError, ComfyUnavailable, PromptRejected
from bot.comfy.ids import canonical_form, is_canonical, new_prompt_id
from bot.comfy.info import BackendHealth, ServerInfo
from bot.comfy.monitor import HealthMonitor
from bot.comfy.runbook import RunBook
from bot.comfy.runs import (
    CancelResult,
    Outcome,
    PromptFailure,
    PromptResult,
    PromptRun,
)
from bot.comfy.settle import Reconciler
from bot.comfy.stream import Backoff, EventStream

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


class ComfyBackend:
    """One ComfyUI server: submit, cancel, and follow prompts over a single WebSocket.

    The open socket is the health signal. What the server is and can do is learned when the
    socket opens; /queue is asked after a reconnect, when the socket falls silent while one of
    our prompts is out, and otherwise at most every `reconcile_interval` seconds.
    """

    def __init__(
        self,
        client: ComfyClient,
        *,
        backoff: Backoff | None = None,
        check_interval: float = 5.0,
        dead_after: float = 30.0,
        silence_limit: float = 30.0,
        reconcile_interval: float = 60.0,
    ) -> None:
        self.client = client
        self.stream = EventStream(client.ws_url, backoff=backoff, on_connect=self._on_connect)
        self.monitor = HealthMonitor(
            client,
            self.stream,
            on_round=self._reconcile_if_due,
            on_dead=self._abandon_all,
            check_interval=check_interval,
            dead_after=dead_after,
        )
        self._reconciler = Reconciler(
            client, self.stream, silence_limit=silence_limit, reconcile_interval=reconcile_interval
        )
        self._runs = RunBook(self.stream)
        self._abandoned: set[str] = set()

    def __repr__(self) -> str:
        return f"ComfyBackend({self.url!r}, in_flight={len(self._runs)})"

    @property
    def health(self) -> BackendHealth:
        """Return the server's health as the last check found it."""
        return self.monitor.health

    @property
    def info(self) -> ServerInfo | None:
        """Return what the last successful check learned of the server."""
        return self.monitor.info

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

    @property
    def has_jobs_api(self) -> bool:
        """Tell whether cancel and reconcile go through ComfyUI's jobs API here."""
        return self.info is not None and self.info.has_jobs_api

    @property
    def upload_limit(self) -> int | None:
        """Return the largest upload body the server takes (its /features), None if unknown."""
        return self.info.features.upload_limit if self.info is not None else None

    def matches(self, names: Sequence[str]) -> bool:
        """Tell whether a workflow's placement names this server (by URL, host:port or host)."""
        url = self.client.base_url
        return bool({self.url, f"{url.host}:{url.port}", url.host or ""} & set(names))

    @property
    def is_healthy(self) -> bool:
        """Tell whether new work may go here: the socket is up and the server was learned."""
        return self.stream.is_connected and self.health.is_up

    async def __aenter__(self) -> Self:
        self.stream.start()
        self.monitor.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.monitor.close()
        await self.stream.close()
        # Whoever still waits learns the backend is gone; the prompts themselves are not
        # touched, so a restarted process can pick them up again from the journal.
        for run in self._runs:
            run.abort(ComfyUnavailable(f"the connection to {self.url} was closed"))

    def wire_id(self, prompt_id: str) -> str:
        """Return the id ComfyUI knows one of our prompts by (an old-style id may be mapped)."""
        requires = self.info is not None and self.info.requires_canonical_ids
        return self._runs.wire_id(prompt_id, requires_canonical=requires)

    def track(self, prompt_id: str) -> PromptRun:
        """Follow a prompt by id: subscribe before submitting, or re-attach after a restart."""
        return self._runs.track(prompt_id, self.wire_id(prompt_id))

    async def submit(self, prompt: Mapping[str, Any], *, prompt_id: str | None = None) -> PromptRun:
        """Queue a prompt; its events are captured from before ComfyUI sees it.

        Raises:
            PromptRejected: ComfyUI refused the prompt (nothing is tracked then).
            ComfyUnavailable: the server could not be reached.
        """
        prompt_id = prompt_id or new_prompt_id()
        try:
            return await self._submit(prompt, prompt_id)
        except PromptRejected as exc:
            if exc.error_type != "invalid_prompt_id" or is_canonical(prompt_id):
                raise
        # A journal's old-style id, sent before the server's rules were learned: its UUID form.
        self._runs.alias(prompt_id, canonical_form(prompt_id))
        return await self._submit(prompt, prompt_id)

    async def _submit(self, prompt: Mapping[str, Any], prompt_id: str) -> PromptRun:
        run = self.track(prompt_id)
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
        wire = self.wire_id(prompt_id)
        result = await cancel_prompt(self.client, wire, has_jobs_api=self.has_jobs_api)
        if result is CancelResult.REMOVED:
            self._settle_cancelled(wire)
        return result

    def _settle_cancelled(self, prompt_id: str) -> None:
        # A dequeued prompt gets no further message from ComfyUI: settle it here.
        if (run := self._runs.get(prompt_id)) is not None:
            run.finish(PromptResult(prompt_id, Outcome.CANCELLED))

    async def _on_connect(self, is_reconnect: bool) -> None:
        self.monitor.connected()
        if is_reconnect or not self.health.is_up:
            # The server may have been restarted, or replaced by another version.
            await self.check()
        if self._abandoned:
            await self._withdraw_abandoned()
        if is_reconnect:
            await self.reconcile()

    async def check(self) -> BackendHealth:
        """Learn the server's version, features and API path now, and remember the answer."""
        return await self.monitor.check()

    async def _reconcile_if_due(self) -> None:
        if self._reconciler.is_due(self._runs.outstanding()):
            await self.reconcile()

    def _abandon_all(self) -> None:
        """Give up on every prompt of a server that has been down too long."""
        for run in self._runs.outstanding():
            log.warning(
                "%s down for %.0fs: giving up on %s", self.url, self.monitor.dead_after, run
            )
            self._abandoned.add(run.prompt_id)
            run.lose()

    async def _withdraw_abandoned(self) -> None:
        """Remove prompts we gave up on from a server that came back, so they never run twice."""
        abandoned, self._abandoned = self._abandoned, set()
        try:
            await withdraw(self.client, abandoned, has_jobs_api=self.has_jobs_api)
        except ComfyError as exc:
            log.warning("could not withdraw abandoned prompts from %s: %s", self.url, exc)

    async def reconcile(self) -> None:
        """Settle every acknowledged prompt that ended, or vanished, while we were away."""
        await self._reconciler.reconcile(self._runs.outstanding(), has_jobs_api=self.has_jobs_api)
