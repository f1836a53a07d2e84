"""PromptRun: one prompt's events up to its outcome, and the value types describing that outcome."""

from __future__ import annotations

import asyncio
import enum
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

from bot.comfy.events import (
    Event,
    Executed,
    Executing,
    ExecutionError,
    ExecutionInterrupted,
    ExecutionStart,
    ExecutionSuccess,
    OutputFile,
)
from bot.comfy.subscription import Subscription


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
    was_started: bool = True

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
        self.is_started = False

    def __repr__(self) -> str:
        return f"PromptRun({self.prompt_id!r}, done={self._done.done()})"

    @property
    def is_done(self) -> bool:
        """Tell whether the outcome is known."""
        return self._done.done()

    def on_done(self, callback: Callable[[PromptRun], None]) -> None:
        """Call `callback(run)` once the outcome is known (or the run was aborted)."""
        self._done.add_done_callback(lambda _: callback(self))

    async def result(self) -> PromptResult:
        """Wait for the outcome, reading (and dropping) any events not yet read."""
        async for _ in self.events():
            pass
        return await self._done

    async def events(self) -> AsyncIterator[Event]:
        """Yield this prompt's events until its outcome is known."""
        subscription = self._subscription
        while not self._done.done():
            # A backlog is read without a loop turn per event: whoever follows this run's
            # consumer sees the latest state of a burst. finish() wakes receive() by closing.
            event = subscription.get_nowait()
            if event is None and (event := await subscription.receive()) is None:
                break
            self.observe(event)
            yield event

    def observe(self, event: Event) -> None:
        """Record an event's outputs, and finish on a terminal event."""
        match event:
            case ExecutionStart() | Executing():
                self.is_started = True
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

    def abort(self, error: BaseException) -> None:
        """End a run whose outcome can no longer be learned here; `result()` raises `error`."""
        if not self._done.done():
            self._done.set_exception(error)
            self._done.exception()  # retrieved here: nobody may be waiting for it
            self._subscription.close()

    def lose(self) -> None:
        """Settle the run as lost, remembering whether ComfyUI had started it."""
        self.finish(PromptResult(self.prompt_id, Outcome.LOST, was_started=self.is_started))
