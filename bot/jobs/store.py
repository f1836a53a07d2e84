"""The job journal: an embedded SQLite file recording every job, written off the event loop."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Self, TypeVar

from bot.images import ImageFile
from bot.jobs.progress import JobState

T = TypeVar("T")

# Each entry migrates the schema from version N to N+1; never edit one that has shipped.
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE jobs (
        id TEXT PRIMARY KEY,
        requester TEXT NOT NULL,
        workflow TEXT NOT NULL,
        params TEXT NOT NULL,
        origin TEXT NOT NULL,
        backend TEXT,
        state TEXT NOT NULL,
        created_at REAL NOT NULL,
        updated_at REAL NOT NULL,
        outputs TEXT NOT NULL DEFAULT '[]',
        error TEXT
    );
    CREATE INDEX jobs_requester ON jobs (requester, created_at);
    CREATE INDEX jobs_state ON jobs (state);
    CREATE TABLE job_states (job_id TEXT NOT NULL, state TEXT NOT NULL, at REAL NOT NULL);
    CREATE TABLE job_images (
        job_id TEXT NOT NULL, position INTEGER NOT NULL, filename TEXT NOT NULL, data BLOB NOT NULL,
        PRIMARY KEY (job_id, position)
    );
    CREATE TABLE client_ids (backend TEXT PRIMARY KEY, client_id TEXT NOT NULL);
    """,
    # When the front door told the requester how the job ended (NULL: not yet).
    """
    ALTER TABLE jobs ADD COLUMN delivered_at REAL;
    UPDATE jobs SET delivered_at = updated_at
        WHERE state IN ('done', 'failed', 'cancelled', 'lost');
    """,
)
UNDELIVERED_WINDOW = 86400.0  # seconds: ended jobs older than this are not posted any more

FINAL_STATES = tuple(str(state) for state in JobState if state.is_final)


@dataclass(frozen=True, slots=True)
class JournalEntry:
    """One job as the journal remembers it."""

    id: str
    requester: str
    workflow: str
    params: Mapping[str, Any]
    origin: Mapping[str, Any] = field(repr=False)  # may hold an interaction token
    backend: str | None
    state: str
    created_at: float
    updated_at: float
    outputs: tuple[str, ...]
    error: str | None

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> Self:
        """Build from a `jobs` row."""
        return cls(
            id=row["id"],
            requester=row["requester"],
            workflow=row["workflow"],
            params=json.loads(row["params"]),
            origin=json.loads(row["origin"]),
            backend=row["backend"],
            state=row["state"],
            created_at=row["created_at"],
            updated_at=row["updated_at"],
            outputs=tuple(json.loads(row["outputs"])),
            error=row["error"],
        )


