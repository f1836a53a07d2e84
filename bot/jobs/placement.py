"""Placement: which ComfyUI server takes a job, and how many prompts each may hold at once.

A job may go to a server its workflow's sidecar allows (`backends`, else any), that takes its
input images (each server's upload limit), that is healthy and has room; of those, the least
loaded. Jobs wait in our own line, not in ComfyUI's, so a server that goes away takes only the
few prompts it held.
"""

from __future__ import annotations

from collections.abc import Sequence

from bot.comfy.backend import ComfyBackend
from bot.images import ImageFile
from bot.jobs import uploads
from bot.jobs.model import Job
from bot.workflows.library import Workflow


class Placement:
    """The backends, the jobs each holds in ComfyUI, and the choice of one for a job."""

    def __init__(self, backends: Sequence[ComfyBackend], *, max_in_flight: int) -> None:
        self.backends = tuple(backends)
        self.max_in_flight = max_in_flight
        self.in_flight: dict[ComfyBackend, set[Job]] = {b: set() for b in self.backends}

    def __repr__(self) -> str:
        held = sum(len(jobs) for jobs in self.in_flight.values())
        return f"Placement(backends={len(self.backends)}, in_flight={held})"

    def eligible(self, workflow: Workflow) -> list[ComfyBackend]:
        """Return the backends that may run a workflow (its placement, else every one)."""
        placement = workflow.backends
        return [b for b in self.backends if not placement or b.matches(placement)]

    def check_images(self, workflow: Workflow, images: Sequence[ImageFile]) -> None:
        """Refuse at once input images no server that may run the workflow takes.

        Raises:
            OverUploadLimit: over the upload limit of every such server.
        """
        uploads.check(images, self.eligible(workflow))

    def choose(self, job: Job) -> ComfyBackend | None:
        """Return the least-loaded healthy backend with room that may run the job, if any.

        Of those, only one that takes the job's images; when no server takes them any more
        (limits learned after it was accepted), any, so that sending refuses it with why.
        """
        eligible = self.eligible(job.workflow)
        images = job.request.images
        if images and any(uploads.fits(images, b) for b in eligible):
            eligible = [b for b in eligible if uploads.fits(images, b)]
        candidates = [b for b in eligible if self._has_room(b)]
        return min(
            candidates, key=lambda b: (len(self.in_flight[b]), b.queue_remaining), default=None
        )

    def has_room(self) -> bool:
        """Tell whether any healthy backend could take one more prompt now."""
        return any(self._has_room(b) for b in self.backends)

    def _has_room(self, backend: ComfyBackend) -> bool:
        return backend.is_healthy and len(self.in_flight[backend]) < self.max_in_flight

    @property
    def has_healthy_backend(self) -> bool:
        """Tell whether any backend can take work now (jobs wait while none can)."""
        return any(b.is_healthy for b in self.backends)
