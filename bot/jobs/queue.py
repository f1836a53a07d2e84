"""JobQueue: per-user caps, round-robin fairness, bounded prompts in flight per backend, cancel."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import Self

from bot.comfy.backend import CancelResult, ComfyBackend, PromptRun
from bot.comfy.errors import ComfyError, ComfyUnavailable
from bot.errors import BotError, NotAllowed, QueueFull, TooManyJobs, UnknownJob
from bot.jobs import logcontext
from bot.jobs.ended import KEEP_BYTES, KEEP_ENDED, EndedJobs
from bot.jobs.execution import failed, follow, send
from bot.jobs.history import JobHistory
from bot.jobs.journal import Journal
from bot.jobs.lineup import AGEING, WaitingLine
from bot.jobs.model import GenerationRequest, Job, JobResult
from bot.jobs.placement import Placement
from bot.jobs.positions import Positions
from bot.jobs.progress import JobState
from bot.tasks import TaskSet
from bot.workflows.library import WorkflowLibrary

log = logging.getLogger(__name__)

JobObserver = Callable[[Job], None]
"""Told of every job the queue takes, submitted or adopted (metrics follow it from there)."""


class JobQueue:
    """Take requests from every front door and run them fairly on the backends."""

    def __init__(
        self,
        backends: Sequence[ComfyBackend],
        workflows: WorkflowLibrary,
        *,
        max_per_user: int = 2,
        max_in_flight: int = 2,
        max_waiting: int = 1000,
        journal: Journal | None = None,
        keep_finished: int = KEEP_ENDED,
        keep_bytes: int = KEEP_BYTES,
        ageing: float = AGEING,
    ) -> None:
        if not backends:
            raise ValueError("JobQueue needs at least one backend")
        self.backends = tuple(backends)
        self._workflows = workflows
        self.max_per_user = max_per_user
        self.max_waiting = max_waiting
        self.journal = journal
        self.jobs: dict[str, Job] = {}
        # Ended jobs stay reachable (results, Reroll) until `keep_finished` newer ones have
        # ended; only the newest keep their images.
        self.ended = EndedJobs(keep=keep_finished, keep_bytes=keep_bytes)
        self._waiting = WaitingLine(ageing=ageing)
        self.placement = Placement(self.backends, max_in_flight=max_in_flight)
        self._in_flight = self.placement.in_flight
        self._wake = asyncio.Event()
        self._tasks = TaskSet(log)
        self._dispatcher: asyncio.Task[None] | None = None
        self._positions = Positions(self._waiting, self._in_flight)
        self.observers: list[JobObserver] = []
        self.history = JobHistory(journal, self.find)

    def __repr__(self) -> str:
        return f"JobQueue(backends={len(self.backends)}, jobs={len(self.jobs)})"

    async def __aenter__(self) -> Self:
        self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    def start(self) -> None:
        """Start dispatching and watching every backend's queue."""
        if self._dispatcher is None:
            self._dispatcher = self._tasks.spawn(self._dispatch(), "job dispatcher")
            for backend in self.backends:
                self._tasks.spawn(self._watch_queue(backend), f"queue watcher {backend.url}")

    async def close(self) -> None:
        """Cancel every task this queue owns and wait for them."""
        self._positions.close()
        await self._tasks.close()
        self._dispatcher = None

    def submit(self, request: GenerationRequest, *, max_jobs: int | None = None) -> Job:
        """Accept a request, or refuse it before anything is sent to ComfyUI.

        `max_jobs` replaces the per-user cap (a server's own); jobs count within the server.

        Raises:
            UnknownWorkflow, WorkflowInputError: the request does not fit the workflow.
            OverUploadLimit: no server that may run it takes its images (their upload limits).
            TooManyJobs: the requester is at the per-user cap.
            QueueFull: too many jobs are waiting.
        """
        workflow = self.workflows.resolve(request.workflow)
        request = request.seeded(workflow)
        graph = request.graph_for(workflow)
        self.placement.check_images(workflow, request.images)
        limit = self.max_per_user if max_jobs is None else max_jobs
        if self.active_count(request.requester, guild_id=request.guild_id) >= limit:
            raise TooManyJobs(limit)
        if self.waiting_count() >= self.max_waiting:
            raise QueueFull(self.max_waiting)
        job = Job(request, workflow, graph, journal=self.journal)
        self.jobs[job.id] = job
        self._observe(job)
        if self.journal is not None:
            self.journal.accepted(job)
        self._waiting.append(job)
        log.info(
            "accepted %s from %s (%s)",
            job.id,
            request.requester,
            workflow.name,
            extra={"job_id": job.id},
        )
        self._positions.place(job)
        self._wake.set()
        return job

    def get(self, job_id: str) -> Job:
        """Return a job by id.

        Raises:
            UnknownJob: no such job.
        """
        try:
            return self.jobs[job_id]
        except KeyError:
            raise UnknownJob(job_id) from None

    def active_count(self, requester: str, *, guild_id: int | None = None) -> int:
        """Return how many of this requester's jobs (of one server, or outside any) are open."""
        return sum(1 for job in self.active(requester) if job.request.guild_id == guild_id)

    def waiting_count(self) -> int:
        """Return how many jobs wait for a backend."""
        return len(self._waiting)

    @property
    def workflows(self) -> WorkflowLibrary:
        """Return the workflow library new jobs are resolved in."""
        return self._workflows

    def reload_workflows(self, library: WorkflowLibrary) -> None:
        """Resolve new jobs in `library` from now on (jobs already accepted keep theirs)."""
        self._workflows = library

    def find(self, job_id: str) -> Job | None:
        """Return a job this queue still knows, or None."""
        return self.jobs.get(job_id)

    def active(self, requester: str | None = None) -> list[Job]:
        """Return the jobs that have not ended (of one requester, or everyone's), oldest first."""
        return [
            job
            for job in self.jobs.values()
            if not job.is_done and requester in (None, job.request.requester)
        ]

    def dispatched_count(self) -> int:
        """Return how many unfinished jobs were handed to a ComfyUI server."""
        return sum(1 for job in self.active() if job.backend is not None)

    def running_on(self, backend: ComfyBackend) -> list[Job]:
        """Return the jobs ComfyUI runs on `backend` now."""
        return [j for j in self.active() if j.backend is backend and j.state is JobState.RUNNING]

    def backend_at(self, url: str | None) -> ComfyBackend | None:
        """Return the backend of this URL, or None when it is not (or no longer) configured."""
        return next((b for b in self.backends if b.url == url), None)

    async def cancel(self, job_id: str, *, by: str, is_moderator: bool = False) -> CancelResult:
        """Cancel one job: drop it if still ours, remove or interrupt it in ComfyUI otherwise.

        Raises:
            UnknownJob: no such job.
            NotAllowed: `by` is neither the requester nor a moderator.
        """
        job = self.get(job_id)
        if by != job.request.requester and not is_moderator:
            raise NotAllowed(
                "Only the person who asked for this job, or a moderator, can cancel it."
            )
        if job.is_done:
            return CancelResult.NOT_FOUND
        job.cancel_by(by)
        if self._waiting.remove(job):
            self._finish(job, JobResult(job.id, JobState.CANCELLED, cancelled_by=by))
            self._positions.refresh()
            return CancelResult.REMOVED
        if job.backend is not None and job.state is JobState.WAITING:
            # Dispatched, its prompt on the way: wait for ComfyUI's answer, then cancel there.
            await job.wait_sent()
        if job.backend is None or job.state is JobState.WAITING:
            return CancelResult.REMOVED  # never reached ComfyUI: it ends cancelled
        return await job.backend.cancel(job.id)

    async def _dispatch(self) -> None:
        while True:
            # Woken by new jobs, freed slots and status broadcasts; the timeout is a backstop
            # for a backend turning healthy between two broadcasts.
            # (asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancellation.)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(1.0):
                    await self._wake.wait()
            self._wake.clear()
            choose = self.placement.choose
            while self.placement.has_room() and (taken := self._waiting.take(choose)) is not None:
                job, backend = taken
                job.dispatch(backend)
                self._in_flight[backend].add(job)
                self._tasks.spawn(self._execute(job, backend), f"job {job.id}")
                self._positions.refresh()

    async def _execute(self, job: Job, backend: ComfyBackend, run: PromptRun | None = None) -> None:
        # The prompt_id is the job's id (chosen by us); every log line of this task carries both.
        logcontext.bind(job_id=job.id, prompt_id=job.id, server=logcontext.server_name(backend.url))
        result: JobResult | None
        try:
            if run is None:
                run = await send(job, backend, self.journal)
            result = await follow(job, backend, run) if run is not None else None
            if result is None and job.cancelled_by is not None:
                result = JobResult(job.id, JobState.CANCELLED, cancelled_by=job.cancelled_by)
        except ComfyUnavailable as exc:
            log.warning("job %s could not reach %s: %s", job.id, backend.url, exc)
            # Still WAITING: the prompt never reached ComfyUI's queue, so another server may
            # run it; once queued there, it is that server's prompt and the job failed.
            result = None if job.state is JobState.WAITING else failed(job, exc)
        except (ComfyError, BotError) as exc:  # a BotError: its images are over the limit
            log.warning("job %s on %s failed: %s", job.id, backend.url, exc)
            result = failed(job, exc)
        except Exception as exc:
            # Whatever went wrong, the job ends and frees its member's slot.
            log.exception("job %s on %s failed unexpectedly", job.id, backend.url)
            result = failed(job, exc)
        finally:
            self._in_flight[backend].discard(job)
            self._positions.forget(job)
            self._wake.set()
        if result is None:
            self._requeue(job, backend)
            return
        self._finish(job, result)
        log.info("finished %s (%s) in %.1fs", job.id, result.state, job.snapshot.elapsed)
        self._positions.refresh()

    def _requeue(self, job: Job, backend: ComfyBackend) -> None:
        """Put a job ComfyUI never started back at the head of the line, for any backend."""
        if job.cancelled_by is not None:
            self._finish(job, JobResult(job.id, JobState.CANCELLED, cancelled_by=job.cancelled_by))
            return
        log.warning("job %s never started on %s: moving it to another backend", job.id, backend.url)
        job.requeue()
        self._waiting.push_front(job)
        self._positions.refresh()

    def adopt(self, job: Job, backend: ComfyBackend | None, run: PromptRun | None) -> None:
        """Take over a job restored from the journal: follow its prompt, or queue it again."""
        self.jobs[job.id] = job
        self._observe(job)
        if backend is None or run is None:
            self._waiting.append(job)
            self._positions.refresh()
            self._wake.set()
            return
        job.resume(backend)
        self._in_flight[backend].add(job)
        self._tasks.spawn(self._execute(job, backend, run), f"job {job.id}")

    def adopt_lost(self, job: Job) -> None:
        """Take over a restored job whose server is gone from the settings: it ended lost."""
        self.jobs[job.id] = job
        self._observe(job)
        self._finish(job, JobResult(job.id, JobState.LOST))

    def adopt_ended(self, job: Job, result: JobResult) -> None:
        """Take over a restored job that had ended, as the journal recorded its end."""
        self.jobs[job.id] = job
        self._observe(job)
        self._finish(job, result, is_recorded=True)

    def rebuild(self, request: GenerationRequest, job_id: str) -> Job:
        """Return a job for a request the journal recorded, under its old id (not queued yet).

        Raises:
            UnknownWorkflow, WorkflowInputError: the request no longer fits the library.
        """
        workflow = self._workflows.resolve(request.workflow)
        return Job(
            request, workflow, request.graph_for(workflow), job_id=job_id, journal=self.journal
        )

    def _observe(self, job: Job) -> None:
        for observer in self.observers:
            observer(job)

    def _finish(self, job: Job, result: JobResult, *, is_recorded: bool = False) -> None:
        if job.is_done:
            return
        job.finish(result, is_recorded=is_recorded)
        for job_id in self.ended.add(job):
            self.jobs.pop(job_id, None)
        if not self.active(job.request.requester):
            self._waiting.forget(job.request.requester)

    async def _watch_queue(self, backend: ComfyBackend) -> None:
        """Wake the dispatcher and keep positions current whenever ComfyUI's queue changes."""
        await self._positions.follow(backend, self._wake.set)

    async def refresh_positions(self, backend: ComfyBackend) -> None:
        """Ask ComfyUI where our queued jobs on `backend` stand (and which one it runs)."""
        await self._positions.in_comfy(backend)
