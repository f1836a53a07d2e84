"""Recovery: after a restart, every job the journal says had not ended is taken up again."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from bot.errors import BotError
from bot.images import ImageFile
from bot.jobs.journal import Journal, request_from
from bot.jobs.model import Job, JobResult
from bot.jobs.progress import JobState
from bot.jobs.queue import JobQueue
from bot.jobs.store import JournalEntry

log = logging.getLogger(__name__)

# States in which ComfyUI may know the prompt (it was written before the prompt was sent).
_SENT = frozenset({"submitting", "queued", "running"})


async def recover(queue: JobQueue, journal: Journal) -> list[Job]:
    """Restore unfinished jobs into the queue and settle those that ended meanwhile.

    Jobs ComfyUI finished while we were down get their result (from /history); those still
    queued or running are followed again (same client_id, so the events keep coming); those
    ComfyUI no longer knows and never started are queued again; the rest are reported lost.
    Returns the restored jobs so the front doors can reattach their replies.
    """
    restored: list[Job] = []
    for entry in await journal.unfinished():
        if entry.id in queue.jobs:
            continue  # already followed by this queue (recover called again in one process)
        images = await journal.store.images(entry.id)
        try:
            job = _rebuild(queue, entry, images)
        except BotError as exc:
            log.warning("cannot restore %s: %s", entry.id, exc.user_message)
            await journal.store.update(entry.id, state=str(JobState.LOST), error=exc.user_message)
            continue
        backend = next((b for b in queue.backends if b.url == entry.backend), None)
        if entry.state in _SENT and backend is None:
            queue.jobs[job.id] = job
            result = JobResult(job.id, JobState.LOST)
            job.finish(result)
            journal.finished(job, result)
        elif entry.state in _SENT and backend is not None:
            run = backend.track(job.id)
            run.is_acknowledged = True
            run.is_started = entry.state == "running"  # lost if it vanishes; else sent again
            queue.adopt(job, backend, run)
        else:
            queue.adopt(job, None, None)
        restored.append(job)
        log.info("restored %s (%s) from the journal", job.id, entry.state)
    for backend in queue.backends:
        await backend.reconcile()
        await queue.refresh_positions(backend)
    return restored


async def redeliver(
    queue: JobQueue, journal: Journal, entries: Sequence[JournalEntry]
) -> list[Job]:
    """Bring back jobs that ended but were never shown ended, so their end can be shown.

    A job that was done is followed again on its server, whose /history still holds its
    outputs (lost if the server forgot it); one that failed, was cancelled or lost ends again
    as the journal says, without ComfyUI. Returns the jobs, ended or about to end.
    """
    jobs: list[Job] = []
    for entry in entries:
        if entry.id in queue.jobs:
            continue
        try:
            job = _rebuild(queue, entry, await journal.store.images(entry.id))
        except BotError as exc:
            log.warning("cannot show the end of %s: %s", entry.id, exc.user_message)
            continue
        backend = next((b for b in queue.backends if b.url == entry.backend), None)
        if entry.state == JobState.DONE and backend is not None:
            run = backend.track(job.id)
            run.is_acknowledged = run.is_started = True
            queue.adopt(job, backend, run)
        else:
            error = BotError(entry.error) if entry.error else None
            queue.jobs[job.id] = job
            job.finish(JobResult(job.id, _ended_state(entry), error=error))
        jobs.append(job)
        log.info("showing the end of %s (%s) again", job.id, entry.state)
    return jobs


def _ended_state(entry: JournalEntry) -> JobState:
    state = JobState(entry.state)
    return JobState.LOST if state is JobState.DONE else state  # done, but its server is gone


def _rebuild(queue: JobQueue, entry: JournalEntry, images: tuple[ImageFile, ...]) -> Job:
    request = request_from(entry, images)
    workflow = queue.workflows.resolve(request.workflow)
    return Job(request, workflow, request.graph_for(workflow), job_id=entry.id)
