"""One job's trip through one backend: upload, submit, follow to the outcome, download."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from bot.comfy.backend import ComfyBackend, Outcome, PromptResult, PromptRun
from bot.comfy.events import OutputFile
from bot.images import ImageFile
from bot.jobs.journal import Journal
from bot.jobs.model import OUTCOME_STATE, Job, JobResult
from bot.jobs.progress import JobState
from bot.workflows.batch import in_copy_order


async def send(job: Job, backend: ComfyBackend, journal: Journal | None) -> PromptRun | None:
    """Upload the inputs and queue the prompt; None when it was cancelled meanwhile."""
    try:
        names = [
            (await backend.client.upload_image(image.data, image.filename)).reference
            for image in job.request.images
        ]
        job.use_images(names)
        if job.cancelled_by is not None:
            return None
        if journal is not None:
            # The prompt_id is on disk before ComfyUI can know it: a crash leaves nothing unknown.
            job.submitting(backend)
            await journal.flush()
        run = await backend.submit(dict(job.graph), prompt_id=job.id)
        job.record(JobState.QUEUED)
    finally:
        # However sending ended (a failed upload too), a cancel waiting for it goes on.
        job.mark_sent()
    return run


async def follow(job: Job, backend: ComfyBackend, run: PromptRun) -> JobResult | None:
    """Follow a queued prompt to its result; None when ComfyUI never started it."""
    async for event in run.events():
        job.apply(event)
    outcome = await run.result()
    if outcome.outcome is Outcome.LOST and not outcome.was_started:
        return None
    return await collect(job, backend, outcome)


async def collect(job: Job, backend: ComfyBackend, outcome: PromptResult) -> JobResult:
    """Turn a prompt's outcome into the job's result, downloading its outputs at once."""
    state = OUTCOME_STATE[outcome.outcome]
    if outcome.outcome is not Outcome.SUCCESS:
        return JobResult(job.id, state, failure=outcome.failure, cancelled_by=job.cancelled_by)
    files = in_copy_order(downloadable(outcome.files), lambda file: file.filename)
    data = await asyncio.gather(*(backend.client.view(f) for f in files))
    outputs = tuple(ImageFile(f.filename, d) for f, d in zip(files, data, strict=True))
    return JobResult(job.id, state, outputs=outputs, files=tuple(files))


def failed(job: Job, exc: Exception) -> JobResult:
    """Return the result of a job that failed outside ComfyUI's execution."""
    return JobResult(job.id, JobState.FAILED, error=exc, cancelled_by=job.cancelled_by)


def downloadable(files: Sequence[OutputFile]) -> list[OutputFile]:
    """Return the saved outputs (type "output"), or every file when nothing was saved."""
    saved = [f for f in files if f.type == "output"]
    return saved or list(files)
