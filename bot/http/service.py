"""One HTTP server instance's service: its options, patch state and jobs on the shared JobQueue."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bot.comfy.backend import CancelResult
from bot.comfy.errors import ComfyUnavailable
from bot.config import Settings
from bot.errors import UnknownJob
from bot.http.board import JobBoard, JobJSON
from bot.http.errors import error_code
from bot.http.patch import PatchState
from bot.jobs.model import Job
from bot.jobs.progress import JobState
from bot.jobs.queue import JobQueue
from bot.workflows.library import Workflow

_CANCEL_ORDER = {JobState.WAITING: 0, JobState.QUEUED: 1, JobState.RUNNING: 2}


@dataclass(frozen=True, slots=True)
class HttpOptions:
    """What one server instance is configured with (from Settings and the command line)."""

    token: str = ""
    requester: str = "http"
    max_body_bytes: int = 20 * 1024 * 1024
    max_image_bytes: int = 20 * 1024 * 1024
    auto_execute: bool = False
    heartbeat: float = 15.0
    allowed_hosts: frozenset[str] = frozenset()
    max_event_streams: int = 32

    def __repr__(self) -> str:
        token = "'**********'" if self.token else "''"
        return f"HttpOptions(token={token}, requester={self.requester!r})"

    @classmethod
    def from_settings(cls, settings: Settings) -> HttpOptions:
        """Take the HTTP_* settings."""
        return cls(
            token=settings.http_api_token.value,
            max_body_bytes=settings.http_max_body_bytes,
            max_image_bytes=settings.max_input_image_bytes,
            auto_execute=settings.auto_execute_on_upload,
            allowed_hosts=settings.http_allowed_hosts,
            max_event_streams=settings.http_max_event_streams,
        )


class ServerState:
    """The state one server instance owns: what clients set, and the jobs it queued.

    `patch` is an immutable PatchState. `update` reads it, builds the new one and stores it
    without awaiting in between, so no other request can interleave and none ever sees a
    half-applied change; readers simply take whichever complete state is current.
    """

    def __init__(self, jobs: JobQueue, workflow: Workflow, options: HttpOptions) -> None:
        self.jobs = jobs
        self.options = options
        self.patch = PatchState.initial(workflow)
        self.board = JobBoard(
            error_code,
            max_listeners=options.max_event_streams,
            max_per_client=max(1, options.max_event_streams // 4),
        )
        # JobQueue resolves workflows by name in its library, else loads the path each time.
        known = workflow.name in jobs.workflows and jobs.workflows.get(workflow.name) is workflow
        self.workflow_ref = workflow.name if known else str(workflow.path)

    def __repr__(self) -> str:
        return f"ServerState({self.patch.workflow.name!r}, {self.board!r})"

    def update(self, change: Callable[[PatchState], PatchState]) -> PatchState:
        """Apply `change` to the current state and store the result (all or nothing)."""
        self.patch = change(self.patch)
        return self.patch

    def queue(self) -> JobJSON:
        """Queue the current state as a job of this server; return its first payload.

        Raises:
            ComfyUnavailable: no ComfyUI is healthy, so nothing would run.
            MissingImage, WorkflowInputError: the state does not fit the workflow.
            TooManyJobs, QueueFull: the JobQueue refused the job.
        """
        if not self.jobs.placement.has_healthy_backend:
            raise ComfyUnavailable("no ComfyUI server is connected and answering")
        request = self.patch.request(self.options.requester, self.workflow_ref)
        return self.board.track(self.jobs.submit(request))

    def job(self, job_id: str) -> Job:
        """Return one of this server's jobs.

        Raises:
            UnknownJob: this server queued no such job (or forgot it).
        """
        job = self.board.get(job_id)
        if job is None:
            raise UnknownJob(job_id)
        return job

    async def interrupt(self, jobs: list[Job]) -> list[dict[str, Any]]:
        """Cancel these jobs, the not yet started first (so none starts as another stops).

        Raises:
            ComfyUnavailable: ComfyUI could not be asked.
        """
        answers = []
        for job in sorted(jobs, key=lambda j: _CANCEL_ORDER.get(j.state, 3)):
            result = (
                CancelResult.NOT_FOUND
                if job.is_done
                else await self.jobs.cancel(job.id, by=job.request.requester)
            )
            answers.append({"job_id": job.id, "prompt_id": job.id, "result": result.value})
        return answers

    def health(self) -> dict[str, Any]:
        """Return whether ComfyUI is connected (and answering) and how many jobs are where."""
        backends = self.jobs.backends
        connected = sum(1 for backend in backends if backend.is_healthy)
        states = Counter(job.state.value for job in self.board.jobs())
        return {
            "status": "ok" if connected else "unavailable",
            "comfyui": {"connected": connected > 0, "backends": len(backends), "up": connected},
            "jobs": {
                "waiting": states["waiting"],
                "queued": states["queued"],
                "running": states["running"],
                "finished": sum(states[s.value] for s in JobState if s.is_final),
                "waiting_all_front_doors": self.jobs.waiting_count(),
            },
            "workflow": self.patch.workflow.name,
        }
