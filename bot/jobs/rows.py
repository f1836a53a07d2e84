"""The journal's schema (migrations) and its rows read back as JournalEntry values."""

from __future__ import annotations

import enum
import json
import logging
import sqlite3
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Self

from bot.jobs.progress import JobState

log = logging.getLogger(__name__)

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
    """
    ALTER TABLE jobs ADD COLUMN images_dropped INTEGER NOT NULL DEFAULT 0;
    CREATE INDEX jobs_ended ON jobs (state, updated_at);
    CREATE INDEX job_states_job ON job_states (job_id);
    """,
    # Iterating on results after a restart: the graph that ran (recipe), where ComfyUI keeps
    # each output (U<n>, Upscale, Vary), the time taken; and members' /settings.
    """
    ALTER TABLE jobs ADD COLUMN graph TEXT;
    ALTER TABLE jobs ADD COLUMN files TEXT NOT NULL DEFAULT '[]';
    ALTER TABLE jobs ADD COLUMN elapsed REAL;
    CREATE TABLE member_settings (user_id TEXT PRIMARY KEY, settings TEXT NOT NULL);
    """,
    # When the front door showed the requester how the job ended (NULL: not yet).
    """
    ALTER TABLE jobs ADD COLUMN delivered_at REAL;
    UPDATE jobs SET delivered_at = updated_at
        WHERE state IN ('done', 'failed', 'cancelled', 'lost');
    """,
    # Jobs belong to a server (NULL: a direct message or another front door); servers keep
    # their own settings. Earlier Discord jobs get their server from where their reply is.
    """
    ALTER TABLE jobs ADD COLUMN guild_id INTEGER;
    UPDATE jobs SET guild_id = CAST(json_extract(origin, '$.guild_id') AS INTEGER)
        WHERE json_valid(origin) AND json_extract(origin, '$.guild_id') IS NOT NULL;
    CREATE INDEX jobs_guild ON jobs (guild_id, requester, created_at);
    CREATE TABLE guild_settings (
        guild_id INTEGER PRIMARY KEY, data TEXT NOT NULL, updated_at REAL NOT NULL
    );
    """,
    # A done job's outputs until its end was shown (bot/jobs/outbox.py).
    """
    CREATE TABLE job_outputs (
        job_id TEXT NOT NULL, position INTEGER NOT NULL, filename TEXT NOT NULL, data BLOB NOT NULL,
        PRIMARY KEY (job_id, position)
    );
    """,
)


class StoredState(enum.StrEnum):
    """A job's state as the journal keeps it: the JobStates, and the moment of sending."""

    WAITING = "waiting"
    # Written, and flushed, before the prompt goes to ComfyUI: after a crash in that moment
    # ComfyUI may or may not know the prompt, so recovery asks it.
    SUBMITTING = "submitting"
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"
    LOST = "lost"

    @classmethod
    def of(cls, state: JobState) -> StoredState:
        """Return how a job state is stored."""
        return cls(state.value)

    @property
    def may_be_in_comfy(self) -> bool:
        """Tell whether ComfyUI may know the prompt (it was written before it was sent)."""
        return self in (StoredState.SUBMITTING, StoredState.QUEUED, StoredState.RUNNING)


FINAL_STATES = tuple(str(StoredState.of(state)) for state in JobState if state.is_final)


@dataclass(frozen=True, slots=True)
class JournalEntry:
    """One job as the journal remembers it."""

    id: str
    requester: str
    workflow: str
    params: Mapping[str, Any]
    origin: Mapping[str, Any] = field(repr=False)  # may hold an interaction token
    backend: str | None
    state: StoredState
    created_at: float
    updated_at: float
    outputs: tuple[str, ...]
    error: str | None
    has_dropped_images: bool = False  # its input images were pruned (JOURNAL_IMAGE_RETENTION_HOURS)
    graph: Mapping[str, Any] | None = field(default=None, repr=False)  # the graph that ran
    files: tuple[Mapping[str, str], ...] = ()  # {filename, subfolder, type} per output
    elapsed: float | None = None
    guild_id: int | None = None  # the Discord server it was asked in

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
            state=StoredState(row["state"]),
            created_at=row["created_at"],
            updated_at=row["updated_at"],
            outputs=tuple(json.loads(row["outputs"])),
            error=row["error"],
            has_dropped_images=bool(row["images_dropped"]),
            graph=json.loads(row["graph"]) if row["graph"] else None,
            files=tuple(json.loads(row["files"])),
            elapsed=row["elapsed"],
            guild_id=row["guild_id"],
        )


@dataclass(frozen=True, slots=True)
class RunRecord:
    """What a finished job ran and made: the graph, its output files, the time it took."""

    graph: Mapping[str, Any]
    files: Sequence[Mapping[str, str]]
    elapsed: float


def entries(rows: Iterable[sqlite3.Row]) -> list[JournalEntry]:
    """Return the readable rows as entries; log and skip the others (bad JSON, wrong types)."""
    entries = []
    for row in rows:
        try:
            entries.append(JournalEntry.from_row(row))
        except (ValueError, TypeError, KeyError) as exc:
            log.warning("journal row %s cannot be read, skipped: %s", row["id"], exc)
    return entries


def migrate(db: sqlite3.Connection) -> int:
    """Apply every migration the database has not seen; return the schema version."""
    version = int(db.execute("PRAGMA user_version").fetchone()[0])
    for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
        db.executescript(f"BEGIN; {script}; PRAGMA user_version = {number}; COMMIT;")
    return len(MIGRATIONS)
