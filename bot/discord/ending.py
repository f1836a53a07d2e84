"""A job's end in its Discord message: text, embed, images fitted and screened, buttons."""

from __future__ import annotations

import asyncio
import io
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

import discord

from bot.discord import render
from bot.discord.grid import grid_of, is_grid
from bot.discord.persist import END_ATTEMPTS, persist
from bot.discord.reply import ReplyLocation
from bot.discord.sinks import Sink
from bot.images import ImageFile
from bot.jobs.model import Job, JobResult
from bot.jobs.progress import JobState
from bot.workflows.graph import title_of

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Screening:
    """How a job's images may be posted: as they are, as spoilers, or withheld (with why)."""

    spoiler: bool = False
    withheld: str | None = None


Screen = Callable[[Job, Sequence[ImageFile], ReplyLocation], Awaitable[Screening]]
"""Check a job's images before they are posted where the reply is: (job, images, where)."""


def to_file(image: ImageFile, *, spoiler: bool = False) -> discord.File:
    """Wrap an image as a Discord upload (hidden behind a spoiler if asked)."""
    return discord.File(io.BytesIO(image.data), filename=image.filename, spoiler=spoiler)


def to_embed(data: render.EmbedData) -> discord.Embed:
    """Turn rendered embed data into a Discord embed."""
    embed = discord.Embed(title=data.title, description=data.description or None, color=data.color)
    for field in data.fields:
        embed.add_field(name=field.name, value=field.value, inline=field.inline)
    if data.footer:
        embed.set_footer(text=data.footer)
    return embed


async def show_end(
    job: Job,
    sink: Sink,
    result: JobResult,
    *,
    screen: Screen | None,
    view: discord.ui.View | None,
) -> None:
    """Edit the job's end into its message, then post the images that did not fit in it.

    Raises:
        discord.HTTPException: Discord refused the end even without images.
    """
    workflow = job.workflow.display_name
    screening = Screening()
    if result.state is JobState.DONE and result.outputs and screen is not None:
        screening = await screen(job, result.outputs, sink.where())
    groups, notes = await _fitted(job, sink, result, screening)
    node_id = result.failure.node_id if result.failure is not None else None
    title = title_of(job.graph, node_id) if node_id is not None else None
    content = render.final_text(job.request, workflow, result, notes, node_title=title)
    embed = None
    if result.state is JobState.DONE:
        embed = to_embed(render.result_embed(job.request, workflow, result, job.seed))
    spoiler = screening.spoiler
    # A screened result keeps no buttons: U<n> and the like would post its image unscreened.
    view = view if screening == Screening() else None
    first = groups[0] if groups else []
    error = await _edit_end(
        job, sink, content=content, embed=embed, images=first, view=view, spoiler=spoiler
    )
    if error is not None:
        log.warning("result edit of %s failed: %s", job.id, error)
        failed = f"{content}\n-# The images could not be posted ({error.status})."
        text = render.truncate(failed, render.CONTENT_LIMIT)
        # The buttons stay: Reroll, and Retry for a lost job, still work without images.
        if error := await _edit_end(job, sink, content=text, images=[], view=view):
            raise error
        return
    for number, group in enumerate(groups[1:], start=2):
        uploads = [to_file(image, spoiler=spoiler) for image in group]
        await sink.send(content=f"-# {number}/{len(groups)}", files=uploads)
    log.info("delivered %s (%s, %d files)", job.id, result.state, len(result.outputs))


async def _fitted(
    job: Job, sink: Sink, result: JobResult, screening: Screening
) -> tuple[list[list[ImageFile]], list[str]]:
    """Return the images to post, in messages' worth, and notes on what could not be."""
    if screening.withheld:
        return [], [f"🚫 {screening.withheld}"]
    if result.state is not JobState.DONE or not result.outputs:
        return [], []
    outputs = result.outputs
    if is_grid(job.request.count, len(outputs)):
        outputs = await asyncio.to_thread(grid_of, outputs)
    files, notes = await asyncio.to_thread(render.fit_outputs, outputs, sink.filesize_limit)
    return render.batches(files), notes


async def _edit_end(
    job: Job,
    sink: Sink,
    *,
    content: str,
    images: list[ImageFile],
    embed: discord.Embed | None = None,
    view: discord.ui.View | None = None,
    spoiler: bool = False,
) -> discord.HTTPException | None:
    """Edit in a job's end, trying again while Discord is overloaded; return a lasting error.

    A result dropped to a 429 storm would leave the member looking at progress forever.
    """

    async def edit() -> None:
        files = [to_file(image, spoiler=spoiler) for image in images]  # fresh each try
        await sink.edit(content=content, embed=embed, files=files, view=view)

    try:
        await persist(edit, f"final edit of {job.id}", attempts=END_ATTEMPTS)
    except discord.HTTPException as exc:
        return exc
    return None
