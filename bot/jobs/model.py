"""GenerationRequest, Job and JobResult: a request on its way through the queue; no Discord."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncGenerator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from bot.comfy.backend import ComfyBackend, Outcome, PromptFailure
from bot.comfy.events import Event, OutputFile
from bot.comfy.ids import new_prompt_id
from bot.images import ImageFile
from bot.jobs import options
from bot.jobs.progress import JobState, ProgressSnapshot, ProgressTracker
from bot.jobs.store import StoredState
from bot.workflows.library import Workflow

MAX_SEED = 2**32 - 1  # random seeds are drawn below this (any seed a user gives may be larger)
REQUEST_VALUES = ("prompt", "negative", "seed", "steps", "width", "height", "denoise")
"""The workflow keys a GenerationRequest carries as fields; any other input goes in overrides."""
REQUEST_CHOICES = ("count", "aspect", "model", "lora", "lora_strength")
"""The fields that shape the graph rather than fill one input (`bot.jobs.options`)."""


@dataclass(frozen=True, slots=True)
class GenerationRequest:
    """What somebody asked for, independent of the door they came through."""

    requester: str
    workflow: str
    prompt: str = ""
    negative: str | None = None
    seed: int | None = None
    steps: int | None = None
    width: int | None = None
    height: int | None = None
    denoise: float | None = None
    count: int | None = None  # images in one job: the batch size, else copies of the graph
    aspect: str | None = None  # one of bot.jobs.aspect.ASPECTS; explicit width/height win
    model: str | None = None
    lora: str | None = None
    lora_strength: float | None = None
    images: tuple[ImageFile, ...] = ()
    overrides: Mapping[tuple[str, str], Any] = field(default_factory=dict)
    priority: int = 0  # granted by the front door (a role's priority); higher goes first
    guild_id: int | None = None  # the Discord server asked from; None elsewhere (and in DMs)
    # Where the reply goes, as the front door wrote it (JSON-safe); the core only stores it.
    # A Discord one (bot.discord.reply.ReplyLocation) may hold an interaction token.
    origin: Mapping[str, Any] = field(default_factory=dict, repr=False)

    def seeded(self, workflow: Workflow) -> GenerationRequest:
        """Return this request with a random seed drawn when the workflow has one and none is set.

        The seed is drawn here, not by ComfyUI, so that it can be shown and a Reroll or a
        restart runs with a known value.
        """
        if self.seed is not None or not workflow.has("seed"):
            return self
        return replace(self, seed=secrets.randbelow(MAX_SEED))

    def values(self) -> dict[str, Any]:
        """Return the patch values this request sets."""
        fields = {key: getattr(self, key) for key in REQUEST_VALUES}
        return {key: value for key, value in fields.items() if value is not None}

    def choices(self) -> dict[str, Any]:
        """Return the graph-shaping choices this request makes (count, aspect, model, LoRA)."""
        fields = {key: getattr(self, key) for key in REQUEST_CHOICES}
        return {key: value for key, value in fields.items() if value is not None}

    def graph_for(
        self, workflow: Workflow, image_names: Sequence[str] | None = None
    ) -> dict[str, Any]:
        """Return `workflow` patched with this request; placeholder image names until uploaded.

        Raises:
            WorkflowInputError: a value does not fit the workflow.
        """
        if image_names is None:
            image_names = [f"pending_{i}.png" for i in range(len(self.images))]
        count = self.count or 1
        values = options.sized_values(workflow, self.values(), self.aspect)
        if count > 1 and workflow.has("batch_size"):
            values["batch_size"] = count
        graph = workflow.with_inputs(values, images=image_names, overrides=self.overrides)
        return options.shaped(
            workflow,
            graph,
            count=count,
            seed=self.seed,
            model=self.model,
            lora=self.lora,
            lora_strength=self.lora_strength,
        )


@dataclass(frozen=True, slots=True)
class JobResult:
    """How a job ended and what it made."""

    job_id: str
    state: JobState
    outputs: tuple[ImageFile, ...] = ()
    files: tuple[OutputFile, ...] = ()  # where ComfyUI keeps each output, in `outputs` order
    failure: PromptFailure | None = None
    error: Exception | None = None
    cancelled_by: str | None = None
    elapsed: float = 0.0
    # The job's bytes were dropped once it had ended a while: `outputs` is empty from then on.
    is_released: bool = False


class JobLog(Protocol):
    """Where a job's changes are recorded (the Journal); a Job tells it of each one."""

    def state(self, job: Job, state: StoredState, *, backend: str | None = None) -> None:
        """Record a change of state (and the backend the job went to)."""

    def finished(self, job: Job, result: JobResult) -> None:
        """Record how a job ended."""


