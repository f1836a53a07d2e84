"""Render a server's settings for /config show, and one change for the mod log; pure."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from bot.community.guild import GuildSettings
from bot.community.quotas import Quota
from bot.discord.render import CONTENT_LIMIT, truncate


def _ids(ids: Iterable[int], mark: str, empty: str) -> str:
    found = [f"<{mark}{i}>" for i in sorted(ids)]
    return ", ".join(found) or empty


def _limit(value: float | None, unit: str) -> str:
    return "no limit" if value is None else f"{value:g} {unit}"


def _quota(quota: Quota) -> str:
    images = _limit(quota.images_per_day, "images")
    gpu = _limit(quota.gpu_seconds_per_day, "GPU-seconds")
    return f"{images} and {gpu} a day, {quota.cooldown:g} s between jobs"


def values(rules: GuildSettings) -> dict[str, str]:
    """Return each setting's current value as text, by /config name."""
    terms = ", ".join(f"`{t.written}`" for t in rules.banned_terms.terms) or "none"
    return {
        "channels": _ids(rules.allowed_channel_ids, "#", "every channel"),
        "roles": _ids(rules.allowed_role_ids, "@&", "everyone"),
        "workflows": ", ".join(sorted(rules.allowed_workflows)) or "every workflow",
        "default_workflow": rules.default_workflow,
        "default_image_workflow": rules.default_image_workflow,
        "jobs_per_member": str(rules.jobs_per_member),
        "images_per_day": _limit(rules.quota.images_per_day, "images"),
        "gpu_seconds_per_day": _limit(rules.quota.gpu_seconds_per_day, "GPU-seconds"),
        "cooldown": f"{rules.quota.cooldown:g} s",
        "exempt_admins": "yes" if rules.exempt_admins else "no",
        "banned_terms": terms,
        "image_moderation": rules.image_moderation,
        "nsfw_threshold": f"{rules.nsfw_threshold:g}",
        "mod_log": f"<#{rules.mod_log_channel_id}>" if rules.mod_log_channel_id else "none",
    }


def listing(rules: GuildSettings) -> str:
    """Return /config show: every setting, marked where this server changed the default."""
    changed = set(rules.overrides)
    lines = ["**Settings of this server** (• changed here, the rest from the bot's defaults):"]
    for name, value in values(rules).items():
        lines.append(f"{'•' if name in changed else '◦'} `{name}`: {value}")
    for role, partial in sorted(rules.role_quotas.items()):
        quota = Quota.from_dict(rules.quota.to_dict() | dict(partial))
        lines.append(f"• quota of <@&{role}>: {_quota(quota)}")
    for role, priority in sorted(rules.role_priorities.items()):
        lines.append(f"• priority of <@&{role}>: {priority}")
    return truncate("\n".join(lines), CONTENT_LIMIT)


def change(name: str | None, value: Any, role: int | None, *, is_reset: bool) -> str:
    """Describe one /config change for the mod log."""
    whose = f" of <@&{role}>" if role is not None else ""
    if name is None:
        return "Reset every setting to the bot's defaults."
    if is_reset:
        return f"Reset `{name}`{whose} to the default."
    return f"Set `{name}`{whose} to `{value}`."
