"""Iterating on an earlier result: its images again, and the requests Upscale and Vary make.

An earlier job is found in the queue (its images still in memory) or, after a restart, in the
journal, which keeps where ComfyUI saved each output; the image is then fetched again from the
server that made it. Nothing here is sent to ComfyUI as work: buttons submit what it returns.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from bot.comfy.errors import ComfyError
from bot.comfy.events import OutputFile
from bot.errors import BotError
from bot.images import ImageFile
from bot.jobs.model import GenerationRequest
from bot.jobs.progress import JobState
from bot.jobs.queue import JobQueue
from bot.jobs.recorded import request_from
from bot.workflows.batch import copy_graph

log = logging.getLogger(__name__)


class SourceGone(BotError):
    """The image a button works on can no longer be had (pruned, or ComfyUI cleaned it)."""


@dataclass(frozen=True, slots=True)
class PastJob:
    """What iterating needs of an earlier, finished job."""

    job_id: str
    request: GenerationRequest
    state: str
    backend: str | None
    files: tuple[OutputFile, ...]
    graph: Mapping[str, Any] | None = field(default=None, repr=False)
    outputs: tuple[ImageFile, ...] = ()  # the images, while the queue still holds the job
    elapsed: float | None = None

    @property
    def count(self) -> int:
        """Return how many images the job made."""
        return max(len(self.files), len(self.outputs))

    def graph_of(self, index: int | None) -> Mapping[str, Any] | None:
        """Return the graph that ran, or only the copy that made image `index` (0-based)."""
        if self.graph is None or index is None:
            return self.graph
        return copy_graph(self.graph, index)


async def past_job(jobs: JobQueue, job_id: str) -> PastJob:
    """Return an earlier job from the queue, else from the journal.

    Raises:
        SourceGone: the job is not known any more, or did not finish with images.
    """
    job = jobs.find(job_id)
    if job is not None and job.is_done:
        result = await job.result()
        return PastJob(
            job_id=job.id,
            request=replace(job.request, origin={}),
            state=str(result.state),
            backend=job.backend.url if job.backend else None,
            files=result.files,
            graph=job.graph,
            outputs=result.outputs,
            elapsed=result.elapsed,
        )
    entry = await jobs.journal.store.get(job_id) if jobs.journal is not None else None
    if entry is None:
        raise SourceGone(
            "The bot no longer knows this job (it was pruned from the journal), so its"
            " images cannot be reused; use /generate again."
        )
    images = await jobs.journal.store.images(job_id) if jobs.journal is not None else ()
    return PastJob(
        job_id=entry.id,
        request=replace(request_from(entry, images), origin={}),
        state=entry.state,
        backend=entry.backend,
        files=tuple(OutputFile.from_data(f) for f in entry.files),
        graph=entry.graph,
        elapsed=entry.elapsed,
    )


async def source_image(jobs: JobQueue, past: PastJob, index: int) -> ImageFile:
    """Return image `index` (0-based) of a finished job, from memory or its ComfyUI server.

    Raises:
        SourceGone: the job made no such image, or ComfyUI no longer has the file.
    """
    if past.state != str(JobState.DONE) or not 0 <= index < past.count:
        raise SourceGone(f"This job has no image {index + 1}.")
    if index < len(past.outputs):
        return past.outputs[index]
    file = past.files[index]
    made_it = jobs.backend_at(past.backend)
    candidates = [made_it] if made_it is not None else list(jobs.backends)
    for backend in candidates:
        try:
            return ImageFile(file.filename, await backend.client.view(file))
        except ComfyError as exc:
            log.info("image %s of %s not on %s: %s", index + 1, past.job_id, backend.url, exc)
    raise SourceGone(
        f"Image {index + 1} is gone: ComfyUI no longer has {file.filename} (its output folder"
        " was cleaned); use /generate again."
    )


def upscale_request(
    past: PastJob, image: ImageFile, *, requester: str, workflow: str
) -> GenerationRequest:
    """Return the request that upscales one image of `past` with `workflow`."""
    return GenerationRequest(
        requester=requester, workflow=workflow, prompt=past.request.prompt, images=(image,)
    )


def vary_request(
    past: PastJob,
    image: ImageFile,
    *,
    requester: str,
    workflow: str,
    denoise: float,
    prompt: str | None = None,
    negative: str | None = None,
) -> GenerationRequest:
    """Return the img2img request varying one image: same prompt (or the remixed one), new seed.

    It makes as many images as `past` asked for, with `past`'s model and LoRA.
    """
    asked = past.request
    return GenerationRequest(
        requester=requester,
        workflow=workflow,
        prompt=asked.prompt if prompt is None else prompt,
        negative=asked.negative if negative is None else (negative or None),
        denoise=denoise,
        count=asked.count,
        model=asked.model,
        lora=asked.lora,
        lora_strength=asked.lora_strength,
        images=(image,),
    )
