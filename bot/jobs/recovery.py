"""Recovery: after a restart, every job the journal says had not ended is taken up again."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from bot.comfy.events import OutputFile
from bot.errors import BotError
from bot.images import ImageFile
from bot.jobs.journal import Journal
from bot.jobs.model import Job, JobResult
from bot.jobs.progress import JobState
from bot.jobs.queue import JobQueue
from bot.jobs.recorded import request_from
from bot.jobs.store import JournalEntry, StoredState

log = logging.getLogger(__name__)


async def recover(queue: JobQueue, journal: Journal) -> list[Job]:
    """Restore unfinished jobs into the queue and settle those that ended meanwhile.

    Jobs ComfyUI finished while we were down get their result (from /history); those still
    queued or running are followed again (same client_id, so the events keep coming); those
    ComfyUI no longer knows and never started are queued again; the rest are reported lost.
    Returns the restored jobs so the front doors can reattach their replies.
    """
    restored: list[Job] = []
    for server in queue.backends:
        if server.info is None:
            await server.check()  # the id a restored prompt is known by depends on the server
    for entry in await journal.unfinished():
        if queue.find(entry.id) is not None:
            continue  # already followed by this queue (recover called again in one process)
        try:
            request = request_from(entry, await journal.images(entry.id))
            job = queue.rebuild(request, entry.id)
        except BotError as exc:
            log.warning("cannot restore %s: %s", entry.id, exc.user_message)
            journal.lost(entry.id, exc.user_message)
            continue
        backend = queue.backend_at(entry.backend)
        if not entry.state.may_be_in_comfy:
            queue.adopt(job, None, None)
        elif backend is None:
            queue.adopt_lost(job)
        else:
            run = backend.track(job.id)
            run.is_acknowledged = True
            # A prompt that had started is lost if it vanishes; one that had not is sent again.
            run.is_started = entry.state is StoredState.RUNNING
            queue.adopt(job, backend, run)
        restored.append(job)
        log.info("restored %s (%s) from the journal", job.id, entry.state)
    for backend in queue.backends:
        await backend.reconcile()
        await queue.refresh_positions(backend)
    await journal.flush()
    return restored


async def redeliver(
    queue: JobQueue, journal: Journal, entries: Sequence[JournalEntry]
) -> list[Job]:
    """Bring back jobs that ended but were never shown ended, so their end can be shown.

    Each ends again as the journal says, without ComfyUI: a done one with the outputs the
    journal kept for it. A done one without them (a journal from before the outbox) is
    followed again on its server, whose /history may still hold its outputs (lost if the
    server forgot it). Returns the jobs, ended or about to end.
    """
    jobs: list[Job] = []
    for entry in entries:
        if queue.find(entry.id) is not None:
            continue
        try:
            job = queue.rebuild(request_from(entry, await journal.images(entry.id)), entry.id)
        except BotError as exc:
            log.warning("cannot show the end of %s: %s", entry.id, exc.user_message)
            continue
        backend = queue.backend_at(entry.backend)
        outputs = await journal.outputs(entry.id) if entry.state is StoredState.DONE else ()
        if entry.state is StoredState.DONE and not outputs and backend is not None:
            run = backend.track(job.id)
            run.is_acknowledged = run.is_started = True
            queue.adopt(job, backend, run)
        elif entry.state is StoredState.DONE and not outputs:
            queue.adopt_lost(job)  # done, but its server is gone from the settings
        else:
            queue.adopt_ended(job, ended_result(entry, outputs))
        jobs.append(job)
        log.info("showing the end of %s (%s) again", job.id, entry.state)
    return jobs


def ended_result(entry: JournalEntry, outputs: tuple[ImageFile, ...]) -> JobResult:
    """Return the result a journal entry recorded for an ended job, with its kept outputs."""
    files = tuple(OutputFile.from_data(file) for file in entry.files) if outputs else ()
    return JobResult(
        entry.id,
        JobState(entry.state.value),
        outputs=outputs,
        files=files if len(files) == len(outputs) else (),
        error=BotError(entry.error) if entry.error else None,
        elapsed=entry.elapsed or 0.0,
    )
