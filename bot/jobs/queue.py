"""JobQueue: per-user caps, round-robin fairness, bounded prompts in flight per backend, cancel."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections import deque
from collections.abc import Sequence
from dataclasses import replace
from types import TracebackType
from typing import Self

from bot.comfy.backend import CancelResult, ComfyBackend, PromptRun
from bot.comfy.errors import ComfyError, ComfyUnavailable
from bot.comfy.events import Status
from bot.errors import NotAllowed, QueueFull, TooManyJobs, UnknownJob
from bot.jobs.execution import failed, follow, record, send
from bot.jobs.journal import Journal
from bot.jobs.lineup import WaitingLine
from bot.jobs.model import MAX_SEED, GenerationRequest, Job, JobResult
from bot.jobs.progress import JobState
from bot.tasks import TaskSet
from bot.workflows.library import WorkflowLibrary

log = logging.getLogger(__name__)

POSITION_INTERVAL = 0.25  # seconds: waiting jobs' positions are refreshed at most this often
QUEUE_REFRESH = 1.0  # seconds: ComfyUI's /queue is asked for positions at most this often


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
        keep_finished: int = 200,
    ) -> None:
        if not backends:
            raise ValueError("JobQueue needs at least one backend")
        self.backends = tuple(backends)
        self.workflows = workflows
        self.max_per_user = max_per_user
        self.max_in_flight = max_in_flight
        self.max_waiting = max_waiting
        self.journal = journal
        self.jobs: dict[str, Job] = {}
        # Ended jobs stay reachable (results, Reroll) until this many newer ones have ended.
        self._finished: deque[str] = deque()
        self.keep_finished = keep_finished
        self._waiting = WaitingLine()
        self._in_flight: dict[ComfyBackend, set[Job]] = {b: set() for b in self.backends}
        self._wake = asyncio.Event()
        self._placed: set[Job] = set()  # queued jobs whose place in ComfyUI's queue we know
        self._tasks = TaskSet(log)
        self._dispatcher: asyncio.Task[None] | None = None
        self._positions_at = float("-inf")
        self._positions_timer: asyncio.TimerHandle | None = None

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
        if self._positions_timer is not None:
            self._positions_timer.cancel()
            self._positions_timer = None
        await self._tasks.close()
        self._dispatcher = None

    def submit(self, request: GenerationRequest) -> Job:
        """Accept a request, or refuse it before anything is sent to ComfyUI.

        Raises:
            UnknownWorkflow, WorkflowInputError: the request does not fit the workflow.
            TooManyJobs: the requester is at the per-user cap.
            QueueFull: too many jobs are waiting.
        """
        workflow = self.workflows.resolve(request.workflow)
        if request.seed is None and workflow.has("seed"):
            request = replace(request, seed=secrets.randbelow(MAX_SEED))
        graph = request.graph_for(workflow)
        if self.active_count(request.requester) >= self.max_per_user:
            raise TooManyJobs(self.max_per_user)
        if self.waiting_count() >= self.max_waiting:
            raise QueueFull(self.max_waiting)
        job = Job(request, workflow, graph)
        self.jobs[job.id] = job
        if self.journal is not None:
            self.journal.accepted(job)
        self._waiting.append(job)
        log.info("accepted %s from %s (%s)", job.id, request.requester, workflow.name)
        # The newcomer learns its place at once; the others' places may follow a moment later.
        ahead = sum(len(jobs) for jobs in self._in_flight.values())
        place = next(index for index, waiting in enumerate(self._waiting) if waiting is job)
        job.tracker.update(position=ahead + place)
        self._refresh_waiting_positions()
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

    def active_count(self, requester: str) -> int:
        """Return how many of this requester's jobs have not ended."""
        return sum(
            1
            for job in self.jobs.values()
            if job.request.requester == requester and not job.is_done
        )

    def waiting_count(self) -> int:
        """Return how many jobs wait for a backend."""
        return len(self._waiting)

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
        job.cancelled_by = by
        if self._waiting.remove(job):
            self._finish(job, JobResult(job.id, JobState.CANCELLED, cancelled_by=by))
            self._refresh_waiting_positions()
            return CancelResult.REMOVED
        if job.backend is not None and job.state is JobState.WAITING:
            # Dispatched, its prompt on the way: wait for ComfyUI's answer, then cancel there.
            await job.sent.wait()
        if job.backend is None or job.state is JobState.WAITING:
            return CancelResult.REMOVED  # never reached ComfyUI: it ends cancelled
        return await job.backend.cancel(job.id)

    def _place(self, job: Job) -> ComfyBackend | None:
        """Return the least-loaded healthy backend with room that may run the job, if any."""
        placement = job.workflow.backends
        candidates = [
            b
            for b in self.backends
            if b.is_healthy
            and len(self._in_flight[b]) < self.max_in_flight
            and (not placement or b.matches(placement))
        ]
        return min(
            candidates, key=lambda b: (len(self._in_flight[b]), b.queue_remaining), default=None
        )

    @property
    def has_healthy_backend(self) -> bool:
        """Tell whether any backend can take work now (jobs wait while none can)."""
        return any(b.is_healthy for b in self.backends)

    async def _dispatch(self) -> None:
        while True:
            # Woken by new jobs, freed slots and status broadcasts; the timeout is a backstop
            # for a backend turning healthy between two broadcasts.
            # (asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancellation.)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(1.0):
                    await self._wake.wait()
            self._wake.clear()
            while self._has_room() and (taken := self._waiting.take(self._place)) is not None:
                job, backend = taken
                job.backend = backend
                self._in_flight[backend].add(job)
                self._tasks.spawn(self._execute(job, backend), f"job {job.id}")
                self._refresh_waiting_positions()

    def _has_room(self) -> bool:
        return any(
            b.is_healthy and len(self._in_flight[b]) < self.max_in_flight for b in self.backends
        )

    def _refresh_waiting_positions(self) -> None:
        """Update waiting jobs' positions now, or in a moment if that was just done.

        Each dispatch moves every waiting job up by one, so refreshing every time would cost
        the square of the queue's length; positions are for display and may lag a little.
        """
        if self._positions_timer is not None:
            return
        loop = asyncio.get_running_loop()
        wait = self._positions_at + POSITION_INTERVAL - loop.time()
        if wait > 0:
            self._positions_timer = loop.call_later(wait, self._positions_now)
        else:
            self._positions_now()

    def _positions_now(self) -> None:
        self._positions_timer = None
        self._positions_at = asyncio.get_running_loop().time()
        ahead = sum(len(jobs) for jobs in self._in_flight.values())
        for index, job in enumerate(self._waiting):
            if job.tracker.snapshot.position != ahead + index:
                job.tracker.update(position=ahead + index)
                job.publish()

    async def _execute(self, job: Job, backend: ComfyBackend, run: PromptRun | None = None) -> None:
        result: JobResult | None
        try:
            if run is None:
                run = await send(job, backend, self.journal)
            result = await follow(job, backend, run, self.journal) if run is not None else None
            if result is None and job.cancelled_by is not None:
                result = JobResult(job.id, JobState.CANCELLED, cancelled_by=job.cancelled_by)
        except ComfyUnavailable as exc:
            log.warning("job %s could not reach %s: %s", job.id, backend.url, exc)
            result = None if job.tracker.snapshot.state is JobState.WAITING else failed(job, exc)
        except ComfyError as exc:
            log.warning("job %s on %s failed: %s", job.id, backend.url, exc)
            result = failed(job, exc)
        except Exception as exc:
            # Whatever went wrong, the job ends and frees its member's slot.
            log.exception("job %s on %s failed unexpectedly", job.id, backend.url)
            result = failed(job, exc)
        finally:
            self._in_flight[backend].discard(job)
            self._placed.discard(job)
            self._wake.set()
        if result is None:
            self._requeue(job, backend)
            return
        self._finish(job, result)
        log.info("finished %s (%s) in %.1fs", job.id, result.state, job.snapshot.elapsed)
        self._refresh_waiting_positions()

    def _requeue(self, job: Job, backend: ComfyBackend) -> None:
        """Put a job ComfyUI never started back at the head of the line, for any backend."""
        if job.cancelled_by is not None:
            self._finish(job, JobResult(job.id, JobState.CANCELLED, cancelled_by=job.cancelled_by))
            return
        log.warning("job %s never started on %s: moving it to another backend", job.id, backend.url)
        job.backend = None
        job.sent = asyncio.Event()
        job.tracker.update(state=JobState.WAITING)
        if self.journal is not None:
            self.journal.state(job, str(JobState.WAITING))
        self._waiting.push_front(job)
        self._refresh_waiting_positions()

    def adopt(self, job: Job, backend: ComfyBackend | None, run: PromptRun | None) -> None:
        """Take over a job restored from the journal: follow its prompt, or queue it again."""
        self.jobs[job.id] = job
        if backend is None or run is None:
            self._waiting.append(job)
            self._refresh_waiting_positions()
            self._wake.set()
            return
        job.backend = backend
        job.tracker.update(state=JobState.QUEUED)
        self._in_flight[backend].add(job)
        self._tasks.spawn(self._execute(job, backend, run), f"job {job.id}")

    def _finish(self, job: Job, result: JobResult) -> None:
        job.finish(result)
        self._finished.append(job.id)
        while len(self._finished) > self.keep_finished:
            self.jobs.pop(self._finished.popleft(), None)
        if not self.active_count(job.request.requester):
            self._waiting.forget(job.request.requester)
        if self.journal is not None:
            self.journal.finished(job, result)

    async def _watch_queue(self, backend: ComfyBackend) -> None:
        """Keep ComfyUI queue positions of our queued jobs current as ComfyUI's queue changes.

        A shorter queue moves every queued job of ours up without a request; /queue is asked
        only for jobs whose place ComfyUI has not told us yet, at most every QUEUE_REFRESH s.
        """
        updates = backend.stream.listen(Status)
        remaining: int | None = None
        asked_at = float("-inf")
        loop = asyncio.get_running_loop()
        try:
            async for status in updates:
                self._wake.set()  # a (re)connected backend may take waiting jobs
                while (later := updates.get_nowait()) is not None:  # one refresh per burst
                    status = later
                if not isinstance(status, Status):
                    continue
                is_fresh = status.sid is not None or remaining is None  # first frame of a socket
                moved_up = 0 if is_fresh else max(0, (remaining or 0) - status.queue_remaining)
                remaining = status.queue_remaining
                if self._shift_positions(backend, moved_up) and not is_fresh:
                    continue
                await asyncio.sleep(max(0.0, asked_at + QUEUE_REFRESH - loop.time()))
                asked_at = loop.time()
                await self.refresh_positions(backend)
        finally:
            updates.close()

    def _shift_positions(self, backend: ComfyBackend, moved_up: int) -> bool:
        """Move our placed queued jobs up by `moved_up`; tell whether every one was placed."""
        queued = [j for j in self._in_flight[backend] if j.state is JobState.QUEUED]
        if not all(job in self._placed for job in queued):
            return False
        for job in queued:
            position = job.tracker.snapshot.position
            if moved_up and position is not None and position > 1:
                job.tracker.update(position=max(1, position - moved_up))
                job.publish()
        return True

    async def refresh_positions(self, backend: ComfyBackend) -> None:
        """Ask ComfyUI where our queued jobs on `backend` stand; one it executes is RUNNING.

        After a restart, this shows a job ComfyUI kept running as running before its next event.
        """
        queued = [j for j in self._in_flight[backend] if j.state is JobState.QUEUED]
        if not queued:
            return
        try:
            snapshot = await backend.client.queue()
        except ComfyError as exc:
            log.debug("queue refresh on %s failed: %s", backend.url, exc)
            return
        for job in queued:
            position = snapshot.position(backend.wire_id(job.id))
            if job.state is not JobState.QUEUED or position is None:
                continue
            self._placed.add(job)
            if position == 0:
                job.tracker.update(position=0)
                record(job, JobState.RUNNING, self.journal)
            elif position != job.tracker.snapshot.position:
                job.tracker.update(position=position)
                job.publish()
