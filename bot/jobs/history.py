"""JobHistory: what earlier jobs asked for and how they went, from the queue or the journal."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from bot.errors import BotError, UnknownJob
from bot.jobs.journal import Journal
from bot.jobs.model import GenerationRequest, Job
from bot.jobs.recorded import request_from
from bot.jobs.servers import ServerStore
from bot.jobs.store import JournalEntry

NO_HISTORY = "This bot keeps no job history (it runs without a job journal)."
INPUTS_RELEASED = (
    "The input images of this job are no longer kept (there is no job journal); start it again."
)


class JobHistory:
    """Earlier jobs: the queue's own while it keeps them, the journal's (if any) after."""

    def __init__(self, journal: Journal | None, find: Callable[[str], Job | None]) -> None:
        self._journal = journal
        self._find = find

    def __repr__(self) -> str:
        return f"JobHistory(journal={self._journal is not None})"

    def check(self) -> None:
        """Refuse at once when there is no history to show.

        Raises:
            BotError: there is no journal, so no history.
        """
        self._require()

    def _require(self) -> Journal:
        if self._journal is None:
            raise BotError(NO_HISTORY)
        return self._journal

    async def recent(self, requester: str | None, *, limit: int) -> list[JournalEntry]:
        """Return the newest jobs from the journal, of one requester or of everyone.

        Raises:
            BotError: there is no journal, so no history.
        """
        return await self._require().recent(requester, limit=limit)

    async def recent_in(
        self, guild_id: int | None, requester: str | None, *, limit: int
    ) -> list[JournalEntry]:
        """Return the newest jobs of one server (None: DMs) from the journal.

        Raises:
            BotError: there is no journal, so no history.
        """
        store = self._require().store
        return await ServerStore(store).recent(guild_id, requester, limit=limit)

    async def past_request(self, job_id: str) -> GenerationRequest:
        """Return what an earlier job asked for (Reroll, Retry), also from the journal.

        The origin is left out: it says where the old job's reply lives, not the new one's.

        Raises:
            UnknownJob: neither the queue nor the journal knows the job.
            BotError: its input images were released and no journal holds them.
        """
        job = self._find(job_id)
        if job is not None and not job.released_inputs:
            return replace(job.request, origin={})
        journal = self._journal
        entry = await journal.get(job_id) if journal is not None else None
        if entry is None or journal is None:
            if job is not None:
                raise BotError(INPUTS_RELEASED)
            raise UnknownJob(job_id)
        return replace(request_from(entry, await journal.images(job_id)), origin={})
