"""Places in line: our waiting jobs' positions, and where ComfyUI's queue has our queued ones."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping, Set

from bot.comfy.backend import ComfyBackend
from bot.comfy.errors import ComfyError
from bot.comfy.events import Status
from bot.jobs.lineup import WaitingLine
from bot.jobs.model import Job
from bot.jobs.progress import JobState

log = logging.getLogger(__name__)

POSITION_INTERVAL = 0.25  # seconds: waiting jobs' positions are refreshed at most this often
QUEUE_REFRESH = 1.0  # seconds: ComfyUI's /queue is asked for positions at most this often


class Positions:
    """Keep the positions jobs show current, for the queue that owns the line and the slots."""

    def __init__(self, waiting: WaitingLine, in_flight: Mapping[ComfyBackend, Set[Job]]) -> None:
        self._waiting = waiting
        self._in_flight = in_flight
        self._at = float("-inf")
        self._timer: asyncio.TimerHandle | None = None
        self._placed: set[Job] = set()  # queued jobs whose place in ComfyUI's queue we know

    def __repr__(self) -> str:
        return f"Positions(waiting={len(self._waiting)}, pending={self._timer is not None})"

    def close(self) -> None:
        """Drop a refresh still planned."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def place(self, job: Job) -> None:
        """Show a newcomer its place at once; the others' places may follow a moment later."""
        place = next(index for index, waiting in enumerate(self._waiting) if waiting is job)
        job.move_to(self._ahead() + place)
        self.refresh()

    def refresh(self) -> None:
        """Update waiting jobs' positions now, or in a moment if that was just done.

        Each dispatch moves every waiting job up by one, so refreshing every time would cost
        the square of the queue's length; positions are for display and may lag a little.
        """
        if self._timer is not None:
            return
        loop = asyncio.get_running_loop()
        wait = self._at + POSITION_INTERVAL - loop.time()
        if wait > 0:
            self._timer = loop.call_later(wait, self._now)
        else:
            self._now()

    def _ahead(self) -> int:
        return sum(len(jobs) for jobs in self._in_flight.values())

    def _now(self) -> None:
        self._timer = None
        self._at = asyncio.get_running_loop().time()
        ahead = self._ahead()
        for index, job in enumerate(self._waiting):
            job.move_to(ahead + index)

    async def follow(self, backend: ComfyBackend, on_change: Callable[[], None]) -> None:
        """Keep our queued jobs' places on `backend` current as its queue changes, forever.

        A shorter queue moves each placed job of ours up without a request; /queue is asked
        only for jobs whose place ComfyUI has not told us yet, at most every QUEUE_REFRESH s.
        """
        updates = backend.stream.listen(Status)
        remaining: int | None = None
        asked_at = float("-inf")
        loop = asyncio.get_running_loop()
        try:
            async for status in updates:
                on_change()  # a (re)connected backend may take waiting jobs
                while (later := updates.get_nowait()) is not None:  # one refresh per burst
                    status = later
                if not isinstance(status, Status):
                    continue
                is_fresh = status.sid is not None or remaining is None  # first frame of a socket
                moved_up = 0 if is_fresh else max(0, (remaining or 0) - status.queue_remaining)
                remaining = status.queue_remaining
                if self.shift(backend, moved_up) and not is_fresh:
                    continue
                await asyncio.sleep(max(0.0, asked_at + QUEUE_REFRESH - loop.time()))
                asked_at = loop.time()
                await self.in_comfy(backend)
        finally:
            updates.close()

    async def in_comfy(self, backend: ComfyBackend) -> None:
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
                job.record(JobState.RUNNING, position=0)
            else:
                job.move_to(position)

    def shift(self, backend: ComfyBackend, moved_up: int) -> bool:
        """Move our placed queued jobs up by `moved_up`; tell whether every one was placed.

        ComfyUI's queue got shorter by `moved_up`: what ran before ours ended (or a prompt
        was deleted, rarely behind ours; the next /queue corrects that).
        """
        queued = [j for j in self._in_flight[backend] if j.state is JobState.QUEUED]
        if not all(job in self._placed for job in queued):
            return False
        for job in queued:
            position = job.snapshot.position
            if moved_up and position is not None and position > 1:
                job.move_to(max(1, position - moved_up))
        return True

    def forget(self, job: Job) -> None:
        """Drop a job that left ComfyUI's queue (it ran, failed or moved)."""
        self._placed.discard(job)
