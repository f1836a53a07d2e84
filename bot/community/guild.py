"""GuildSettings: one server's rules, the .env defaults with what the server's admins changed."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from bot.community.quotas import Quota, quota_for
from bot.community.terms import BannedTerms
from bot.config import Settings


@dataclass(frozen=True, slots=True)
class GuildSettings:
    """Everything a server may decide; `overrides` is what it decided, as stored."""

    allowed_channel_ids: frozenset[int] = frozenset()  # empty: every channel
    allowed_role_ids: frozenset[int] = frozenset()  # empty: everyone
    allowed_workflows: frozenset[str] = frozenset()  # empty: every workflow
    default_workflow: str = "txt2img"
    default_image_workflow: str = "img2img"
    jobs_per_member: int = 2
    quota: Quota = field(default_factory=Quota)
    role_quotas: Mapping[int, Mapping[str, Any]] = field(default_factory=dict)  # partial quotas
    role_priorities: Mapping[int, int] = field(default_factory=dict)
    exempt_admins: bool = True
    banned_terms: BannedTerms = field(default_factory=BannedTerms)
    image_moderation: str = "off"  # off, block or spoiler, in channels not marked NSFW
    nsfw_threshold: float = 0.6
    mod_log_channel_id: int | None = None
    overrides: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def defaults(cls, settings: Settings) -> GuildSettings:
        """Return the rules of a server that changed nothing, from .env (and of DMs).

        Raises:
            BadTerm: a term of BANNED_TERMS cannot be used.
        """
        return cls(
            allowed_channel_ids=settings.allowed_channel_ids,
            allowed_role_ids=settings.allowed_role_ids,
            default_workflow=settings.default_workflow,
            default_image_workflow=settings.default_image_workflow,
            jobs_per_member=settings.max_jobs_per_user,
            quota=Quota(settings.daily_images, settings.daily_gpu_seconds, settings.job_cooldown),
            exempt_admins=settings.quota_exempt_admins,
            banned_terms=BannedTerms.parse(settings.banned_terms),
            image_moderation=settings.image_moderation,
            nsfw_threshold=settings.nsfw_threshold,
        )

    def quota_for(self, role_ids: Iterable[int]) -> Quota:
        """Return the quota of a member with these roles (the most generous applies)."""
        default = self.quota.to_dict()
        by_role = {role: Quota.from_dict(default | dict(p)) for role, p in self.role_quotas.items()}
        return quota_for(role_ids, by_role, self.quota)

    def priority_for(self, role_ids: Iterable[int]) -> int:
        """Return the highest priority of a member's roles (0 without one)."""
        return max((self.role_priorities.get(role, 0) for role in role_ids), default=0)

    def allows_workflow(self, name: str) -> bool:
        """Tell whether members may run this workflow here."""
        return not self.allowed_workflows or name in self.allowed_workflows
