"""Render job state as chat text and embed data within Discord's limits; no Discord imports."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from bot.errors import user_message
from bot.images import ImageFile, fit_image, output_kind
from bot.jobs.model import GenerationRequest, JobResult
from bot.jobs.progress import JobState, ProgressSnapshot, duration, meter

CONTENT_LIMIT = 2000
FILES_PER_MESSAGE = 10
REQUEST_BYTES = 25 * 1024 * 1024
EMBED_TITLE_LIMIT = 256
FIELD_LIMIT = 1024
PROMPT_PREVIEW = 200
PROMPT_IN_EMBED = 1500
BAR_WIDTH = 10

COLOR_DONE = 0x2ECC71
NO_BACKEND = "No ComfyUI server is available right now; your job will start when one is back."
LOST_LINE = (
    "⚠️ ComfyUI lost this job (it restarted, or its server went away); press Retry to run it again."
)
_MENTION = re.compile(r"@(everyone|here|[!&]?\d+)")


@dataclass(frozen=True, slots=True)
class EmbedField:
    """One name/value pair of an embed."""

    name: str
    value: str
    inline: bool = True


@dataclass(frozen=True, slots=True)
class EmbedData:
    """An embed described without Discord types; the Discord layer turns it into an Embed."""

    title: str
    description: str = ""
    fields: tuple[EmbedField, ...] = ()
    footer: str = ""
    color: int = COLOR_DONE


def truncate(text: str, limit: int) -> str:
    """Return `text` cut to at most `limit` characters, marking the cut with an ellipsis."""
    return text if len(text) <= limit else text[: max(limit - 1, 0)] + "…"


def mention(requester: str) -> str:
    """Return a Discord mention for a numeric user id, else the requester as given."""
    return f"<@{requester}>" if requester.isdigit() else requester


def progress_bar(percent: float, width: int = BAR_WIDTH) -> str:
    """Return a bar like `▰▰▰▱▱▱ 50%`."""
    return f"{meter(percent, width, '▰', '▱')} {int(min(max(percent, 0.0), 100.0))}%"


def quoted(prompt: str, limit: int) -> str:
    """Return the prompt on one line, in quotes, cut to `limit`, with mentions defused."""
    # Mentions inside a prompt would otherwise render (and ping) in our messages.
    flat = " ".join(_MENTION.sub("@\u200b\\1", prompt).split())
    return f"“{truncate(flat, limit)}”"


def headline(request: GenerationRequest, workflow: str) -> str:
    """Return the first line of every job message: what was asked, with which workflow."""
    what = quoted(request.prompt, PROMPT_PREVIEW) if request.prompt.strip() else "Image"
    return f"**{what}** · {workflow} · for {mention(request.requester)}"


def status_line(snapshot: ProgressSnapshot, *, is_backend_available: bool = True) -> str:
    """Return the line saying where a job is: in line, queued, running (with a bar), ended."""
    elapsed = duration(snapshot.elapsed)
    match snapshot.state:
        case JobState.WAITING if not is_backend_available:
            return f"⏳ {NO_BACKEND} · {elapsed}"
        case JobState.WAITING:
            ahead = snapshot.position or 0
            where = "you are next" if ahead == 0 else f"{ahead} ahead of you"
            return f"⏳ Waiting in line: {where} · {elapsed}"
        case JobState.QUEUED:
            ahead = snapshot.position or 0
            where = "starting soon" if ahead == 0 else f"{ahead} ahead in ComfyUI's queue"
            return f"📥 Queued: {where} · {elapsed}"
        case JobState.RUNNING:
            return _running_line(snapshot)
        case _:
            return f"{snapshot.state.value} · {elapsed}"


def _running_line(snapshot: ProgressSnapshot) -> str:
    node = snapshot.node_title or snapshot.node_class or "starting"
    if snapshot.node_class and snapshot.node_class != node:
        node = f"{node} ({snapshot.node_class})"
    parts = [progress_bar(snapshot.percent)]
    if snapshot.steps:
        parts.append(f"step {snapshot.step}/{snapshot.steps}")
    elif snapshot.nodes_total:
        current = min(snapshot.nodes_done + 1, snapshot.nodes_total)
        parts.append(f"node {current}/{snapshot.nodes_total}")
    parts.append(f"{duration(snapshot.elapsed)} elapsed")
    if snapshot.eta is not None:
        parts.append(f"~{duration(snapshot.eta)} left")
    return f"⚙️ Running **{node}**\n`{parts[0]}` · " + " · ".join(parts[1:])


def progress_text(
    request: GenerationRequest,
    workflow: str,
    snapshot: ProgressSnapshot,
    *,
    is_backend_available: bool = True,
) -> str:
    """Return the whole progress message of a job that has not ended."""
    status = status_line(snapshot, is_backend_available=is_backend_available)
    return truncate(f"{headline(request, workflow)}\n{status}", CONTENT_LIMIT)


def final_text(
    request: GenerationRequest,
    workflow: str,
    result: JobResult,
    notes: Sequence[str] = (),
    *,
    node_title: str | None = None,
) -> str:
    """Return the message of an ended job: done (with notes), failed, lost or cancelled."""
    match result.state:
        case JobState.DONE:
            line = f"✅ Done in {duration(result.elapsed)}: {made_of(result.outputs)}."
        case JobState.CANCELLED:
            who = f" by {mention(result.cancelled_by)}" if result.cancelled_by else ""
            line = f"🚫 Cancelled{who}."
        case JobState.LOST:
            line = LOST_LINE
        case _:
            line = failure_line(result, node_title)
    text = "\n".join([headline(request, workflow), line, *(f"-# {note}" for note in notes)])
    return truncate(text, CONTENT_LIMIT)


def unresumable_text(request: GenerationRequest, workflow: str, reason: str) -> str:
    """Return the message of a job the bot could not take up again after a restart."""
    line = f"⚠️ This job could not be resumed after a restart: {truncate(reason, 1500)}"
    return truncate(f"{headline(request, workflow)}\n{line}", CONTENT_LIMIT)


def failure_line(result: JobResult, node_title: str | None = None) -> str:
    """Say why a job failed: the node and ComfyUI's message, or the error as user text."""
    failure = result.failure
    if failure is not None:
        where = f"node {failure.node_id}" if failure.node_id else "the workflow"
        if node_title and node_title != failure.node_type:
            where += f" “{node_title}”"
        if failure.node_type:
            where += f" ({failure.node_type})"
        message = " ".join(failure.message.split()) or failure.exception_type
        return f"❌ Failed in {where}: {truncate(message, 1500)}"
    if result.error is not None:
        return f"❌ {truncate(user_message(result.error), 1500)}"
    return "❌ The job failed."


