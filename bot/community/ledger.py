"""Ledger: the jobs a gate let through that the journal does not count yet, so quotas stay exact.

The journal is written behind the queue: a job just let through (not yet queued), or just ended
(its end not yet written), is missing from what the journal counts. Each admission therefore
takes a Ticket at once, in the same step as its check, and the ticket counts until the journal
reports the job ended; the gate adds what the tickets hold to what the journal counts.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Protocol

from bot.jobs.model import JobResult

MemberKey = tuple[int | None, int]  # (guild id or None for DMs, user id)
TICKETS_KEPT = 10_000  # tickets kept before those of earlier days are swept away


class TrackedJob(Protocol):
    """What a ticket reads of its job (bot.jobs.model.Job)."""

    @property
    def id(self) -> str:
        """Return the job id."""

    @property
    def outcome(self) -> JobResult | None:
        """Return the result of an ended job, None while it runs."""

    @property
    def run_seconds(self) -> float:
        """Return the seconds ComfyUI has run it."""


@dataclass(slots=True)
class Ticket:
    """One admission's claim on its member's quota: pending until its job ends in the journal."""

    key: MemberKey
    at: float
    job: TrackedJob | None = None  # until it ends; its id stays
    job_id: str | None = None
    images: int = 0  # once the job ended: what it made, and how long it ran
    gpu_seconds: float = 0.0
    is_ended: bool = False
    is_void: bool = False  # given back: no job came of the admission

    def bind(self, job: TrackedJob) -> None:
        """Tie the claim to the job the admission became."""
        self.job, self.job_id = job, job.id

    def release(self) -> None:
        """Give the claim back unless a job took it (the request was refused or given up)."""
        if self.job_id is None:
            self.is_void = True

    def settle(self) -> None:
        """Once the job ended, keep only what it used (the job itself may be forgotten)."""
        job = self.job
        if job is None or (outcome := job.outcome) is None:
            return
        # Released results drop their bytes, not the list of files they saved.
        self.images = max(len(outcome.outputs), len(outcome.files))
        self.gpu_seconds = job.run_seconds
        self.is_ended, self.job = True, None


@dataclass(frozen=True, slots=True)
class Held:
    """What a member's tickets add to the journal's counts."""

    images: int = 0  # made by jobs that ended but are not journalled as ended yet
    gpu_seconds: float = 0.0
    unqueued: int = 0  # let through, not yet in the queue: each counts as a job in flight


@dataclass(slots=True)
class Ledger:
    """Every member's open tickets, in the order they were taken."""

    _tickets: dict[MemberKey, list[Ticket]] = field(default_factory=dict)
    _count: int = 0
    _kept_after_sweep: int = 0  # a sweep runs again once twice as many are kept (amortised)

    def __repr__(self) -> str:
        return f"Ledger({self._count} tickets)"

    def take(self, key: MemberKey, at: float) -> Ticket:
        """Open a ticket for a request let through now."""
        ticket = Ticket(key, at)
        self._tickets.setdefault(key, []).append(ticket)
        self._count += 1
        if self._count > max(TICKETS_KEPT, 2 * self._kept_after_sweep):
            self._sweep(at)
            self._kept_after_sweep = self._count
        return ticket

    def unqueued(self, key: MemberKey) -> int:
        """Return how many of a member's admissions are not queued yet (quotas aside: the
        member is exempt, so what ended is forgotten at once)."""
        kept = []
        for ticket in self._tickets.get(key, []):
            ticket.settle()
            if not (ticket.is_void or ticket.is_ended):
                kept.append(ticket)
        self._keep(key, kept)
        return sum(1 for ticket in kept if ticket.job_id is None)

    def held(self, key: MemberKey, *, since: float, journalled: Collection[str]) -> Held:
        """Return what a member's tickets since `since` add to the journal's counts.

        `journalled` names the jobs the journal already counts as ended: their tickets close.
        """
        images, seconds, unqueued = 0, 0.0, 0
        kept = []
        for ticket in self._tickets.get(key, []):
            ticket.settle()
            if ticket.is_void or ticket.job_id in journalled:
                continue
            if ticket.is_ended:
                if ticket.at < since:
                    continue  # an earlier day's job: the journal's day has no room for it
                images += ticket.images
                seconds += ticket.gpu_seconds
            elif ticket.job_id is None:
                unqueued += 1
            kept.append(ticket)
        self._keep(key, kept)
        return Held(images, seconds, unqueued)

    def _keep(self, key: MemberKey, kept: list[Ticket]) -> None:
        self._count -= len(self._tickets.get(key, [])) - len(kept)
        if kept:
            self._tickets[key] = kept
        else:
            self._tickets.pop(key, None)

    def _sweep(self, now: float) -> None:
        """Drop void and ended tickets of earlier days, of every member (bounded memory)."""
        for key in list(self._tickets):
            kept = []
            for ticket in self._tickets[key]:
                ticket.settle()
                if ticket.is_void or (ticket.is_ended and ticket.at < now - 86400.0):
                    continue
                kept.append(ticket)
            self._keep(key, kept)
