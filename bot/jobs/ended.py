"""EndedJobs: which ended jobs a queue still lists, and which of them keep their bytes.

An ended job is looked up for a while (results, Reroll, the HTTP job list), but its images are
wanted only by whoever delivers it, right after it ends. So the newest ended jobs keep their
bytes up to a budget and older ones are released; the newest one is always whole, however big.
"""

from __future__ import annotations

from collections import OrderedDict, deque

from bot.jobs.model import Job

KEEP_ENDED = 200
KEEP_BYTES = 64 * 1024 * 1024


class EndedJobs:
    """The `keep` newest ended jobs by id; bytes only for the newest, within `keep_bytes`."""

    def __init__(self, *, keep: int = KEEP_ENDED, keep_bytes: int = KEEP_BYTES) -> None:
        self.keep = keep
        self.keep_bytes = keep_bytes
        self._ids: deque[str] = deque()
        self._whole: OrderedDict[str, tuple[Job, int]] = OrderedDict()
        self.held_bytes = 0

    def __repr__(self) -> str:
        return f"EndedJobs({len(self._ids)}, whole={len(self._whole)}, bytes={self.held_bytes})"

    def __len__(self) -> int:
        return len(self._ids)

    def add(self, job: Job) -> list[str]:
        """Count a job that just ended; return the ids of the jobs no longer to be listed."""
        size = job.held_bytes
        self._ids.append(job.id)
        self._whole[job.id] = (job, size)
        self.held_bytes += size
        while self.held_bytes > self.keep_bytes and len(self._whole) > 1:
            self._release(next(iter(self._whole)))
        forgotten = []
        while len(self._ids) > self.keep:
            job_id = self._ids.popleft()
            if job_id in self._whole:
                self._release(job_id)
            forgotten.append(job_id)
        return forgotten

    def _release(self, job_id: str) -> None:
        job, size = self._whole.pop(job_id)
        self.held_bytes -= size
        job.release()
