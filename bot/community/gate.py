"""Gate: the checks before anything is queued (where, who, workflow, terms, jobs, quota)."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from bot.community import options
from bot.community.guild import GuildSettings
from bot.community.ledger import Ledger, Ticket
from bot.community.quotas import DAY, Quota, Usage, check, day_start
from bot.community.terms import TermMatch
from bot.errors import BotError, NotAllowed, TooManyJobs
from bot.jobs.servers import DayUsage, ServerStore

LAST_JOBS_KEPT = 10_000  # members whose latest job time is kept in memory before a clean-up


@dataclass(frozen=True, slots=True)
class Member:
    """Who asks and where, as the front door saw it."""

    user_id: int
    guild_id: int | None  # None: a direct message
    role_ids: frozenset[int] = frozenset()
    channel_ids: tuple[int, ...] = ()  # the channel, and a thread's parent
    is_manager: bool = False  # has Manage Server there
    is_owner: bool = False  # owns the application

    @property
    def requester(self) -> str:
        """Return the requester id jobs carry."""
        return str(self.user_id)


class BannedTermUsed(BotError):
    """A request holds one of the server's banned terms."""

    def __init__(self, match: TermMatch) -> None:
        super().__init__(
            f"Your {match.field} contains the banned term “{match.term}”; nothing was queued."
        )
        self.match = match


class OpenJobs(Protocol):
    """Where a member's unfinished jobs are counted (bot.jobs.queue.JobQueue)."""

    def active_count(self, requester: str, *, guild_id: int | None = None) -> int:
        """Return how many of this requester's jobs of one server are open."""


@dataclass(frozen=True, slots=True)
class Admission:
    """What the gate decided for a request it let through, and the quota it holds."""

    rules: GuildSettings
    ticket: Ticket
    priority: int = 0


