"""ComfyBackend: one ComfyUI server's client and stream, tracking our prompts to their outcome."""

from __future__ import annotations

import asyncio
import enum
import logging
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self

from bot.comfy.client import ComfyClient, new_prompt_id
from bot.comfy.errors import ComfyError
from bot.comfy.events import (
    Event,
    Executed,
    ExecutionError,
    ExecutionInterrupted,
    ExecutionSuccess,
    OutputFile,
)
from bot.comfy.models import HistoryEntry
from bot.comfy.stream import Backoff, EventStream, Subscription

log = logging.getLogger(__name__)


class Outcome(enum.StrEnum):
    """How a prompt ended."""

    SUCCESS = "success"
    ERROR = "error"
    INTERRUPTED = "interrupted"
    CANCELLED = "cancelled"
    LOST = "lost"


class CancelResult(enum.StrEnum):
    """What cancelling a prompt did."""

    REMOVED = "removed"
    INTERRUPTED = "interrupted"
    NOT_FOUND = "not_found"


@dataclass(frozen=True, slots=True)
class PromptFailure:
    """Where and why a prompt failed."""

    node_id: str | None
    node_type: str | None
    exception_type: str
    message: str


@dataclass(frozen=True, slots=True)
class PromptResult:
    """The end of one prompt: its outcome, output files and failure, if any."""

    prompt_id: str
    outcome: Outcome
    files: tuple[OutputFile, ...] = ()
    failure: PromptFailure | None = None

    @property
    def is_success(self) -> bool:
        """Tell whether the prompt completed."""
        return self.outcome is Outcome.SUCCESS


class PromptRun:
    """Events of one submitted prompt, ending with its PromptResult."""

    def __init__(self, prompt_id: str, subscription: Subscription[Event]) -> None:
        self.prompt_id = prompt_id
        self._subscription = subscription
        self._files: list[OutputFile] = []
        self._done: asyncio.Future[PromptResult] = asyncio.get_running_loop().create_future()
        self.is_acknowledged = False

    def __repr__(self) -> str:
        return f"PromptRun({self.prompt_id!r}, done={self._done.done()})"

    @property
    def is_done(self) -> bool:
        """Tell whether the outcome is known."""
        return self._done.done()

    async def result(self) -> PromptResult:
        """Wait for the outcome, reading (and dropping) any events not yet read."""
        async for _ in self.events():
            pass
        return await self._done

    async def events(self) -> AsyncIterator[Event]:
        """Yield this prompt's events until its outcome is known."""
        while not self._done.done():
            event = await self._next()
            if event is None:
                break
            self.observe(event)
            yield event

    async def _next(self) -> Event | None:
        getter: asyncio.Future[Event] = asyncio.ensure_future(self._subscription.get())
        waiting: set[asyncio.Future[Any]] = {getter, self._done}
        await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
        if getter.done():
            return getter.result()
        getter.cancel()
        return self._subscription.get_nowait()

    def observe(self, event: Event) -> None:
        """Record an event's outputs, and finish on a terminal event."""
        match event:
            case Executed():
                self._files.extend(event.files)
            case ExecutionSuccess():
                self.finish(PromptResult(self.prompt_id, Outcome.SUCCESS, tuple(self._files)))
            case ExecutionError():
                failure = PromptFailure(
                    event.node_id, event.node_type, event.exception_type, event.exception_message
                )
                self.finish(
                    PromptResult(self.prompt_id, Outcome.ERROR, tuple(self._files), failure)
                )
            case ExecutionInterrupted():
                self.finish(PromptResult(self.prompt_id, Outcome.INTERRUPTED))

    def finish(self, result: PromptResult) -> None:
        """Settle the outcome once; later calls are ignored."""
        if not self._done.done():
            self._done.set_result(result)
            self._subscription.close()


class ComfyBackend:
    """One ComfyUI server: submit, cancel, and follow prompts over a single WebSocket."""

    def __init__(self, client: ComfyClient, *, backoff: Backoff | None = None) -> None:
        self.client = client
        self.stream = EventStream(client.ws_url, backoff=backoff, on_connect=self._on_connect)
        self._runs: dict[str, PromptRun] = {}

    def __repr__(self) -> str:
        return f"ComfyBackend({str(self.client.base_url)!r}, in_flight={len(self._runs)})"

    @property
    def url(self) -> str:
        """Return the server's base URL."""
        return str(self.client.base_url)

    @property
    def in_flight(self) -> int:
        """Return how many of our prompts have no outcome yet."""
        return len(self._runs)

    async def __aenter__(self) -> Self:
        self.stream.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stream.close()

    def track(self, prompt_id: str) -> PromptRun:
        """Follow a prompt by id: subscribe before submitting, or re-attach after a restart."""
        run = PromptRun(prompt_id, self.stream.subscribe(prompt_id))
        self._runs[prompt_id] = run
        run._done.add_done_callback(lambda _: self._forget(run))
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
        try:
            await self.client.submit(prompt, prompt_id=run.prompt_id)
        except BaseException:
            run.finish(PromptResult(run.prompt_id, Outcome.LOST))
            raise
        run.is_acknowledged = True
        log.info("submitted %s to %s", run.prompt_id, self.url)
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
        if is_reconnect:
            await self.reconcile()

    async def reconcile(self) -> None:
        """Settle every acknowledged prompt that ended, or vanished, while we were away."""
        runs = [run for run in self._runs.values() if run.is_acknowledged and not run.is_done]
        if not runs:
            return
        try:
            queue = await self.client.queue()
            for run in runs:
                if queue.is_running(run.prompt_id) or queue.is_pending(run.prompt_id):
                    continue
                entry = await self.client.history(run.prompt_id)
                run.finish(_result_from_history(run.prompt_id, entry))
        except ComfyError as exc:
            log.warning("reconcile with %s failed: %s", self.url, exc)


def _result_from_history(prompt_id: str, entry: HistoryEntry | None) -> PromptResult:
    if entry is None:
        log.warning("prompt %s is unknown to ComfyUI (restarted?): lost", prompt_id)
        return PromptResult(prompt_id, Outcome.LOST)
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
