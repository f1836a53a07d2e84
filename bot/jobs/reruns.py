"""Earlier jobs asked for again (Reroll, Retry): their request from the queue, else the journal."""

from __future__ import annotations

from dataclasses import replace

from bot.errors import InputsExpired, UnknownJob
from bot.jobs.journal import request_from
from bot.jobs.model import GenerationRequest
from bot.jobs.queue import JobQueue


async def past_request(jobs: JobQueue, job_id: str) -> GenerationRequest:
    """Return what an earlier job asked for, also after a restart (rebuilt from the journal).

    The origin is left out: it says where the old job's reply lives, not the new one's.

    Raises:
        UnknownJob: neither the queue nor the journal knows the job.
        InputsExpired: the journal knows it, but has pruned its input images.
    """
    job = jobs.jobs.get(job_id)
    if job is not None:
        return replace(job.request, origin={})
    if jobs.journal is None:
        raise UnknownJob(job_id)
    store = jobs.journal.store
    entry = await store.get(job_id)
    if entry is None:
        raise UnknownJob(job_id)
    if entry.has_dropped_images:
        hours = jobs.journal.retention.images / 3600
        raise InputsExpired(
            "The input images of this job are no longer kept (the journal keeps them"
            f" {hours:g} hours after a job ends); attach the image again with /generate."
        )
    return replace(request_from(entry, await store.images(job_id)), origin={})
