"""Members' own defaults (/settings): workflow, aspect, count, private results; in the journal.

Without a journal they last as long as the process; with one they survive restarts.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from typing import Any

from bot.jobs.aspect import ASPECTS
from bot.jobs.flags import MAX_COUNT
from bot.jobs.store import JobStore


@dataclass(frozen=True, slots=True)
class MemberDefaults:
    """What one member chose with /settings; None means "the bot's default"."""

    workflow: str | None = None
    aspect: str | None = None
    count: int | None = None
    is_private: bool = False

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> MemberDefaults:
        """Build from what the journal stored, dropping values no longer valid."""
        workflow, aspect, count = data.get("workflow"), data.get("aspect"), data.get("count")
        return cls(
            workflow=workflow if isinstance(workflow, str) and workflow else None,
            aspect=aspect if aspect in ASPECTS else None,
            count=count if isinstance(count, int) and 1 <= count <= MAX_COUNT else None,
            is_private=data.get("is_private") is True,
        )

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON the journal stores."""
        return asdict(self)

    def with_changes(self, **changes: Any) -> MemberDefaults:
        """Return a copy with the given fields changed (None values are left out)."""
        return replace(self, **{key: value for key, value in changes.items() if value is not None})


class Preferences:
    """Read and save members' defaults, in the journal's store when there is one."""

    def __init__(self, store: JobStore | None = None) -> None:
        self._store = store
        self._memory: dict[str, MemberDefaults] = {}

    def __repr__(self) -> str:
        return f"Preferences(store={self._store!r})"

    async def get(self, user_id: str) -> MemberDefaults:
        """Return a member's defaults (all unset if they never chose any)."""
        if user_id in self._memory:
            return self._memory[user_id]
        found = MemberDefaults()
        if self._store is not None:
            found = MemberDefaults.from_dict(await self._stored(self._store, user_id))
        self._memory[user_id] = found
        return found

    async def save(self, user_id: str, defaults: MemberDefaults) -> None:
        """Replace a member's defaults."""
        self._memory[user_id] = defaults
        if self._store is not None:
            row = (user_id, json.dumps(defaults.to_dict(), sort_keys=True))

            def work(db: sqlite3.Connection) -> None:
                db.execute("INSERT OR REPLACE INTO member_settings VALUES (?, ?)", row)

            await self._store.write([work])

    @staticmethod
    async def _stored(store: JobStore, user_id: str) -> dict[str, Any]:
        """Return the /settings one member saved ({} if none)."""

        def work(db: sqlite3.Connection) -> dict[str, Any]:
            query = "SELECT settings FROM member_settings WHERE user_id = ?"
            row = db.execute(query, (user_id,)).fetchone()
            return dict(json.loads(row[0])) if row is not None else {}

        return await store.call(work)
