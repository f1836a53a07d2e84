"""Journal upkeep: a private file, and pruning of ended jobs and their input images."""

from __future__ import annotations

import logging
import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from bot.jobs.rows import FINAL_STATES

log = logging.getLogger(__name__)

# The journal and SQLite's companions of it; all hold interaction tokens and input images.
_SUFFIXES = ("", "-wal", "-shm", "-journal")


@dataclass(frozen=True, slots=True)
class Retention:
    """How long the journal keeps ended jobs, and their input images, in seconds."""

    jobs: float = 30 * 86400.0
    images: float = 24 * 3600.0
    every: float = 3600.0  # how often the journal prunes

    @classmethod
    def from_settings(cls, days: float, image_hours: float) -> Retention:
        """Take JOURNAL_RETENTION_DAYS and JOURNAL_IMAGE_RETENTION_HOURS."""
        return cls(jobs=days * 86400.0, images=image_hours * 3600.0)


@dataclass(frozen=True, slots=True)
class Pruned:
    """What one pruning removed."""

    jobs: int
    images: int


def make_private(path: Path) -> None:
    """Create the database file readable by its owner only, and tighten what already exists.

    SQLite creates the -wal and -shm files with the mode of the database file. An existing
    file is only chmod-ed, never opened: closing any descriptor of the database drops this
    process's POSIX locks on it, and the next process to open it then deletes the live WAL
    (every later write of ours lost).
    """
    if str(path) == ":memory:":
        return
    if not path.exists():
        os.close(os.open(path, os.O_CREAT | os.O_RDWR, 0o600))
    for suffix in _SUFFIXES:
        companion = Path(f"{path}{suffix}")
        if companion.exists():
            os.chmod(companion, 0o600)


def use_incremental_vacuum(db: sqlite3.Connection) -> None:
    """Switch the file to incremental vacuum (a one-time VACUUM for a file made without it)."""
    if int(db.execute("PRAGMA auto_vacuum").fetchone()[0]) != 2:
        db.execute("PRAGMA auto_vacuum = INCREMENTAL")
        try:
            db.execute("VACUUM")
        except sqlite3.OperationalError as exc:  # another process holds the file: next start
            log.warning("journal %s not switched to incremental vacuum yet: %s", db, exc)


def prune(db: sqlite3.Connection, *, ended_before: float, images_before: float) -> Pruned:
    """Delete jobs that ended before `ended_before`, and the input images (and outputs kept
    unshown) of those before `images_before`, marking the job so a later Reroll can say why;
    unfinished jobs stay.
    """
    marks = ", ".join("?" for _ in FINAL_STATES)
    ended = f"SELECT id FROM jobs WHERE state IN ({marks}) AND updated_at < ?"  # noqa: S608
    with db:
        old = (*FINAL_STATES, ended_before)
        db.execute(f"DELETE FROM job_states WHERE job_id IN ({ended})", old)  # noqa: S608
        db.execute(f"DELETE FROM job_images WHERE job_id IN ({ended})", old)  # noqa: S608
        db.execute(f"DELETE FROM job_outputs WHERE job_id IN ({ended})", old)  # noqa: S608
        jobs = db.execute(f"DELETE FROM jobs WHERE id IN ({ended})", old).rowcount  # noqa: S608
        stale = (*FINAL_STATES, images_before)
        db.execute(
            f"UPDATE jobs SET images_dropped = 1 WHERE id IN ({ended})"  # noqa: S608
            " AND id IN (SELECT job_id FROM job_images)",
            stale,
        )
        images = db.execute(
            f"DELETE FROM job_images WHERE job_id IN ({ended})",  # noqa: S608
            stale,
        ).rowcount
        db.execute(f"DELETE FROM job_outputs WHERE job_id IN ({ended})", stale)  # noqa: S608
    db.execute("PRAGMA incremental_vacuum").fetchall()
    return Pruned(jobs=jobs, images=images)
