"""Recovery: after a restart, every job the journal says had not ended is taken up again."""

from __future__ import annotations

import logging

from bot.errors import BotError
from bot.jobs.journal import Journal, request_from
from bot.jobs.model import Job
from bot.jobs.queue import JobQueue
from bot.jobs.store import StoredState

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