class Job:
    """One request on its way through the queue; publishes snapshots, ends with a JobResult.

    Its state changes only through its own methods, each of which updates the snapshot, wakes
    the followers and tells the journal in one place.
    """

    def __init__(
        self,
        request: GenerationRequest,
        workflow: Workflow,
        graph: dict[str, Any],
        *,
        job_id: str | None = None,
        journal: JobLog | None = None,
    ) -> None:
        # The job id is the prompt id too: a canonical UUID, as ComfyUI 0.38 requires.
        self.id = job_id or new_prompt_id()
        self.request = request
        self.workflow = workflow
        self._graph = graph
        self._backend: ComfyBackend | None = None
        self._journal = journal
        self._tracker = ProgressTracker(graph)
        self.cancelled_by: str | None = None
        # How many input images `release` dropped: a Reroll then takes them from the journal.
        self.released_inputs = 0
        # A counter beside the event: a follower busy with one snapshot still sees that more
        # came meanwhile, and takes only the newest (a slow Discord edit never queues up old ones).
        self._version = 0
        self._changed = asyncio.Event()
        # Set once a dispatched job's prompt is in ComfyUI's queue (or will never be).
        self._sent = asyncio.Event()
        self._result: asyncio.Future[JobResult] = asyncio.get_running_loop().create_future()

    def __repr__(self) -> str:
        return f"Job({self.id!r}, {self.request.requester!r}, {self.state})"

    @property
    def seed(self) -> int | None:
        """Return the seed this job runs with."""
        return self.request.seed

    @property
    def graph(self) -> Mapping[str, Any]:
        """Return the graph as patched (with the uploaded image names once they are known)."""
        return self._graph

    @property
    def backend(self) -> ComfyBackend | None:
        """Return the backend the job was given to, if any."""
        return self._backend

    @property
    def state(self) -> JobState:
        """Return the job's current state."""
        return self._tracker.snapshot.state

    @property
    def snapshot(self) -> ProgressSnapshot:
        """Return the latest progress snapshot."""
        return self._tracker.tick()

    def publish(self) -> None:
        """Wake everyone who follows this job's updates."""
        self._version += 1
        self._changed.set()

    def dispatch(self, backend: ComfyBackend) -> None:
        """Hand the job to a backend; it stays WAITING until its prompt is queued there."""
        self._backend = backend

    def resume(self, backend: ComfyBackend) -> None:
        """Take up a restored job whose prompt ComfyUI holds: follow it on `backend`."""
        self._backend = backend
        self._tracker.update(state=JobState.QUEUED)

    def requeue(self) -> None:
        """Take the job back from a backend that never started it; it waits again."""
        self._backend = None
        self._sent = asyncio.Event()  # a fresh trip: the next dispatch sends it again
        self.record(JobState.WAITING)

    def use_images(self, names: Sequence[str]) -> None:
        """Patch the uploaded images' names into the graph."""
        self._graph = self.request.graph_for(self.workflow, names)

    def submitting(self, backend: ComfyBackend) -> None:
        """Note that the prompt is about to be sent to `backend` (journalled, not shown)."""
        if self._journal is not None:
            self._journal.state(self, StoredState.SUBMITTING, backend=backend.url)

    def mark_sent(self) -> None:
        """Tell whoever waits that the prompt is in ComfyUI's queue (or will never be)."""
        self._sent.set()

    async def wait_sent(self) -> None:
        """Wait until the dispatched prompt is in ComfyUI's queue (or will never be)."""
        await self._sent.wait()

    def record(self, state: JobState, **changes: Any) -> None:
        """Set the state (and other snapshot fields), tell the followers and the journal."""
        self._tracker.update(state=state, **changes)
        self.publish()
        if self._journal is not None:
            self._journal.state(self, StoredState.of(state))

    def apply(self, event: Event) -> None:
        """Fold a ComfyUI event in; the start of running is journalled."""
        was_running = self.state is JobState.RUNNING
        if self._tracker.apply(event):
            self.publish()
            if not was_running and self.state is JobState.RUNNING and self._journal is not None:
                self._journal.state(self, StoredState.RUNNING)

    def move_to(self, position: int) -> None:
        """Show a new place in line (ours or ComfyUI's), if it changed."""
        if self._tracker.snapshot.position != position:
            self._tracker.update(position=position)
            self.publish()

    def cancel_by(self, who: str) -> None:
        """Note who asked for the cancel; the job ends cancelled where it stands."""
        self.cancelled_by = who

    async def updates(self) -> AsyncGenerator[ProgressSnapshot, None]:
        """Yield snapshots as they change (the latest wins), ending with the final one."""
        seen = -1
        while True:
            if self._version != seen:
                seen = self._version
                snapshot = self.snapshot
                yield snapshot
                if snapshot.state.is_final:
                    return
            self._changed.clear()
            if self._version == seen:
                await self._changed.wait()

    async def result(self) -> JobResult:
        """Wait for the job to end."""
        # Shielded: a follower that gives up must not cancel the one result every front door reads.
        return await asyncio.shield(self._result)

    @property
    def run_seconds(self) -> float:
        """Return the seconds ComfyUI has run the job (what GPU-second quotas count)."""
        return self._tracker.ran_for

    @property
    def is_done(self) -> bool:
        """Tell whether the job has ended."""
        return self._result.done()

    @property
    def outcome(self) -> JobResult | None:
        """Return the result of an ended job, None while it runs."""
        return self._result.result() if self._result.done() else None

    @property
    def held_bytes(self) -> int:
        """Return how many image bytes the job holds: inputs, outputs and its latest preview."""
        preview = self._tracker.snapshot.preview
        outputs = self._result.result().outputs if self._result.done() else ()
        images = sum(len(image.data) for image in (*self.request.images, *outputs))
        return images + (len(preview.data) if preview is not None else 0)

    @property
    def is_released(self) -> bool:
        """Tell whether `release` dropped this ended job's bytes."""
        return self._result.done() and self._result.result().is_released

    def release(self) -> None:
        """Drop an ended job's bytes (inputs, outputs, preview); its record and result stay."""
        if not self._result.done() or self.is_released:
            return
        result = self._result.result()
        self.released_inputs = len(self.request.images)
        self.request = replace(self.request, images=())
        self._tracker.snapshot = replace(self._tracker.snapshot, preview=None)
        # A new future: whoever awaited the old one already holds the whole result.
        self._result = self._result.get_loop().create_future()
        self._result.set_result(replace(result, outputs=(), is_released=True))

    def finish(self, result: JobResult, *, is_recorded: bool = False) -> None:
        """End the job once, and journal how (unless the journal holds this end already: a
        restored job whose end is shown again).
        """
        if self._result.done():
            return
        self._tracker.update(state=result.state, position=None, eta=None)
        if not is_recorded:
            result = replace(result, elapsed=self.snapshot.elapsed)
        self._result.set_result(result)
        self.publish()
        if self._journal is not None and not is_recorded:
            self._journal.finished(self, result)


OUTCOME_STATE = {
    Outcome.SUCCESS: JobState.DONE,
    Outcome.ERROR: JobState.FAILED,
    Outcome.INTERRUPTED: JobState.CANCELLED,
    Outcome.CANCELLED: JobState.CANCELLED,
    Outcome.LOST: JobState.LOST,
}
