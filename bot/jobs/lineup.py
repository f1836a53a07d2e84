"""WaitingLine: jobs waiting for a backend, one line per requester, taken fairly in turns."""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Callable, Iterator
from typing import TypeVar

from bot.jobs.model import Job

T = TypeVar("T")


class WaitingLine:
    """Jobs not yet sent to ComfyUI, in per-requester lines.

    The requester served least recently goes next: a plain rotation would put a newcomer behind
    someone served just before they came. A requester's own jobs keep their order.
    """

    def __init__(self) -> None:
        self._lines: dict[str, deque[Job]] = {}
        self._served: dict[str, int] = {}  # requester -> turn of their latest dispatch
        self._turn = itertools.count()

    def __repr__(self) -> str:
        return f"WaitingLine({len(self)} jobs, {len(self._lines)} requesters)"

    def __len__(self) -> int:
        return sum(len(line) for line in self._lines.values())

    def __bool__(self) -> bool:
        return bool(self._lines)

    def __contains__(self, job: object) -> bool:
        return isinstance(job, Job) and job in self._lines.get(job.request.requester, ())

    def __iter__(self) -> Iterator[Job]:
        """Yield the waiting jobs in the order they would be taken if every backend were free."""
        lines = [list(self._lines[requester]) for requester in self._turns()]
        for depth in range(max((len(line) for line in lines), default=0)):
            yield from (line[depth] for line in lines if depth < len(line))

    def append(self, job: Job) -> None:
        """Put a job at the end of its requester's line."""
        self._lines.setdefault(job.request.requester, deque()).append(job)

    def push_front(self, job: Job) -> None:
        """Put a job back at the head of the whole line (it was taken but never started)."""
        self._lines.setdefault(job.request.requester, deque()).appendleft(job)
        # Before everyone, served or not (never served counts as -1).
        self._served[job.request.requester] = min([*self._served.values(), -1]) - 1

    def remove(self, job: Job) -> bool:
        """Take a job out of the line; tell whether it was there."""
        line = self._lines.get(job.request.requester)
        if line is None or job not in line:
            return False
        line.remove(job)
        self._drop_empty(job.request.requester)
        return True

    def take(self, place: Callable[[Job], T | None]) -> tuple[Job, T] | None:
        """Take the first job, in turn order, for which `place` finds somewhere to run."""
        for requester in self._turns():
            line = self._lines[requester]
            where = place(line[0])
            if where is not None:
                job = line.popleft()
                self._served[requester] = next(self._turn)
                self._drop_empty(requester)
                return job, where
        return None

    def forget(self, requester: str) -> None:
        """Forget when a requester was last served (they have nothing left in flight)."""
        if requester not in self._lines:
            self._served.pop(requester, None)

    def _turns(self) -> list[str]:
        return sorted(self._lines, key=lambda requester: self._served.get(requester, -1))

    def _drop_empty(self, requester: str) -> None:
        if not self._lines.get(requester):
            self._lines.pop(requester, None)
