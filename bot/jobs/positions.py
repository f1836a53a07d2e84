"""Places in line: our waiting jobs' positions, and where ComfyUI's queue has our queued ones."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Set

from bot.comfy.backend import ComfyBackend
from bot.comfy.errors import ComfyError
from bot.jobs.lineup import WaitingLine
from bot.jobs.model import Job
from bot.jobs.progress import JobState

log = logging.getLogger(__name__)

POSITION_INTERVAL = 0.25  # seconds: waiting jobs' positions are refreshed at most this often


class Positions:
    """Keep the positions jobs show current, for the queue that owns the line and the slots."""

    def __init__(self, waiting: WaitingLine, in_flight: Mapping[ComfyBackend, Set[Job]]) -> None:
        self._waiting = waiting
        self._in_flight = in_flight
        self._at = float("-inf")
        self._timer: asyncio.TimerHandle | None = None

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
            position = snapshot.position(job.id)
            if job.state is not JobState.QUEUED or position is None:
                continue
            if snapshot.is_running(job.id):
                job.record(JobState.RUNNING, position=0)
            else:
                job.move_to(position)
