"""WaitingLine: jobs waiting for a backend, one line per requester, by priority and in turns."""

from __future__ import annotations

import itertools
import time
from collections import deque
from collections.abc import Callable, Iterator
from typing import TypeVar

from bot.jobs.model import Job

T = TypeVar("T")

AGEING = 60.0  # seconds of waiting that raise a requester by one priority level


class WaitingLine:
    """Jobs not yet sent to ComfyUI, in per-requester lines.

    A requester's level is their head job's priority plus one for every `ageing` seconds they
    have waited since they arrived or were last served, so the lowest priority never starves.
    The highest level goes first; within a level, the requester served least recently (a plain
    rotation would put a newcomer behind someone served just before they came). A requester's
    own jobs keep their order.
    """

    def __init__(
        self, *, ageing: float = AGEING, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.ageing = ageing
        self._clock = clock
        self._lines: dict[str, deque[Job]] = {}
        self._front: deque[Job] = deque()  # taken but never started: before everyone
        self._served: dict[str, int] = {}  # requester -> turn of their latest dispatch
        self._since: dict[str, float] = {}  # requester -> when their current wait began
        self._turn = itertools.count()

    def __repr__(self) -> str:
        return f"WaitingLine({len(self)} jobs, {len(self._lines)} requesters)"

    def __len__(self) -> int:
        return len(self._front) + sum(len(line) for line in self._lines.values())

    def __bool__(self) -> bool:
        return bool(self._lines or self._front)

    def __contains__(self, job: object) -> bool:
        if not isinstance(job, Job):
            return False
        return job in self._front or job in self._lines.get(job.request.requester, ())

    def __iter__(self) -> Iterator[Job]:
        """Yield the waiting jobs in the order they would be taken if every backend were free."""
        yield from self._front
        now = self._clock()
        levels: dict[float, list[list[Job]]] = {}
        for requester in self._turns(now):
            levels.setdefault(self._level(requester, now), []).append(list(self._lines[requester]))
        for level in sorted(levels, reverse=True):
            lines = levels[level]
            for depth in range(max(len(line) for line in lines)):
                yield from (line[depth] for line in lines if depth < len(line))

    def append(self, job: Job) -> None:
        """Put a job at the end of its requester's line."""
        requester = job.request.requester
        if requester not in self._lines:
            self._since[requester] = self._clock()
        self._lines.setdefault(requester, deque()).append(job)

    def push_front(self, job: Job) -> None:
        """Put a job back at the head of the whole line (it was taken but never started)."""
        self._front.append(job)

    def remove(self, job: Job) -> bool:
        """Take a job out of the line; tell whether it was there."""
        if job in self._front:
            self._front.remove(job)
            return True
        line = self._lines.get(job.request.requester)
        if line is None or job not in line:
            return False
        line.remove(job)
        self._drop_empty(job.request.requester)
        return True

    def take(self, place: Callable[[Job], T | None]) -> tuple[Job, T] | None:
        """Take the first job, in turn order, for which `place` finds somewhere to run."""
        for job in self._front:
            where = place(job)
            if where is not None:
                self._front.remove(job)
                return job, where
        now = self._clock()
        for requester in self._turns(now):
            line = self._lines[requester]
            where = place(line[0])
            if where is not None:
                job = line.popleft()
                self._served[requester] = next(self._turn)
                self._since[requester] = now
                self._drop_empty(requester)
                return job, where
        return None

    def forget(self, requester: str) -> None:
        """Forget when a requester was last served (they have nothing left in flight)."""
        if requester not in self._lines:
            self._served.pop(requester, None)

    def _level(self, requester: str, now: float) -> float:
        head = self._lines[requester][0]
        waited = max(now - self._since.get(requester, now), 0.0)
        return head.request.priority + waited // self.ageing

    def _turns(self, now: float) -> list[str]:
        return sorted(
            self._lines,
            key=lambda requester: (-self._level(requester, now), self._served.get(requester, -1)),
        )

    def _drop_empty(self, requester: str) -> None:
        if not self._lines.get(requester):
            self._lines.pop(requester, None)
            self._since.pop(requester, None)
