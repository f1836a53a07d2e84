"""Members' own defaults (/settings): workflow, aspect, count, private results; in the journal.

Without a journal they last as long as the process; with one they survive restarts.
"""

from __future__ import annotations

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
            found = MemberDefaults.from_dict(await self._store.member_settings(user_id))
        self._memory[user_id] = found
        return found

    async def save(self, user_id: str, defaults: MemberDefaults) -> None:
        """Replace a member's defaults."""
        self._memory[user_id] = defaults
        if self._store is not None:
            await self._store.save_member_settings(user_id, defaults.to_dict())
