"""Journal: what the job queue tells the job store, written in order without blocking the queue."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Any, Self

from bot.errors import user_message
from bot.images import ImageFile
from bot.jobs.model import REQUEST_VALUES, GenerationRequest, Job, JobResult
from bot.jobs.store import JobStore, JournalEntry

log = logging.getLogger(__name__)

Write = Callable[[], Awaitable[None]]
RETRY_FIRST = 0.05  # seconds before a refused write is tried again, doubled up to RETRY_LIMIT
RETRY_LIMIT = 2.0


class Journal:
    """Record each job's life in the store, in order, on a writer task the queue never waits for.

    The one exception is `flush()`: the queue awaits it before sending a prompt, so that the
    prompt_id is on disk before ComfyUI can know it.
    """

    def __init__(self, store: JobStore) -> None:
        self.store = store
        self._writes: asyncio.Queue[Write] = asyncio.Queue()
        self._writer: asyncio.Task[None] | None = None

    def __repr__(self) -> str:
        return f"Journal({self.store!r}, pending={self._writes.qsize()})"

    async def __aenter__(self) -> Self:
        self._writer = asyncio.create_task(self._write_all(), name="journal writer")
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancellation.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(5):
                await self.flush()
        if self._writer is not None:
            self._writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._writer

    async def _write_all(self) -> None:
        while True:
            write = await self._writes.get()
            try:
                await self._write(write)
            except Exception:
                log.exception("journal write failed")
            finally:
                self._writes.task_done()

    async def _write(self, write: Write) -> None:
        """Write, waiting out a disk that refuses for a while: a dropped write loses a job.

        The writes behind wait too, so the journal keeps their order; `flush()` (and so the
        next prompt sent) waits until the disk takes them again.
        """
        wait = RETRY_FIRST
        while True:
            try:
                await write()
            except sqlite3.OperationalError as exc:  # full, failing or locked; not a bad row
                log.warning("journal write refused (%s); trying again in %.1fs", exc, wait)
                await asyncio.sleep(wait)
                wait = min(wait * 2, RETRY_LIMIT)
            else:
                return

    async def flush(self) -> None:
        """Wait until everything recorded so far is in the store."""
        await self._writes.join()

    def accepted(self, job: Job) -> None:
        """Record a new job with its request and where it came from."""
        request = job.request
        params = request_params(request)
        self._writes.put_nowait(
            lambda: self.store.add(
                job.id,
                requester=request.requester,
                workflow=request.workflow,
                params=params,
                origin=dict(request.origin),
                images=request.images,
            )
        )

    def state(self, job: Job, state: str, *, backend: str | None = None) -> None:
        """Record a change of state (and the backend the job went to)."""
        self._writes.put_nowait(lambda: self.store.update(job.id, state=state, backend=backend))

    def origin(self, job: Job, origin: dict[str, Any]) -> None:
        """Record where the job's reply lives (message ids, token expiry) once it is known."""
        self._writes.put_nowait(lambda: self.store.update(job.id, origin=origin))

    def finished(self, job: Job, result: JobResult) -> None:
        """Record how a job ended."""
        error = None
        if result.failure is not None:
            failure = result.failure
            error = f"node {failure.node_id} ({failure.node_type}): {failure.message}"
        elif result.error is not None:
            error = user_message(result.error)
        outputs = [output.filename for output in result.outputs]
        self._writes.put_nowait(
            lambda: self.store.update(job.id, state=str(result.state), outputs=outputs, error=error)
        )

    def delivered(self, job: Job) -> None:
        """Record that the requester was shown how the job ended (see `undelivered`)."""
        self._writes.put_nowait(lambda: self.store.delivered(job.id))

    async def undelivered(self) -> list[JournalEntry]:
        """Return jobs that ended but whose end the requester was never shown (a crash between)."""
        return await self.store.undelivered()

    async def unfinished(self) -> list[JournalEntry]:
        """Return every job that had not ended when the process stopped."""
        return await self.store.unfinished()


def request_params(request: GenerationRequest) -> dict[str, Any]:
    """Return the JSON-safe parameters of a request (images are stored apart)."""
    overrides = [[node, name, value] for (node, name), value in request.overrides.items()]
    return {**request.values(), "overrides": overrides}


def request_from(entry: JournalEntry, images: tuple[ImageFile, ...]) -> GenerationRequest:
    """Rebuild the request a journal entry recorded."""
    params = dict(entry.params)
    overrides = {(str(n), str(i)): v for n, i, v in params.pop("overrides", [])}
    return GenerationRequest(
        requester=entry.requester,
        workflow=entry.workflow,
        images=images,
        overrides=overrides,
        origin=dict(entry.origin),
        **{key: params[key] for key in REQUEST_VALUES if key in params},
    )
