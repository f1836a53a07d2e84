"""Following one job of `comfycord run`: live progress, and a first Ctrl+C that cancels it."""

from __future__ import annotations

import asyncio
import contextlib
import sys

from bot.comfy.backend import CancelResult
from bot.comfy.errors import ComfyError
from bot.errors import user_message
from bot.jobs.model import Job, JobResult
from bot.jobs.queue import JobQueue
from bot.terminal.plan import REQUESTER
from bot.terminal.view import CtrlC, ProgressView

_CANCEL_NOTES = {
    CancelResult.REMOVED: "Interrupted: your prompt was removed from the queue before it started.",
    CancelResult.INTERRUPTED: (
        "Interrupted: ComfyUI was asked to stop your running prompt (other prompts go on)."
    ),
    CancelResult.NOT_FOUND: "Interrupted, but your prompt was no longer in ComfyUI's queue.",
}


async def follow(job: Job, queue: JobQueue, ctrl: CtrlC) -> JobResult:
    """Show the job's progress until it ends; a first Ctrl+C cancels it (and only it)."""
    view = ProgressView(sys.stdout, is_tty=sys.stdout.isatty())
    cancelling: list[asyncio.Task[None]] = []

    def cancel() -> None:
        view.note("Ctrl+C: cancelling your prompt (press Ctrl+C again to quit at once)...")
        cancelling.append(asyncio.create_task(_cancel(job, queue, view)))

    ctrl.on_first = cancel
    ticker = asyncio.create_task(_tick(job, view)) if view.is_tty else None
    try:
        async for snapshot in job.updates():
            view.show(snapshot)
    finally:
        ctrl.on_first = ctrl.default
        if ticker is not None:
            ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await ticker
        for task in cancelling:  # let the note of what the cancel did come out
            await task
        view.close()
    return await job.result()


async def _cancel(job: Job, queue: JobQueue, view: ProgressView) -> None:
    try:
        outcome = await queue.cancel(job.id, by=REQUESTER)
    except ComfyError as exc:
        view.note(f"Could not cancel: {user_message(exc)} Press Ctrl+C again to quit.")
        return
    view.note(_CANCEL_NOTES[outcome])


async def _tick(job: Job, view: ProgressView) -> None:
    """Redraw the bar every half second so the elapsed time moves between events."""
    while True:
        await asyncio.sleep(0.5)
        view.show(job.snapshot)
