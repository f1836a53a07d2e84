"""Progress of one job: a pure tracker that turns ComfyUI events into the latest snapshot."""

from __future__ import annotations

import enum
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from bot.comfy.events import (
    Event,
    Executing,
    ExecutionCached,
    ExecutionStart,
    Preview,
    Progress,
    ProgressState,
)
from bot.workflows.graph import title_of


class JobState(enum.StrEnum):
    """Where a job is in its life."""

    WAITING = "waiting"  # in our own fair queue, not yet sent to ComfyUI
    QUEUED = "queued"  # in ComfyUI's queue
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"
    LOST = "lost"

    @property
    def is_final(self) -> bool:
        """Tell whether the job has ended."""
        return self in _FINAL


_FINAL = frozenset({JobState.DONE, JobState.FAILED, JobState.CANCELLED, JobState.LOST})


def duration(seconds: float) -> str:
    """Return `seconds` as m:ss (or h:mm:ss), in whole seconds elapsed, for every front door.

    Cut, not rounded: a clock shows 0:09 until ten seconds have passed, and the live counter
    and the final "Done in" of one job agree.
    """
    whole = max(int(seconds), 0)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def meter(percent: float, width: int, full: str, empty: str) -> str:
    """Return a bar of `width` cells, `full` ones in proportion to `percent` (kept in 0-100)."""
    filled = round(width * min(max(percent, 0.0), 100.0) / 100.0)
    return full * filled + empty * (width - filled)


@dataclass(frozen=True, slots=True)
class PreviewImage:
    """The newest live preview of a running job."""

    data: bytes
    content_type: str

    def __repr__(self) -> str:
        return f"PreviewImage({self.content_type}, {len(self.data)} bytes)"


@dataclass(frozen=True, slots=True)
class ProgressSnapshot:
    """Everything a front door shows about a job at one moment; the latest one wins."""

    state: JobState = JobState.WAITING
    position: int | None = None
    node_id: str | None = None
    node_title: str | None = None
    node_class: str | None = None
    step: int = 0
    steps: int = 0
    nodes_done: int = 0
    nodes_total: int = 0
    cached: int = 0
    elapsed: float = 0.0
    eta: float | None = None
    preview: PreviewImage | None = None

    @property
    def percent(self) -> float:
        """Return progress in percent: the step bar when a node reports steps, else nodes."""
        if self.state is JobState.DONE:
            return 100.0
        if self.steps > 0:
            return 100.0 * self.step / self.steps
        if self.nodes_total > 0:
            return 100.0 * self.nodes_done / self.nodes_total
        return 0.0


class ProgressTracker:
    """Fold one prompt's events into ProgressSnapshots; pure apart from the clock it is given."""

    def __init__(
        self, graph: Mapping[str, Any], *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._graph = graph
        self._clock = clock
        self._created = clock()
        self._started: float | None = None
        self._step_started: float | None = None
        self._ran: list[float] = []  # when ComfyUI started running it, and when it ended
        self._seen: set[str] = set()
        self.snapshot = ProgressSnapshot(nodes_total=len(graph))

    def update(self, **changes: Any) -> ProgressSnapshot:
        """Replace fields of the snapshot (state, position, ...) and refresh the times."""
        self.snapshot = replace(self.snapshot, **changes)
        if self.snapshot.state.is_final and len(self._ran) == 1:
            self._ran.append(self._clock())
        return self.tick()

    def tick(self) -> ProgressSnapshot:
        """Refresh elapsed time."""
        self.snapshot = replace(self.snapshot, elapsed=self._clock() - self._created)
        return self.snapshot

    def apply(self, event: Event) -> bool:
        """Fold an event in; tell whether what a user sees changed."""
        snap = self.snapshot
        match event:
            case ExecutionStart():
                self._started = self._clock()
                snap = replace(snap, state=JobState.RUNNING, position=0)
            case ExecutionCached(nodes=nodes):
                snap = replace(snap, cached=len(nodes), nodes_total=len(self._graph) - len(nodes))
            case Executing(node=str(node)):
                self._seen.add(node)
                self._step_started = self._clock()
                snap = replace(
                    snap,
                    state=JobState.RUNNING,
                    position=0,
                    node_id=node,
                    node_title=self._title(node),
                    node_class=self._class(node),
                    step=0,
                    steps=0,
                    eta=None,
                    nodes_done=max(len(self._seen) - 1, 0),
                )
            case Progress(value=value, max=maximum):
                snap = replace(snap, step=value, steps=maximum, eta=self._eta(value, maximum))
            case ProgressState(nodes=nodes):
                finished = sum(1 for n in nodes if n.state == "finished")
                snap = replace(snap, nodes_done=max(snap.nodes_done, finished))
            case Preview(data=data, image_type=image_type):
                snap = replace(snap, preview=PreviewImage(data, image_type))
            case _:
                return False
        changed = snap != self.snapshot
        if snap.state is JobState.RUNNING and not self._ran:
            self._ran.append(self._clock())
        self.snapshot = snap
        self.tick()
        return changed

    @property
    def ran_for(self) -> float:
        """Return the seconds from ComfyUI's start of running to the end (or now)."""
        if not self._ran:
            return 0.0
        return (self._ran[1] if len(self._ran) > 1 else self._clock()) - self._ran[0]

    def _eta(self, step: int, steps: int) -> float | None:
        if self._step_started is None or step <= 0 or steps <= step:
            return None
        per_step = (self._clock() - self._step_started) / step
        return per_step * (steps - step)

    def _title(self, node: str) -> str | None:
        return title_of(self._graph, node) or self._class(node)

    def _class(self, node: str) -> str | None:
        class_type = self._graph.get(node, {}).get("class_type")
        return str(class_type) if class_type else None
