"""Delivery: keep one Discord message per job up to date, from waiting in line to the images.

Every entry point (slash command, mention, context menu, reroll) hands a job and a `Sink` to
`Delivery.follow`; the flow of edits is written once, here.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import mimetypes
from collections.abc import AsyncGenerator, Callable
from dataclasses import replace
from typing import Any

import discord

from bot.config import Settings
from bot.discord import render
from bot.discord.ending import Screen, show_end
from bot.discord.reply import ReplyLocation
from bot.discord.sinks import Sink
from bot.jobs import logcontext
from bot.jobs.journal import Journal
from bot.jobs.model import Job, JobResult
from bot.jobs.progress import ProgressSnapshot

log = logging.getLogger(__name__)

Controls = Callable[[Job, bool], discord.ui.View | None]
"""Build the buttons of a job's message: (job, has_ended) -> view or None."""


Delivered = Callable[[Job, JobResult], None]
"""Told when a job's result has been posted (metrics time the delivery)."""

AVAILABILITY_CHECK = 1.0
"""Seconds between checks, while a job waits, of whether any ComfyUI server is available."""

ENDING_GRACE = 5.0
"""Seconds `close()` waits for ends being shown before it cancels them."""

END_FLUSH_WAIT = 30.0
"""Seconds a job's start or end waits for a refusing journal disk before it is shown anyway."""


def _preview_file(snapshot: ProgressSnapshot) -> discord.File | None:
    preview = snapshot.preview
    if preview is None:
        return None
    extension = mimetypes.guess_extension(preview.content_type) or ".jpg"
    return discord.File(io.BytesIO(preview.data), filename=f"preview{extension}")


def origin(sink: Sink, requester: str) -> dict[str, Any]:
    """Return the journal origin of a reply: where it lives, and who asked.

    Given to `submit` with the request, so that the job's first record already names its
    reply: a crash before the first edit still finds the reply after the restart.
    """
    return sink.where().to_dict() | {"requester_id": requester}


class _Where:
    """Keep the journal told where one job's reply lives, whenever that changes."""

    def __init__(self, journal: Journal | None, job: Job, sink: Sink) -> None:
        self._journal = journal
        self._job = job
        self._sink = sink
        self._recorded: ReplyLocation | None = None

    async def note(self) -> None:
        """Record the sink's place if it changed, and wait until it is on disk."""
        if self._journal is None:
            return
        where = self._sink.where()
        if where == self._recorded:
            return
        self._recorded = where
        self._journal.origin(self._job, origin(self._sink, self._job.request.requester))
        # The job (and where its reply is) on disk before the reply shows it: a kill then
        # cannot leave a reply showing a job the next start does not know.
        await self._journal.flush(max_wait=END_FLUSH_WAIT)


