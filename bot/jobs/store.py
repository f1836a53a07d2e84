"""The job journal: an embedded SQLite file recording every job, written off the event loop."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import TracebackType
from typing import Any, Self, TypeVar

from bot.images import ImageFile
from bot.jobs.retention import Pruned, Retention, make_private, prune, use_incremental_vacuum
from bot.jobs.rows import (
    FINAL_STATES,
    MIGRATIONS,
    JournalEntry,
    RunRecord,
    StoredState,
    entries,
    migrate,
)

T = TypeVar("T")
Work = Callable[[sqlite3.Connection], None]
"""One write of the journal, run on the worker thread inside a transaction."""
UNDELIVERED_WINDOW = 86400.0  # seconds: ended jobs older than this are not posted any more

__all__ = [
    "FINAL_STATES",
    "MIGRATIONS",
    "JobStore",
    "JournalEntry",
    "RunRecord",
    "StoredState",
    "Work",
    "migrate",
]


class JobStore:
    """Record jobs in SQLite; every call runs on one worker thread, never on the event loop.

    Writes are built as `Work` (a function of the connection) so that the journal can run
    many in one transaction and retry them whole while another process holds a lock.
    """

    def __init__(
        self, path: Path, *, clock: Callable[[], float] = time.time, busy_timeout: float = 1.0
    ) -> None:
        self.path = path
        self._clock = clock
        self._busy_timeout = busy_timeout
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="journal")
        self._db: sqlite3.Connection | None = None

    def __repr__(self) -> str:
        return f"JobStore({str(self.path)!r})"

    def clock(self) -> float:
        """Return the time the store writes into its rows (wall-clock seconds)."""
        return self._clock()

    async def __aenter__(self) -> Self:
        await self.open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def call(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """Run `work` in a transaction on the journal's thread (for the tables of other modules).

        Raises:
            RuntimeError: the journal is not open.
        """

        def run() -> T:
            if self._db is None:
                raise RuntimeError("the journal is not open")
            with self._db:
                return work(self._db)

        return await asyncio.get_running_loop().run_in_executor(self._executor, run)

    async def open(self) -> None:
        """Open (or create, private to its owner) the database and bring its schema up to date.

        Raises:
            sqlite3.Error: the file cannot be created, opened or migrated.
        """

        def connect() -> None:
            try:
                make_private(self.path)
            except OSError as exc:  # as sqlite3.connect would fail: one error type for callers
                raise sqlite3.OperationalError(f"unable to open database file: {exc}") from exc
            self._db = sqlite3.connect(
                self.path, check_same_thread=False, timeout=self._busy_timeout
            )
            self._db.row_factory = sqlite3.Row
            use_incremental_vacuum(self._db)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            migrate(self._db)
            make_private(self.path)  # the -wal and -shm files exist now

        await asyncio.get_running_loop().run_in_executor(self._executor, connect)

    async def close(self) -> None:
        """Close the database and its worker thread."""
        if self._db is not None:
            db, self._db = self._db, None
            await asyncio.get_running_loop().run_in_executor(self._executor, db.close)
        self._executor.shutdown(wait=True)

    async def write(self, works: Sequence[Work]) -> None:
        """Run writes in order in one transaction: all of them land, or none.

        Raises:
            sqlite3.OperationalError: the file is locked (past the busy timeout) or unwritable.
        """

        def work(db: sqlite3.Connection) -> None:
            for each in works:
                each(db)

        await self.call(work)

    async def prune(self, retention: Retention) -> Pruned:
        """Delete ended jobs older than the retention, and older input images of ended jobs.

        Raises:
            sqlite3.OperationalError: the file is locked or unwritable (nothing was deleted).
        """
        now = self._clock()

        def work(db: sqlite3.Connection) -> Pruned:
            return prune(
                db, ended_before=now - retention.jobs, images_before=now - retention.images
            )

        return await self.call(work)

    async def client_id(self, backend: str) -> str:
        """Return the client_id this bot uses with a backend, the same across restarts."""

        def work(db: sqlite3.Connection) -> str:
            row = db.execute("SELECT client_id FROM client_ids WHERE backend = ?", (backend,))
            found = row.fetchone()
            if found is not None:
                return str(found[0])
            new = uuid.uuid4().hex
            db.execute("INSERT INTO client_ids VALUES (?, ?)", (backend, new))
            return new

        return await self.call(work)

    def adding(
        self,
        job_id: str,
        *,
        requester: str,
        workflow: str,
        params: Mapping[str, Any],
        origin: Mapping[str, Any],
        images: Sequence[ImageFile] = (),
        state: StoredState = StoredState.WAITING,
        guild_id: int | None = None,
    ) -> Work:
        """Return the write recording a new job: what was asked, where it came from, its server."""
        now = self._clock()
        row = (job_id, requester, workflow, _dump(params), _dump(origin), state, now, now, guild_id)
        pictures = [(job_id, i, image.filename, image.data) for i, image in enumerate(images)]

        def work(db: sqlite3.Connection) -> None:
            db.execute(
                "INSERT INTO jobs (id, requester, workflow, params, origin, state, created_at,"
                " updated_at, guild_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                row,
            )
            db.execute("INSERT INTO job_states VALUES (?, ?, ?)", (job_id, state, now))
            db.executemany("INSERT INTO job_images VALUES (?, ?, ?, ?)", pictures)

        return work

    async def add(self, job_id: str, **fields: Any) -> None:
        """Record a new job at once (see `adding`)."""
        await self.write([self.adding(job_id, **fields)])

    def updating(
        self,
        job_id: str,
        *,
        state: StoredState | None = None,
        backend: str | None = None,
        origin: Mapping[str, Any] | None = None,
        outputs: Sequence[str] | None = None,
        error: str | None = None,
        ran: RunRecord | None = None,
    ) -> Work:
        """Return the write of a change: state (with the time), backend, reply, outputs, error,
        and what a finished job ran and made."""
        now = self._clock()
        changes: dict[str, Any] = {"updated_at": now}
        if state is not None:
            changes["state"] = state
        if backend is not None:
            changes["backend"] = backend
        if origin is not None:
            changes["origin"] = _dump(origin)
        if outputs is not None:
            changes["outputs"] = json.dumps(list(outputs))
        if error is not None:
            changes["error"] = error
        if ran is not None:
            changes |= {"graph": _dump(ran.graph), "files": json.dumps(list(ran.files))}
            changes["elapsed"] = ran.elapsed
        assignments = ", ".join(f"{column} = ?" for column in changes)

        def work(db: sqlite3.Connection) -> None:
            db.execute(f"UPDATE jobs SET {assignments} WHERE id = ?", (*changes.values(), job_id))  # noqa: S608 - column names are ours
            if state is not None:
                db.execute("INSERT INTO job_states VALUES (?, ?, ?)", (job_id, state, now))

        return work

    async def update(self, job_id: str, **fields: Any) -> None:
        """Record a change of a job at once (see `updating`)."""
        await self.write([self.updating(job_id, **fields)])

    async def get(self, job_id: str) -> JournalEntry | None:
        """Return one job, or None (also for a row that cannot be read)."""

        def work(db: sqlite3.Connection) -> JournalEntry | None:
            row = db.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
            return next(iter(entries([row] if row is not None else [])), None)

        return await self.call(work)

    async def images(self, job_id: str) -> tuple[ImageFile, ...]:
        """Return the input images a job was asked with, in order."""

        def work(db: sqlite3.Connection) -> tuple[ImageFile, ...]:
            rows = db.execute(
                "SELECT filename, data FROM job_images WHERE job_id = ? ORDER BY position",
                (job_id,),
            )
            return tuple(ImageFile(name, bytes(data)) for name, data in rows)

        return await self.call(work)

    async def unfinished(self) -> list[JournalEntry]:
        """Return every job that has not reached a final state, oldest first.

        A row that cannot be read is skipped with a warning, so it never stops the others.
        """
        marks = ", ".join("?" for _ in FINAL_STATES)
        query = f"SELECT * FROM jobs WHERE state NOT IN ({marks}) ORDER BY created_at"  # noqa: S608

        def work(db: sqlite3.Connection) -> list[JournalEntry]:
            return entries(db.execute(query, FINAL_STATES))

        return await self.call(work)

    def delivering(self, job_id: str) -> Work:
        """Return the write recording that the requester was shown how the job ended."""
        now = self._clock()

        def work(db: sqlite3.Connection) -> None:
            db.execute("UPDATE jobs SET delivered_at = ? WHERE id = ?", (now, job_id))

        return work

    async def undelivered(self) -> list[JournalEntry]:
        """Return jobs of the last day that ended but were never shown ended, oldest first."""
        marks = ", ".join("?" for _ in FINAL_STATES)
        query = (
            f"SELECT * FROM jobs WHERE state IN ({marks}) AND delivered_at IS NULL"  # noqa: S608
            " AND updated_at >= ? ORDER BY created_at"
        )
        since = self._clock() - UNDELIVERED_WINDOW

        def work(db: sqlite3.Connection) -> list[JournalEntry]:
            return entries(db.execute(query, (*FINAL_STATES, since)))

        return await self.call(work)

    async def recent(self, requester: str | None = None, *, limit: int = 10) -> list[JournalEntry]:
        """Return the newest jobs, of one requester or of everyone."""

        def work(db: sqlite3.Connection) -> list[JournalEntry]:
            if requester is None:
                rows = db.execute("SELECT * FROM jobs ORDER BY created_at DESC LIMIT ?", (limit,))
            else:
                rows = db.execute(
                    "SELECT * FROM jobs WHERE requester = ? ORDER BY created_at DESC LIMIT ?",
                    (requester, limit),
                )
            return entries(rows)

        return await self.call(work)

    async def states(self, job_id: str) -> list[tuple[str, float]]:
        """Return a job's state changes with their times, oldest first."""

        def work(db: sqlite3.Connection) -> list[tuple[str, float]]:
            rows = db.execute(
                "SELECT state, at FROM job_states WHERE job_id = ? ORDER BY rowid", (job_id,)
            )
            return [(str(state), float(at)) for state, at in rows]

        return await self.call(work)


def _dump(value: Mapping[str, Any]) -> str:
    return json.dumps(dict(value), sort_keys=True, default=str)