class JobStore:
    """Record jobs in SQLite; every call runs on one worker thread, never on the event loop."""

    def __init__(self, path: Path, *, clock: Callable[[], float] = time.time) -> None:
        self.path = path
        self._clock = clock
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="journal")
        self._db: sqlite3.Connection | None = None

    def __repr__(self) -> str:
        return f"JobStore({str(self.path)!r})"

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

    async def _call(self, work: Callable[[sqlite3.Connection], T]) -> T:
        def run() -> T:
            if self._db is None:
                raise RuntimeError("the journal is not open")
            with self._db:
                return work(self._db)

        return await asyncio.get_running_loop().run_in_executor(self._executor, run)

    async def open(self) -> None:
        """Open (or create) the database file and bring its schema up to date."""

        def connect() -> None:
            self._db = sqlite3.connect(self.path, check_same_thread=False)
            self._db.row_factory = sqlite3.Row
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            migrate(self._db)

        await asyncio.get_running_loop().run_in_executor(self._executor, connect)

    async def close(self) -> None:
        """Close the database and its worker thread."""
        if self._db is not None:
            db, self._db = self._db, None
            await asyncio.get_running_loop().run_in_executor(self._executor, db.close)
        self._executor.shutdown(wait=True)

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

        return await self._call(work)

    async def add(
        self,
        job_id: str,
        *,
        requester: str,
        workflow: str,
        params: Mapping[str, Any],
        origin: Mapping[str, Any],
        images: Sequence[ImageFile] = (),
        state: str = "waiting",
    ) -> None:
        """Record a new job with what was asked and where it came from."""
        now = self._clock()
        row = (job_id, requester, workflow, _dump(params), _dump(origin), state, now, now)

        def work(db: sqlite3.Connection) -> None:
            db.execute(
                "INSERT INTO jobs (id, requester, workflow, params, origin, state, created_at,"
                " updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                row,
            )
            db.execute("INSERT INTO job_states VALUES (?, ?, ?)", (job_id, state, now))
            db.executemany(
                "INSERT INTO job_images VALUES (?, ?, ?, ?)",
                [(job_id, i, image.filename, image.data) for i, image in enumerate(images)],
            )

        await self._call(work)

    async def update(
        self,
        job_id: str,
        *,
        state: str | None = None,
        backend: str | None = None,
        origin: Mapping[str, Any] | None = None,
        outputs: Sequence[str] | None = None,
        error: str | None = None,
    ) -> None:
        """Record a change of a job: its state (with the time), backend, reply, outputs, error."""
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
        assignments = ", ".join(f"{column} = ?" for column in changes)

        def work(db: sqlite3.Connection) -> None:
            db.execute(f"UPDATE jobs SET {assignments} WHERE id = ?", (*changes.values(), job_id))  # noqa: S608 - column names are ours
            if state is not None:
                db.execute("INSERT INTO job_states VALUES (?, ?, ?)", (job_id, state, now))

        await self._call(work)

    async def get(self, job_id: str) -> JournalEntry | None:
        """Return one job, or None."""

        def work(db: sqlite3.Connection) -> JournalEntry | None:
            row = db.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
            return JournalEntry.from_row(row) if row is not None else None

        return await self._call(work)

    async def images(self, job_id: str) -> tuple[ImageFile, ...]:
        """Return the input images a job was asked with, in order."""

        def work(db: sqlite3.Connection) -> tuple[ImageFile, ...]:
            rows = db.execute(
                "SELECT filename, data FROM job_images WHERE job_id = ? ORDER BY position",
                (job_id,),
            )
            return tuple(ImageFile(name, bytes(data)) for name, data in rows)

        return await self._call(work)

    async def unfinished(self) -> list[JournalEntry]:
        """Return every job that has not reached a final state, oldest first."""
        marks = ", ".join("?" for _ in FINAL_STATES)
        query = f"SELECT * FROM jobs WHERE state NOT IN ({marks}) ORDER BY created_at"  # noqa: S608

        def work(db: sqlite3.Connection) -> list[JournalEntry]:
            return [JournalEntry.from_row(r) for r in db.execute(query, FINAL_STATES)]

        return await self._call(work)

    async def delivered(self, job_id: str) -> None:
        """Record that the requester was shown how the job ended."""
        now = self._clock()

        def work(db: sqlite3.Connection) -> None:
            db.execute("UPDATE jobs SET delivered_at = ? WHERE id = ?", (now, job_id))

        await self._call(work)

    async def undelivered(self) -> list[JournalEntry]:
        """Return jobs of the last day that ended but were never shown ended, oldest first."""
        marks = ", ".join("?" for _ in FINAL_STATES)
        query = (
            f"SELECT * FROM jobs WHERE state IN ({marks}) AND delivered_at IS NULL"  # noqa: S608
            " AND updated_at >= ? ORDER BY created_at"
        )
        since = self._clock() - UNDELIVERED_WINDOW

        def work(db: sqlite3.Connection) -> list[JournalEntry]:
            return [JournalEntry.from_row(r) for r in db.execute(query, (*FINAL_STATES, since))]

        return await self._call(work)

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
            return [JournalEntry.from_row(r) for r in rows]

        return await self._call(work)

    async def states(self, job_id: str) -> list[tuple[str, float]]:
        """Return a job's state changes with their times, oldest first."""

        def work(db: sqlite3.Connection) -> list[tuple[str, float]]:
            rows = db.execute(
                "SELECT state, at FROM job_states WHERE job_id = ? ORDER BY rowid", (job_id,)
            )
            return [(str(state), float(at)) for state, at in rows]

        return await self._call(work)


def migrate(db: sqlite3.Connection) -> int:
    """Apply every migration the database has not seen; return the schema version."""
    version = int(db.execute("PRAGMA user_version").fetchone()[0])
    for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
        db.executescript(f"BEGIN; {script}; PRAGMA user_version = {number}; COMMIT;")
    return len(MIGRATIONS)


def _dump(value: Mapping[str, Any]) -> str:
    return json.dumps(dict(value), sort_keys=True, default=str)