@dataclass(slots=True)
class Gate:
    """Each server's rules (cached), changed through `change`, and the checks before queueing."""

    defaults: GuildSettings
    servers: ServerStore | None
    allow_dms: bool = False
    clock: Callable[[], float] = time.time
    _rules: dict[int, GuildSettings] = field(default_factory=dict, repr=False)
    _last_job: dict[tuple[int | None, int], float] = field(default_factory=dict, repr=False)
    _ledger: Ledger = field(default_factory=Ledger, repr=False)

    async def rules(self, guild_id: int | None) -> GuildSettings:
        """Return a server's rules (a DM's are the defaults)."""
        if guild_id is None or self.servers is None:
            return self.defaults
        if guild_id not in self._rules:
            stored = await self.servers.settings(guild_id)
            self._rules[guild_id] = options.apply(self.defaults, stored)
        return self._rules[guild_id]

    async def change(
        self, guild_id: int, edit: Callable[[Mapping[str, Any]], dict[str, Any]]
    ) -> GuildSettings:
        """Apply `edit` to a server's stored overrides, store them, and return the new rules.

        Raises:
            BotError: this bot keeps no journal, so it cannot keep settings.
            BadSetting: from `edit`.
        """
        if self.servers is None:
            raise BotError("This bot keeps no journal, so servers cannot change settings.")
        overrides = edit((await self.rules(guild_id)).overrides)
        await self.servers.save_settings(guild_id, overrides)
        self._rules[guild_id] = options.apply(self.defaults, overrides)
        return self._rules[guild_id]

    async def admit(
        self, member: Member, *, workflow: str, fields: Mapping[str, str | None], jobs: OpenJobs
    ) -> Admission:
        """Let a request through or refuse it; `jobs` counts the member's unfinished jobs.

        The admission holds a ticket on the member's quota: bind it to the job the request
        becomes, or release it when the request is given up.

        Raises:
            NotAllowed: DMs off, a channel, role or workflow not allowed here.
            BannedTermUsed: a banned term in the prompt, negative or flags.
            TooManyJobs: at this server's jobs-at-once limit.
            QuotaExceeded: over today's quota or inside the cooldown.
        """
        rules = await self.rules(member.guild_id)
        check_place(rules, member, allow_dms=self.allow_dms)
        if not rules.allows_workflow(workflow):
            allowed = ", ".join(sorted(rules.allowed_workflows))
            raise NotAllowed(f"The workflow {workflow} is not allowed here; allowed: {allowed}.")
        if (found := rules.banned_terms.find(fields)) is not None:
            raise BannedTermUsed(found)
        is_exempt = self.is_exempt(rules, member)
        stored = None if is_exempt else await self._stored(member)
        # Nothing awaits from here to the ticket: requests of one member that race each other
        # are checked one after the other, each counting the tickets taken before it.
        active = jobs.active_count(member.requester, guild_id=member.guild_id)
        key = (member.guild_id, member.user_id)
        if is_exempt:
            if active + self._ledger.unqueued(key) >= rules.jobs_per_member:
                raise TooManyJobs(rules.jobs_per_member)
        else:
            quota, usage = self._usage(member, rules, stored, active)
            if usage.pending >= rules.jobs_per_member:
                raise TooManyJobs(rules.jobs_per_member)
            check(quota, usage, self.clock())
        self._note_job(member)
        ticket = self._ledger.take(key, self.clock())
        return Admission(rules, ticket, rules.priority_for(member.role_ids))

    def _note_job(self, member: Member) -> None:
        """Remember when a member's latest job was let through (the journal may lag behind)."""
        now = self.clock()
        self._last_job[(member.guild_id, member.user_id)] = now
        if len(self._last_job) > LAST_JOBS_KEPT:  # bounded: the journal has older ones
            old = [key for key, at in self._last_job.items() if at < now - DAY]
            for key in old:
                del self._last_job[key]

    def is_exempt(self, rules: GuildSettings, member: Member) -> bool:
        """Tell whether quotas skip this member (managers and the owner, unless switched off)."""
        return rules.exempt_admins and (member.is_manager or member.is_owner)

    async def usage(
        self, member: Member, rules: GuildSettings, *, active: int = 0
    ) -> tuple[Quota, Usage]:
        """Return a member's quota here and what they used of it today."""
        return self._usage(member, rules, await self._stored(member), active)

    async def _stored(self, member: Member) -> DayUsage | None:
        """Return what the journal counts of a member's day, if there is a journal."""
        if self.servers is None:
            return None
        return await self.servers.usage(member.guild_id, member.requester, day_start(self.clock()))

    def _usage(
        self, member: Member, rules: GuildSettings, stored: DayUsage | None, active: int
    ) -> tuple[Quota, Usage]:
        """Add what the journal counts, the open jobs and the tickets it does not count yet."""
        quota = rules.quota_for(member.role_ids)
        key = (member.guild_id, member.user_id)
        journalled = stored.ended if stored is not None else frozenset()
        held = self._ledger.held(key, since=day_start(self.clock()), journalled=journalled)
        pending = active + held.unqueued
        last = self._last_job.get(key)
        if stored is None:
            return quota, Usage(held.images, held.gpu_seconds, last, pending)
        times = [t for t in (last, stored.last_job_at) if t is not None]
        images, seconds = stored.images + held.images, stored.gpu_seconds + held.gpu_seconds
        return quota, Usage(images, seconds, max(times, default=None), pending)


def check_place(rules: GuildSettings, member: Member, *, allow_dms: bool) -> None:
    """Refuse requests from DMs (unless allowed), other channels, or members without a role.

    Raises:
        NotAllowed: with a message naming what is allowed.
    """
    if member.guild_id is None:
        if not allow_dms:
            raise NotAllowed("I don't take requests in direct messages; ask in a server.")
        return
    channels, roles = rules.allowed_channel_ids, rules.allowed_role_ids
    if channels and not channels.intersection(member.channel_ids):
        where = ", ".join(f"<#{channel}>" for channel in sorted(channels))
        raise NotAllowed(f"I only take requests in {where}.")
    if roles and not roles.intersection(member.role_ids):
        which = ", ".join(f"<@&{role}>" for role in sorted(roles))
        raise NotAllowed(f"You need one of these roles to generate images: {which}.")
