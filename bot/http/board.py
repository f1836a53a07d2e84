"""The HTTP server's own jobs: their JSON form, and fanning their snapshots out to SSE clients."""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from bot.errors import BotError, user_message
from bot.jobs.model import Job, JobResult
from bot.jobs.progress import JobState, ProgressSnapshot
from bot.tasks import TaskSet

log = logging.getLogger(__name__)

JobJSON = dict[str, Any]
ErrorCode = Callable[[BaseException], str]


def job_json(
    job: Job, snapshot: ProgressSnapshot, result: JobResult | None, error_code: ErrorCode
) -> JobJSON:
    """Return what clients see of a job: state, position, progress, error and outputs."""
    return {
        "job_id": job.id,
        "prompt_id": job.id,
        "url": f"/jobs/{job.id}",
        "state": snapshot.state.value,
        "position": snapshot.position,
        "workflow": job.workflow.name,
        "seed": job.seed,
        "progress": {
            "node_id": snapshot.node_id,
            "node": snapshot.node_title,
            "node_class": snapshot.node_class,
            "step": snapshot.step,
            "steps": snapshot.steps,
            "percent": round(snapshot.percent, 1),
            "nodes_done": snapshot.nodes_done,
            "nodes_total": snapshot.nodes_total,
            "cached": snapshot.cached,
            "elapsed": round(snapshot.elapsed, 3),
            "eta": None if snapshot.eta is None else round(snapshot.eta, 1),
        },
        "error": _error(result, error_code) if result else None,
        "cancelled_by": job.cancelled_by,
        "outputs_released": result.is_released if result else False,
        "outputs": [
            {
                "index": index,
                "filename": output.filename,
                "content_type": output.content_type,
                "size": len(output.data),
                "url": f"/jobs/{job.id}/outputs/{index}",
            }
            for index, output in enumerate(result.outputs if result else ())
        ],
    }


def _error(result: JobResult, error_code: ErrorCode) -> dict[str, Any] | None:
    if result.failure is not None:
        failure = result.failure
        return {
            "code": "execution_error",
            "message": f"{failure.exception_type}: {failure.message}".strip(": \n"),
            "node_id": failure.node_id,
            "node_type": failure.node_type,
        }
    if result.error is not None:
        return {"code": error_code(result.error), "message": user_message(result.error)}
    if result.state is JobState.LOST:
        return {"code": "lost", "message": "ComfyUI lost this job (was it restarted?)."}
    return None


class TooManyStreams(BotError):
    """As many event streams are open as allowed, in total or for this client."""


class Mailbox:
    """One SSE client's pending job payloads: only the newest per job waits to be sent."""

    def __init__(self, on_close: Callable[[Mailbox], None], client: str = "") -> None:
        self.client = client
        self._pending: OrderedDict[str, JobJSON] = OrderedDict()
        self._ready = asyncio.Event()
        self._on_close = on_close
        self.is_closed = False

    def put(self, payload: JobJSON) -> None:
        """Queue a job's payload, replacing an unsent one of the same job."""
        self._pending.pop(payload["job_id"], None)
        self._pending[payload["job_id"]] = payload
        self._ready.set()

    async def next(self) -> list[JobJSON] | None:
        """Wait for pending payloads and return them, or None once the mailbox is closed."""
        while not self._pending and not self.is_closed:
            self._ready.clear()
            await self._ready.wait()
        if self.is_closed:
            return None
        batch = list(self._pending.values())
        self._pending.clear()
        return batch

    def close(self) -> None:
        """Stop the stream; the reader's next `next()` returns None."""
        if not self.is_closed:
            self.is_closed = True
            self._ready.set()
            self._on_close(self)


class JobBoard:
    """This server's jobs (the most recent `keep`), followed until they end.

    One task per job reads its latest-wins updates and hands each payload to every mailbox
    without awaiting it, so a slow SSE client never holds up a job or another client.
    """

    def __init__(
        self,
        error_code: ErrorCode,
        *,
        keep: int = 100,
        max_listeners: int = 32,
        max_per_client: int = 8,
    ) -> None:
        self._error_code = error_code
        self._keep = keep
        self._max_listeners = max_listeners
        self._max_per_client = max_per_client
        self._jobs: OrderedDict[str, Job] = OrderedDict()
        self._latest: dict[str, JobJSON] = {}
        self._mailboxes: set[Mailbox] = set()
        self._tasks = TaskSet(log)

    def __repr__(self) -> str:
        return f"JobBoard(jobs={len(self._jobs)}, listeners={len(self._mailboxes)})"

    def get(self, job_id: str) -> Job | None:
        """Return one of this server's jobs by id."""
        return self._jobs.get(job_id)

    def jobs(self) -> list[Job]:
        """Return this server's jobs, oldest first."""
        return list(self._jobs.values())

    def track(self, job: Job) -> JobJSON:
        """Start following a job this server queued; return its first payload."""
        self._jobs[job.id] = job
        self._forget_old()
        payload = self._publish(job, job.snapshot, None)
        self._tasks.spawn(self._follow(job), f"http follow {job.id}")
        return payload

    async def describe(self, job: Job) -> JobJSON:
        """Return a job's current payload."""
        result = await job.result() if job.is_done else None
        return job_json(job, job.snapshot, result, self._error_code)

    def listen(self, client: str = "") -> Mailbox:
        """Return a mailbox that already holds the latest payload of every job here.

        Raises:
            TooManyStreams: as many mailboxes are open as allowed, in all or for `client`.
        """
        if len(self._mailboxes) >= self._max_listeners:
            raise TooManyStreams(
                f"{len(self._mailboxes)} event streams are open, the most this server allows"
                " (HTTP_MAX_EVENT_STREAMS); close one or try again later."
            )
        if sum(1 for m in self._mailboxes if m.client == client) >= self._max_per_client:
            raise TooManyStreams(
                f"This client already has {self._max_per_client} event streams open, the most"
                " one client may; one stream carries every job."
            )
        mailbox = Mailbox(self._mailboxes.discard, client)
        for job_id in self._jobs:
            if (payload := self._latest.get(job_id)) is not None:
                mailbox.put(payload)
        self._mailboxes.add(mailbox)
        return mailbox

    def close_listeners(self) -> None:
        """End every SSE stream (on shutdown)."""
        for mailbox in list(self._mailboxes):
            mailbox.close()

    async def close(self) -> None:
        """End every stream and stop following jobs (the jobs themselves go on)."""
        self.close_listeners()
        await self._tasks.close()

    async def _follow(self, job: Job) -> None:
        async for snapshot in job.updates():
            result = await job.result() if snapshot.state.is_final else None
            self._publish(job, snapshot, result)

    def _publish(self, job: Job, snapshot: ProgressSnapshot, result: JobResult | None) -> JobJSON:
        payload = job_json(job, snapshot, result, self._error_code)
        self._latest[job.id] = payload
        for mailbox in self._mailboxes:
            mailbox.put(payload)
        return payload

    def _forget_old(self) -> None:
        while len(self._jobs) > self._keep:
            oldest = next((j for j in self._jobs.values() if j.is_done), None)
            if oldest is None:
                return
            del self._jobs[oldest.id]
            self._latest.pop(oldest.id, None)
