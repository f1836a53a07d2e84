"""Quotas by role: images and GPU-seconds per day and a cooldown; pure, the clock is passed in.

A day is a UTC day: every count starts again at 00:00 UTC. A member's quota is the most
generous of the server's default and the quotas of their roles, taken limit by limit.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Self

from bot.errors import BotError

DAY = 86400.0


def day_start(now: float) -> float:
    """Return the start (00:00 UTC) of the day `now` falls in."""
    return now - now % DAY


def next_reset(now: float) -> float:
    """Return when the counts of `now`'s day start again."""
    return day_start(now) + DAY


@dataclass(frozen=True, slots=True)
class Quota:
    """Limits for one role; None means no limit."""

    images_per_day: int | None = None
    gpu_seconds_per_day: float | None = None
    cooldown: float = 0.0  # seconds from one job to the next

    @property
    def is_unlimited(self) -> bool:
        """Tell whether this quota limits nothing."""
        no_count = self.images_per_day is None and self.gpu_seconds_per_day is None
        return no_count and not self.cooldown

    def most_generous(self, other: Quota) -> Quota:
        """Return the more generous of two quotas, limit by limit."""
        return Quota(
            _larger(self.images_per_day, other.images_per_day),
            _larger(self.gpu_seconds_per_day, other.gpu_seconds_per_day),
            min(self.cooldown, other.cooldown),
        )

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-safe form."""
        return {
            "images_per_day": self.images_per_day,
            "gpu_seconds_per_day": self.gpu_seconds_per_day,
            "cooldown": self.cooldown,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        """Build from `to_dict`'s form."""
        images, gpu = data.get("images_per_day"), data.get("gpu_seconds_per_day")
        return cls(
            None if images is None else int(images),
            None if gpu is None else float(gpu),
            float(data.get("cooldown", 0.0)),
        )


def _larger(a: float | None, b: float | None) -> Any:
    if a is None or b is None:
        return None
    return max(a, b)


def quota_for(role_ids: Iterable[int], by_role: Mapping[int, Quota], default: Quota) -> Quota:
    """Return the quota of a member with these roles: the most generous that applies."""
    quota = default
    for role in role_ids:
        if role in by_role:
            quota = quota.most_generous(by_role[role])
    return quota


@dataclass(frozen=True, slots=True)
class Usage:
    """What a member used today, and when their latest job was asked for."""

    images: int = 0
    gpu_seconds: float = 0.0
    last_job_at: float | None = None
    pending: int = 0  # jobs not ended yet; each will make at least one image


class QuotaExceeded(BotError):
    """A member is over a quota or inside their cooldown; `retry_at` says when that ends."""

    def __init__(self, user_message: str, retry_at: float) -> None:
        super().__init__(user_message)
        self.retry_at = retry_at


def check(quota: Quota, usage: Usage, now: float) -> None:
    """Refuse a new job over the quota, saying how much was used and when more is allowed.

    Raises:
        QuotaExceeded: over images or GPU-seconds for today, or inside the cooldown.
    """
    if quota.cooldown and usage.last_job_at is not None:
        ready = usage.last_job_at + quota.cooldown
        if now < ready:
            text = f"Please wait between jobs; your next one <t:{ready:.0f}:R>."
            raise QuotaExceeded(text, ready)
    reset = next_reset(now)
    images = usage.images + usage.pending
    if quota.images_per_day is not None and images >= quota.images_per_day:
        raise QuotaExceeded(
            f"You have used {images} of {quota.images_per_day} images today;"
            f" more <t:{reset:.0f}:R>.",
            reset,
        )
    limit = quota.gpu_seconds_per_day
    if limit is not None and usage.gpu_seconds >= limit:
        raise QuotaExceeded(
            f"You have used {usage.gpu_seconds:.0f} of {limit:.0f} GPU-seconds today;"
            f" more <t:{reset:.0f}:R>.",
            reset,
        )


def describe(quota: Quota, usage: Usage, now: float) -> str:
    """Return one line on today's use against the quota, for /queue."""
    if quota.is_unlimited:
        return "No quota applies to you."
    parts = []
    if quota.images_per_day is not None:
        parts.append(f"{usage.images + usage.pending} of {quota.images_per_day} images")
    if quota.gpu_seconds_per_day is not None:
        parts.append(f"{usage.gpu_seconds:.0f} of {quota.gpu_seconds_per_day:.0f} GPU-seconds")
    lines = []
    if parts:
        reset = next_reset(now)
        lines.append(f"Today: {', '.join(parts)}; counts start again <t:{reset:.0f}:R>.")
    if quota.cooldown:
        lines.append(f"{quota.cooldown:.0f} s between jobs.")
    return " ".join(lines)
