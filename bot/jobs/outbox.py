"""Outbox: a done job's outputs, kept in the journal until its requester was shown them.

A kill between a job's end and the reply that shows it would otherwise leave the restarted bot
to fetch the outputs again from ComfyUI, which may have forgotten them meanwhile (a restart, a
cleared history): the member would be told "lost" of a job the journal holds as done. Kept
here, the end is shown again from the journal alone, and the bytes go once it was shown (or
with the job's input images, JOURNAL_IMAGE_RETENTION_HOURS after it ended).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from bot.images import ImageFile
from bot.jobs.store import JobStore, Work


def keeping(job_id: str, outputs: Sequence[ImageFile]) -> Work:
    """Return the write keeping a done job's outputs until its end is shown."""
    rows = [(job_id, i, output.filename, output.data) for i, output in enumerate(outputs)]

    def work(db: sqlite3.Connection) -> None:
        db.executemany("INSERT OR REPLACE INTO job_outputs VALUES (?, ?, ?, ?)", rows)

    return work


def releasing(job_id: str) -> Work:
    """Return the write dropping a job's kept outputs (its end was shown)."""

    def work(db: sqlite3.Connection) -> None:
        db.execute("DELETE FROM job_outputs WHERE job_id = ?", (job_id,))

    return work


def together(works: Sequence[Work]) -> Work:
    """Return one write running `works` in order (in one transaction, as every write is)."""

    def work(db: sqlite3.Connection) -> None:
        for each in works:
            each(db)

    return work


async def kept(store: JobStore, job_id: str) -> tuple[ImageFile, ...]:
    """Return the outputs kept for a job, in order (none: shown already, pruned, or none made)."""

    def work(db: sqlite3.Connection) -> tuple[ImageFile, ...]:
        rows = db.execute(
            "SELECT filename, data FROM job_outputs WHERE job_id = ? ORDER BY position",
            (job_id,),
        )
        return tuple(ImageFile(str(name), bytes(data)) for name, data in rows)

    return await store.call(work)
