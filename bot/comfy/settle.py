"""Reconcile: when to ask, and how prompts ended while we were not listening (history, jobs API)."""

from __future__ import annotations

import enum
import logging
import time
from collections.abc import Mapping, Sequence
from typing import Any

from bot.comfy.client import ComfyClient
from bot.comfy.errors import ComfyError
from bot.comfy.models import HistoryEntry, JobRecord
from bot.comfy.runs import Outcome, PromptFailure, PromptResult, PromptRun
from bot.comfy.stream import EventStream

log = logging.getLogger(__name__)


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


async def reconcile(
    client: ComfyClient,
    stream: EventStream,
    runs: Sequence[PromptRun],
    *,
    has_jobs_api: bool,
    silence_limit: float,
) -> None:
    """Settle each run ComfyUI's queue no longer holds; one /queue for all of them.

    Raises:
        ComfyError: ComfyUI could not be asked, or answered strangely (runs stay as they are).
    """
    queue = await client.queue()
    if stream.silence > silence_limit and any(queue.is_running(run.prompt_id) for run in runs):
        # ComfyUI drops a client_id's registration when its *older* socket closes late (a
        # half-open connection after a blip): the new socket then hears nothing. Our prompt
        # is running but silent: register again.
        log.warning(
            "%s silent for %.0fs while running our prompt: reconnecting",
            client.shown_url,
            stream.silence,
        )
        await stream.reconnect()
    for run in runs:
        if queue.is_running(run.prompt_id) or queue.is_pending(run.prompt_id):
            continue
        found = await ended(client, run.prompt_id, has_jobs_api=has_jobs_api)
        if found is Ended.UNKNOWN:
            log.warning("%s is unknown to %s (restarted?): lost", run, client.shown_url)
            run.lose()
        elif found is not Ended.GOING:  # (going: it entered the queue after the snapshot)
            run.finish(found)


class Reconciler:
    """When one backend asks /queue about its runs, and the asking (a failure is only logged)."""

    def __init__(
        self,
        client: ComfyClient,
        stream: EventStream,
        *,
        silence_limit: float,
        reconcile_interval: float,
    ) -> None:
        self.client = client
        self.stream = stream
        self.silence_limit = silence_limit
        self.reconcile_interval = reconcile_interval
        self._reconciled_at = time.monotonic()

    def __repr__(self) -> str:
        return f"Reconciler({self.client.shown_url!r})"

    def is_due(self, outstanding: Sequence[PromptRun]) -> bool:
        """Tell whether /queue should be asked: silent while ours runs, or an interval passed.

        Silence while our prompts only wait is normal (another client's run talks to its own
        socket only); the interval still catches a prompt that started unheard.
        """
        if not outstanding:
            return False
        since = time.monotonic() - self._reconciled_at
        is_silent = self.stream.silence > self.silence_limit and since > self.silence_limit
        return (is_silent and any(run.is_started for run in outstanding)) or (
            since >= self.reconcile_interval
        )

    async def reconcile(self, runs: Sequence[PromptRun], *, has_jobs_api: bool) -> None:
        """Settle every run that ended, or vanished, while we were away."""
        self._reconciled_at = time.monotonic()
        if not runs:
            return
        try:
            await reconcile(
                self.client,
                self.stream,
                runs,
                has_jobs_api=has_jobs_api,
                silence_limit=self.silence_limit,
            )
        except ComfyError as exc:
            log.warning("reconcile with %s failed: %s", self.client.shown_url, exc)


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
