"""Journal: what the job queue tells the job store, written in order without blocking the queue."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections import deque
from itertools import islice
from types import TracebackType
from typing import Any, Self

from bot.errors import InputsExpired, JournalUnavailable, user_message
from bot.images import ImageFile
from bot.jobs import outbox
from bot.jobs.model import Job, JobResult
from bot.jobs.recorded import request_params
from bot.jobs.retention import Retention
from bot.jobs.store import JobStore, JournalEntry, RunRecord, StoredState, Work
from bot.tasks import TaskSet

log = logging.getLogger(__name__)

# Writes run in batches of at most this many, each batch one transaction.
_BATCH = 500
# How long a prompt waits for the journal to hold its job before the job fails, unsent.
SEND_WAIT = 30.0
# A lock another process holds (a backup, sqlite3 in a shell) usually goes within milliseconds, so
# the first retry is quick; two seconds at most keeps a longer hold from turning into a busy loop.
_RETRY_FIRST, _RETRY_MAX = 0.05, 2.0


class Journal:
    """Record each job's life in the store, in order, on a writer task the queue never waits for.

    A write that meets a locked file is retried until it lands, never dropped; `flush()` waits
    for the backlog at most `flush_timeout` seconds. A prompt is sent only once the journal holds
    its job (`hold`, up to `send_wait` seconds): a kill then never leaves ComfyUI running a
    prompt the journal does not know, or a member's job the next start cannot find.
    Ended jobs and their input images are pruned every `retention.every` seconds.
    """

    def __init__(
        self,
        store: JobStore,
        *,
        retention: Retention | None = None,
        flush_timeout: float = 2.0,
        send_wait: float = SEND_WAIT,
    ) -> None:
        self.store = store
        self.retention = retention or Retention()
        self.flush_timeout = flush_timeout
        self.send_wait = send_wait
        self._pending: deque[Work] = deque()
        self._queued = 0
        self._written = 0
        self._progress = asyncio.Condition()
        self._wakeup = asyncio.Event()
        self._tasks = TaskSet(log)

    def __repr__(self) -> str:
        return f"Journal({self.store!r}, pending={len(self._pending)})"

    async def __aenter__(self) -> Self:
        self._tasks.spawn(self._write_all(), "journal writer")
        self._tasks.spawn(self._prune_every(), "journal pruning")
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if not await self.flush(max_wait=5):
            log.error("journal: %d writes could not be written before closing", len(self._pending))
        await self._tasks.close()

    def _put(self, work: Work) -> None:
        self._pending.append(work)
        self._queued += 1
        self._wakeup.set()

    async def _write_all(self) -> None:
        delay = _RETRY_FIRST
        while True:
            while not self._pending:
                self._wakeup.clear()
                await self._wakeup.wait()
            batch = list(islice(self._pending, _BATCH))
            try:
                await self.store.write(batch)
            except sqlite3.OperationalError as exc:
                if delay == _RETRY_FIRST:
                    log.warning("journal busy (%s): %d writes wait, retrying", exc, len(batch))
                await asyncio.sleep(delay)
                delay = min(delay * 2, _RETRY_MAX)
                continue
            except Exception:
                await self._write_one_by_one(len(batch))
            else:
                await self._done(len(batch))
            if delay != _RETRY_FIRST:
                log.info("journal writable again")
            delay = _RETRY_FIRST

    async def _write_one_by_one(self, count: int) -> None:
        """Write a batch that failed (not for a lock) one at a time; log the write that fails."""
        for _ in range(count):
            try:
                await self.store.write([self._pending[0]])
            except sqlite3.OperationalError:
                return  # locked meanwhile: the rest is retried as a batch
            except Exception:
                log.exception("journal write failed and was dropped")
            await self._done(1)

    async def _done(self, count: int) -> None:
        for _ in range(count):
            self._pending.popleft()
        self._written += count
        async with self._progress:
            self._progress.notify_all()

    async def flush(self, max_wait: float | None = None) -> bool:
        """Wait until everything recorded so far is in the store, at most `max_wait` seconds
        (default `flush_timeout`); return whether it is.
        """
        target = self._queued
        try:
            async with asyncio.timeout(self.flush_timeout if max_wait is None else max_wait):
                async with self._progress:
                    await self._progress.wait_for(lambda: self._written >= target)
        except TimeoutError:
            log.warning("journal: %d writes still wait; going on", target - self._written)
            return False
        return True

    @property
    def backlog(self) -> int:
        """Return how many writes wait to be written (a refusing disk makes them pile up)."""
        return len(self._pending)

    async def hold(self) -> None:
        """Wait until everything recorded so far is on disk, before a prompt goes to ComfyUI.

        Raises:
            JournalUnavailable: the file could not be written for `send_wait` seconds.
        """
        if not await self.flush(max_wait=self.send_wait):
            raise JournalUnavailable(
                f"The job journal could not be written for {self.send_wait:g} s (is its disk"
                " full, or the file locked?), so the job was not sent to ComfyUI; try again."
            )

    async def _prune_every(self) -> None:
        while True:
            try:
                pruned = await self.store.prune(self.retention)
            except sqlite3.Error as exc:
                log.warning("journal pruning failed, next in %.0fs: %s", self.retention.every, exc)
            else:
                if pruned.jobs or pruned.images:
                    log.info("journal pruned %d jobs, %d images", pruned.jobs, pruned.images)
            await asyncio.sleep(self.retention.every)

    def accepted(self, job: Job) -> None:
        """Record a new job with its request and where it came from."""
        request = job.request
        params = request_params(request)
        self._put(
            self.store.adding(
                job.id,
                requester=request.requester,
                workflow=request.workflow,
                params=params,
                origin=dict(request.origin),
                images=request.images,
                guild_id=request.guild_id,
            )
        )

    def state(self, job: Job, state: StoredState, *, backend: str | None = None) -> None:
        """Record a change of state (and the backend the job went to)."""
        self._put(self.store.updating(job.id, state=state, backend=backend))

    def origin(self, job: Job, origin: dict[str, Any]) -> None:
        """Record where the job's reply lives (message ids, token expiry) once it is known."""
        self._put(self.store.updating(job.id, origin=origin))

    def finished(self, job: Job, result: JobResult) -> None:
        """Record how a job ended."""
        error = None
        if result.failure is not None:
            failure = result.failure
            error = f"node {failure.node_id} ({failure.node_type}): {failure.message}"
        elif result.error is not None:
            error = user_message(result.error)
        outputs = [output.filename for output in result.outputs]
        files = [
            {"filename": f.filename, "subfolder": f.subfolder, "type": f.type} for f in result.files
        ]
        ran = RunRecord(dict(job.graph), files, result.elapsed or job.snapshot.elapsed)
        state = StoredState.of(result.state)
        update = self.store.updating(job.id, state=state, outputs=outputs, error=error, ran=ran)
        if state is StoredState.DONE and result.outputs:
            # With its outputs, in one write: shown again after a kill whatever ComfyUI forgot.
            update = outbox.together([update, outbox.keeping(job.id, result.outputs)])
        self._put(update)

    def lost(self, job_id: str, reason: str) -> None:
        """Record that a job cannot be taken up again, and why."""
        self._put(self.store.updating(job_id, state=StoredState.LOST, error=reason))

    async def get(self, job_id: str) -> JournalEntry | None:
        """Return what the journal knows of one job (after the writes recorded so far)."""
        await self.flush()
        return await self.store.get(job_id)

    async def images(self, job_id: str) -> tuple[ImageFile, ...]:
        """Return the input images a job was asked with.

        Raises:
            InputsExpired: they were pruned (JOURNAL_IMAGE_RETENTION_HOURS after the job ended).
        """
        entry = await self.store.get(job_id)
        if entry is not None and entry.has_dropped_images:
            raise InputsExpired(
                "The input images of this job are no longer kept (the journal keeps them"
                f" {self.retention.images / 3600:g} hours after a job ends); attach the image"
                " again with /generate."
            )
        return await self.store.images(job_id)

    async def recent(self, requester: str | None, *, limit: int) -> list[JournalEntry]:
        """Return the newest jobs, of one requester or of everyone."""
        return await self.store.recent(requester, limit=limit)

    def delivered(self, job: Job) -> None:
        """Record that the requester was shown how the job ended (see `undelivered`)."""
        self._put(outbox.together([self.store.delivering(job.id), outbox.releasing(job.id)]))

    async def outputs(self, job_id: str) -> tuple[ImageFile, ...]:
        """Return the outputs of a done job whose end was not shown yet (see bot/jobs/outbox.py)."""
        return await outbox.kept(self.store, job_id)

    async def undelivered(self) -> list[JournalEntry]:
        """Return jobs that ended but whose end the requester was never shown (a crash between)."""
        return await self.store.undelivered()

    async def unfinished(self) -> list[JournalEntry]:
        """Return every job that had not ended when the process stopped."""
        return await self.store.unfinished()
