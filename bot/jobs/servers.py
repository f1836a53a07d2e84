"""ServerStore: each server's settings and its members' usage, in the journal's SQLite file.

The one place that scopes what the journal holds to a server: listings, quotas and settings
all read through it (a direct message's jobs have no server: `guild_id` None).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from bot.jobs.rows import entries
from bot.jobs.store import FINAL_STATES, JobStore, JournalEntry


@dataclass(frozen=True, slots=True)
class DayUsage:
    """A member's jobs in one server since a moment (the start of their day)."""

    images: int = 0
    gpu_seconds: float = 0.0  # from ComfyUI's execution start to the job's end
    last_job_at: float | None = None  # the latest job asked for, whenever it was
    pending: int = 0  # jobs asked for that have not ended
    ended: frozenset[str] = field(default=frozenset(), compare=False)  # the ended jobs' ids


class ServerStore:
    """Read and write per-server rows of the journal; shares the JobStore's thread."""

    def __init__(self, store: JobStore) -> None:
        self.store = store

    def __repr__(self) -> str:
        return f"ServerStore({self.store!r})"

    async def settings(self, guild_id: int) -> dict[str, Any]:
        """Return what a server has set (only what differs from the defaults)."""

        def work(db: sqlite3.Connection) -> dict[str, Any]:
            row = db.execute("SELECT data FROM guild_settings WHERE guild_id = ?", (guild_id,))
            found = row.fetchone()
            return dict(json.loads(found[0])) if found is not None else {}

        return await self.store.call(work)

    async def all_settings(self) -> list[tuple[int, dict[str, Any]]]:
        """Return every server that changed something, with what it changed."""

        def work(db: sqlite3.Connection) -> list[tuple[int, dict[str, Any]]]:
            rows = db.execute("SELECT guild_id, data FROM guild_settings ORDER BY guild_id")
            return [(int(guild), dict(json.loads(data))) for guild, data in rows]

        return await self.store.call(work)

    async def save_settings(self, guild_id: int, data: Mapping[str, Any]) -> None:
        """Replace what a server has set; an empty mapping forgets the server's row."""
        text, now = json.dumps(dict(data), sort_keys=True), self.store.clock()

        def work(db: sqlite3.Connection) -> None:
            if not data:
                db.execute("DELETE FROM guild_settings WHERE guild_id = ?", (guild_id,))
                return
            db.execute(
                "INSERT INTO guild_settings VALUES (?, ?, ?) ON CONFLICT (guild_id)"
                " DO UPDATE SET data = excluded.data, updated_at = excluded.updated_at",
                (guild_id, text, now),
            )

        await self.store.call(work)

    async def usage(self, guild_id: int | None, requester: str, since: float) -> DayUsage:
        """Return a member's images, GPU-seconds and open jobs since `since` in one server."""
        marks = ", ".join("?" for _ in FINAL_STATES)
        query = (
            "SELECT id, state, outputs,"  # noqa: S608 - only placeholders are formatted in
            " (SELECT MIN(at) FROM job_states s WHERE s.job_id = jobs.id AND s.state = 'running'),"
            f" (SELECT MAX(at) FROM job_states s WHERE s.job_id = jobs.id AND s.state IN ({marks}))"
            " FROM jobs WHERE guild_id IS ? AND requester = ? AND created_at >= ?"
        )

        def work(db: sqlite3.Connection) -> DayUsage:
            images, seconds, pending, ended_ids = 0, 0.0, 0, set()
            for job_id, state, outputs, started, ended in db.execute(
                query, (*FINAL_STATES, guild_id, requester, since)
            ):
                if state not in FINAL_STATES:
                    pending += 1
                    continue
                ended_ids.add(str(job_id))
                images += len(json.loads(outputs))
                if started is not None and ended is not None:
                    seconds += max(ended - started, 0.0)
            last = db.execute(
                "SELECT MAX(created_at) FROM jobs WHERE guild_id IS ? AND requester = ?",
                (guild_id, requester),
            ).fetchone()[0]
            return DayUsage(images, seconds, last, pending, frozenset(ended_ids))

        return await self.store.call(work)

    async def recent(
        self, guild_id: int | None, requester: str | None = None, *, limit: int = 10
    ) -> list[JournalEntry]:
        """Return the newest jobs of one server, of one member or of everyone there."""
        query = "SELECT * FROM jobs WHERE guild_id IS ?"
        args: list[Any] = [guild_id]
        if requester is not None:
            query += " AND requester = ?"
            args.append(requester)
        query += " ORDER BY created_at DESC LIMIT ?"

        def work(db: sqlite3.Connection) -> list[JournalEntry]:
            return entries(db.execute(query, (*args, limit)))  # an unreadable row is skipped

        return await self.store.call(work)