def result_embed(
    request: GenerationRequest, workflow: str, result: JobResult, seed: int | None
) -> EmbedData:
    """Describe a finished job: prompt, seed, workflow, time and requester (within embed limits)."""
    fields = [EmbedField("Workflow", truncate(workflow, FIELD_LIMIT))]
    if seed is not None:
        fields.append(EmbedField("Seed", str(seed)))
    fields.append(EmbedField("Time", duration(result.elapsed)))
    fields.append(EmbedField("Requested by", mention(request.requester)))
    if request.negative:
        fields.append(EmbedField("Negative", truncate(request.negative, FIELD_LIMIT), False))
    title = truncate(" ".join(request.prompt.split()), EMBED_TITLE_LIMIT) or workflow
    description = truncate(request.prompt, PROMPT_IN_EMBED) if len(request.prompt) > 80 else ""
    return EmbedData(
        title=truncate(title, EMBED_TITLE_LIMIT),
        description=description,
        fields=tuple(fields),
        footer=f"job {result.job_id}",
    )


def made_of(outputs: Sequence[ImageFile]) -> str:
    """Say what a job made: "1 image", "2 videos", "1 animation and 1 image", "no images"."""
    counts = Counter(output_kind(output) for output in outputs)
    if not counts:
        return "no images"
    parts = [f"{count} {kind}{'s' if count != 1 else ''}" for kind, count in counts.items()]
    return parts[0] if len(parts) == 1 else f"{', '.join(parts[:-1])} and {parts[-1]}"


def fit_outputs(outputs: Sequence[ImageFile], max_bytes: int) -> tuple[list[ImageFile], list[str]]:
    """Make every output fit `max_bytes`; return the files that fit and a note per change.

    CPU-bound (Pillow): call it through `asyncio.to_thread`.
    """
    files: list[ImageFile] = []
    notes: list[str] = []
    for output in outputs:
        fitted, note = fit_image(output, max_bytes)
        if len(fitted.data) <= max_bytes:
            files.append(fitted)
        if note:
            notes.append(note)
    return files, notes


def batches(
    files: Sequence[ImageFile],
    *,
    per_message: int = FILES_PER_MESSAGE,
    max_bytes: int = REQUEST_BYTES,
) -> list[list[ImageFile]]:
    """Split files into messages of at most `per_message` files and `max_bytes` in total."""
    groups: list[list[ImageFile]] = []
    size = 0
    for file in files:
        if not groups or len(groups[-1]) >= per_message or size + len(file.data) > max_bytes:
            groups.append([])
            size = 0
        groups[-1].append(file)
        size += len(file.data)
    return groups