class Delivery:
    """Follow jobs and keep their messages current; owns one task per followed job."""

    def __init__(
        self,
        settings: Settings,
        controls: Controls,
        *,
        journal: Journal | None = None,
        is_available: Callable[[], bool] | None = None,
        screen: Screen | None = None,
        on_delivered: Delivered | None = None,
    ) -> None:
        self.interval = settings.progress_interval
        self.screen = screen
        self.show_previews = settings.show_previews
        self._controls = controls
        self._journal = journal
        self._is_available = is_available or (lambda: True)
        self._on_delivered = on_delivered
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._ending: set[str] = set()  # jobs whose end is being shown

    def __repr__(self) -> str:
        return f"Delivery(following={len(self._tasks)})"

    def is_following(self, job_id: str) -> bool:
        """Tell whether a message of this job is being kept up to date."""
        return job_id in self._tasks

    def follow(self, job: Job, sink: Sink) -> asyncio.Task[None]:
        """Start keeping `sink` up to date with `job` until it ends and its images are posted.

        Raises:
            ValueError: the job already has a message kept up to date (one reply per job).
        """
        if job.id in self._tasks:
            raise ValueError(f"{job.id} is already being delivered")
        task = asyncio.create_task(self._follow(job, sink), name=f"deliver {job.id}")
        self._tasks[job.id] = task
        task.add_done_callback(lambda done: self._task_done(job.id, done))
        return task

    def _task_done(self, job_id: str, task: asyncio.Task[None]) -> None:
        if self._tasks.get(job_id) is task:
            del self._tasks[job_id]
            self._ending.discard(job_id)
        if not task.cancelled() and (exc := task.exception()) is not None:
            log.error("delivery of %s failed", job_id, exc_info=exc)

    async def close(self) -> None:
        """Stop following every job (the jobs themselves go on).

        A job whose end is being shown gets a moment to finish (and to be marked shown):
        cut off, the next start would show it again.
        """
        ending = [self._tasks[i] for i in self._ending if i in self._tasks]
        if ending:
            await asyncio.wait(ending, timeout=ENDING_GRACE)
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _follow(self, job: Job, sink: Sink) -> None:
        logcontext.bind(job_id=job.id, prompt_id=job.id, guild_id=sink.where().guild_id)
        where = _Where(self._journal, job, sink)
        # On disk before the first edit: a restart from then on finds this reply again.
        await where.note()
        await self._show_progress(job, sink, where)
        result = await job.result()
        self._ending.add(job.id)
        if self._journal is not None:
            # The end on disk before the member sees it: a crash in between must not bring
            # back (and run) a job its reply already showed cancelled.
            await self._journal.flush(max_wait=END_FLUSH_WAIT)
        await show_end(job, sink, result, screen=self.screen, view=self._controls(job, True))
        if self._journal is not None:
            self._journal.delivered(job)  # at once: no await between the edit and this record
        if self._on_delivered is not None:
            self._on_delivered(job, result)
        await where.note()

    async def _show_progress(self, job: Job, sink: Sink, where: _Where) -> None:
        """Edit at most once per interval; after a wait, show the newest snapshot."""
        loop = asyncio.get_running_loop()
        next_edit = 0.0
        shown: tuple[ProgressSnapshot, bool] | None = None
        async with contextlib.aclosing(_updates(job, AVAILABILITY_CHECK)) as updates:
            async for update in updates:
                snapshot = update
                if (wait := next_edit - loop.time()) > 0 and not snapshot.state.is_final:
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(wait):
                            await job.result()
                    snapshot = job.snapshot
                if snapshot.state.is_final:
                    return
                available = self._is_available()
                if shown is None or shown[1] != available or not _same(shown[0], snapshot):
                    before = shown[0] if shown else None
                    await self._edit_progress(job, sink, snapshot, before, available)
                    await where.note()
                    shown = (snapshot, available)
                    next_edit = loop.time() + self.interval

    async def _edit_progress(
        self,
        job: Job,
        sink: Sink,
        snapshot: ProgressSnapshot,
        shown: ProgressSnapshot | None,
        is_available: bool,
    ) -> None:
        preview = None
        if self.show_previews and snapshot.preview is not (shown.preview if shown else None):
            preview = _preview_file(snapshot)
        text = render.progress_text(
            job.request,
            job.workflow.display_name,
            snapshot,
            is_backend_available=is_available,
        )
        try:
            await sink.edit(
                content=text,
                files=None if preview is None else [preview],
                view=self._controls(job, False),
            )
        except discord.HTTPException as exc:
            log.warning("progress edit of %s failed: %s", job.id, exc)


async def _updates(job: Job, period: float) -> AsyncGenerator[ProgressSnapshot, None]:
    """Yield the job's snapshots as they change, and the current one every `period` seconds."""
    async with contextlib.aclosing(job.updates()) as updates:
        pending: asyncio.Future[ProgressSnapshot] | None = None
        try:
            while True:
                if pending is None:
                    pending = asyncio.ensure_future(anext(updates))
                done, _ = await asyncio.wait({pending}, timeout=period)
                if not done:
                    yield job.snapshot
                    continue
                snapshot = pending.result()
                pending = None
                yield snapshot
                if snapshot.state.is_final:
                    return
        finally:
            if pending is not None:
                pending.cancel()
                with contextlib.suppress(asyncio.CancelledError, StopAsyncIteration):
                    await pending


def _same(shown: ProgressSnapshot, snapshot: ProgressSnapshot) -> bool:
    """Tell whether nothing but the clock changed."""
    return replace(shown, elapsed=0.0) == replace(snapshot, elapsed=0.0)
