"""Log context: the job, prompt, guild and server the code running now works for.

The fields live in a ContextVar, so each job's task, and whatever it awaits or starts, carries
its own; `bot.ops.logs` adds them to every log line. A ContextVar is per task, not shared state:
binding in one job's task never shows in another's.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextvars import ContextVar
from types import MappingProxyType

from yarl import URL

LOG_FIELDS = ("job_id", "prompt_id", "guild_id", "server")

_EMPTY: Mapping[str, str] = MappingProxyType({})
_FIELDS: ContextVar[Mapping[str, str]] = ContextVar("comfycord_log_fields", default=_EMPTY)


def bind(**fields: object) -> None:
    """Add fields (None skipped) to the running task's log context, from now on."""
    chosen = {key: str(value) for key, value in fields.items() if value is not None}
    unknown = set(chosen) - set(LOG_FIELDS)
    if unknown:
        raise ValueError(f"unknown log fields {sorted(unknown)}; known: {LOG_FIELDS}")
    _FIELDS.set(MappingProxyType({**_FIELDS.get(), **chosen}))


def current() -> Mapping[str, str]:
    """Return the log fields bound in the running task."""
    return _FIELDS.get()


def server_name(url: str) -> str:
    """Return a server's URL without user, password, path or query: safe for logs and labels."""
    parsed = URL(url)
    if not parsed.host:
        return url.split("@")[-1]
    return str(parsed.origin())
