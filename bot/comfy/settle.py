"""The outcome of a prompt that ended while we were not listening, from /history or the jobs API."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Any

from bot.comfy.client import ComfyClient
from bot.comfy.models import HistoryEntry, JobRecord
from bot.comfy.runs import Outcome, PromptFailure, PromptResult


class Ended(enum.Enum):
    """What a server says of a prompt that left its queue, when it gives no result."""

    GOING = "going"  # back in the queue or running: it entered after the snapshot
    UNKNOWN = "unknown"  # the server never heard of it, or forgot it (a restart)


async def ended(client: ComfyClient, prompt_id: str, *, has_jobs_api: bool) -> PromptResult | Ended:
    """Ask the jobs API (or /history on older servers) how a prompt ended."""
    if has_jobs_api:
        record = await client.job(prompt_id)
        if record is None:
            return Ended.UNKNOWN
        return from_job(prompt_id, record) or Ended.GOING
    entry = await client.history(prompt_id)
    return from_history(prompt_id, entry) if entry is not None else Ended.UNKNOWN


def from_history(prompt_id: str, entry: HistoryEntry) -> PromptResult:
    """Return the result a /history entry records."""
    if entry.status == "success" and entry.completed:
        return PromptResult(prompt_id, Outcome.SUCCESS, entry.files)
    if (error := entry.message("execution_error")) is not None:
        return PromptResult(prompt_id, Outcome.ERROR, entry.files, _failure(error))
    if entry.message("execution_interrupted") is not None:
        return PromptResult(prompt_id, Outcome.INTERRUPTED)
    return PromptResult(prompt_id, Outcome.LOST)


def from_job(prompt_id: str, record: JobRecord) -> PromptResult | None:
    """Return the result a jobs-API record shows; None while the prompt is pending or running."""
    match record.status:
        case "completed":
            return PromptResult(prompt_id, Outcome.SUCCESS, record.files)
        case "failed":
            failure = _failure(record.execution_error or {})
            return PromptResult(prompt_id, Outcome.ERROR, record.files, failure)
        case "cancelled":
            return PromptResult(prompt_id, Outcome.INTERRUPTED)
        case _:
            return None


def _failure(error: Mapping[str, Any]) -> PromptFailure:
    def text(key: str) -> str | None:
        value = error.get(key)
        return str(value) if value is not None else None

    return PromptFailure(
        text("node_id"),
        text("node_type"),
        text("exception_type") or "",
        text("exception_message") or "",
    )
