"""One job's trip through one backend: upload, submit, follow to the outcome, download."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from bot.comfy.backend import ComfyBackend, Outcome, PromptResult, PromptRun
from bot.comfy.errors import ComfyHTTPError, ComfyUnavailable, ProtocolError
from bot.comfy.events import OutputFile
from bot.images import ImageFile
from bot.jobs import uploads
from bot.jobs.journal import Journal
from bot.jobs.model import OUTCOME_STATE, Job, JobResult
from bot.jobs.progress import JobState
from bot.workflows.batch import in_copy_order

log = logging.getLogger(__name__)

DOWNLOAD_ATTEMPTS = 6
DOWNLOAD_BACKOFF = 0.5  # seconds before the second attempt, doubled each time (15.5 s in all)


async def send(job: Job, backend: ComfyBackend, journal: Journal | None) -> PromptRun | None:
    """Upload the inputs and queue the prompt; None when it was cancelled meanwhile.

    Raises:
        OverUploadLimit: an input is over the server's upload limit (nothing was sent).
        JournalUnavailable: the journal could not record the job (nothing was sent).
    """
    try:
        if (too_large := uploads.refusal(job.request.images, backend)) is not None:
            raise too_large
        names = [
            (await backend.client.upload_image(image.data, image.filename)).reference
            for image in job.request.images
        ]
        job.use_images(names)
        if job.cancelled_by is not None:
            return None
        if journal is not None:
            # The job and its prompt_id are on disk before ComfyUI can know them: a crash
            # leaves nothing unknown, and nothing the next start would run twice.
            job.submitting(backend)
            await journal.hold()
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
    data = await asyncio.gather(*(download(backend, f) for f in files))
    outputs = tuple(ImageFile(f.filename, d) for f, d in zip(files, data, strict=True))
    return JobResult(job.id, state, outputs=outputs, files=tuple(files))


async def download(backend: ComfyBackend, file: OutputFile) -> bytes:
    """Download one output, trying again for a while when ComfyUI cannot answer properly.

    The file is on ComfyUI's disk once the prompt succeeded: a server restarting or a proxy
    answering nonsense for a few seconds must not turn a made image into a failed job.

    Raises:
        ComfyError: ComfyUI still could not hand the file over after the last attempt.
    """
    for attempt in range(DOWNLOAD_ATTEMPTS - 1):
        try:
            return await backend.client.view(file)
        except ComfyHTTPError as exc:
            if exc.status < 500:  # 404: the file is gone; asking again will not bring it back
                raise
            log.warning("download of %s from %s failed: %s", file.filename, backend.url, exc)
        except (ComfyUnavailable, ProtocolError) as exc:
            log.warning("download of %s from %s failed: %s", file.filename, backend.url, exc)
        await asyncio.sleep(DOWNLOAD_BACKOFF * 2**attempt)
    return await backend.client.view(file)


def failed(job: Job, exc: Exception) -> JobResult:
    """Return the result of a job that failed outside ComfyUI's execution."""
    return JobResult(job.id, JobState.FAILED, error=exc, cancelled_by=job.cancelled_by)


def downloadable(files: Sequence[OutputFile]) -> list[OutputFile]:
    """Return the saved outputs (type "output"), or every file when nothing was saved."""
    saved = [f for f in files if f.type == "output"]
    return saved or list(files)
