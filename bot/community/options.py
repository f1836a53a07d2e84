"""What `/config set|show|reset` can change: parse a value, store it, apply it, show it; pure."""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, replace
from typing import Any

from bot.community.guild import GuildSettings
from bot.community.terms import BadTerm, BannedTerms
from bot.config import MODERATION_MODES, split_list
from bot.errors import BotError

NONE_WORDS = {"none", "off", "unlimited", "all", "everyone", "everywhere", "-"}
ROLE_KEYS = ("images_per_day", "gpu_seconds_per_day", "cooldown", "priority")
"""Options that may be set for one role (`priority` only for a role)."""


class BadSetting(BotError):
    """A /config value that cannot be used; the message says what would be."""


@dataclass(frozen=True, slots=True)
class Option:
    """One setting a server may change."""

    name: str
    help: str
    parse: Callable[[str, Collection[str]], Any]  # (typed value, workflow names) -> JSON value


def _ids(raw: str, _: Collection[str]) -> list[int] | None:
    if raw.strip().lower() in NONE_WORDS:
        return []
    found = re.findall(r"\d{15,21}", raw)
    leftover = re.sub(r"<[#@&!]*\d+>|\d+|[\s,]", "", raw)
    if not found or leftover:
        raise BadSetting(f"Expected channels or roles (mentions or ids), got {raw!r}.")
    return sorted({int(x) for x in found})


def _channel(raw: str, workflows: Collection[str]) -> int | None:
    ids = _ids(raw, workflows)
    if ids is not None and len(ids) > 1:
        raise BadSetting("Name one channel.")
    return ids[0] if ids else None


def _workflow(raw: str, workflows: Collection[str]) -> str:
    name = raw.strip()
    if name not in workflows:
        raise BadSetting(
            f"There is no workflow {name!r}; there are: {', '.join(sorted(workflows))}."
        )
    return name


def _workflows(raw: str, workflows: Collection[str]) -> list[str]:
    if raw.strip().lower() in NONE_WORDS:
        return []
    return sorted({_workflow(name, workflows) for name in re.split(r"[\s,]+", raw) if name})


def _count(raw: str, _: Collection[str]) -> int | None:
    if raw.strip().lower() in NONE_WORDS:
        return None
    return int(_number(raw, minimum=1))


def _seconds(raw: str, _: Collection[str]) -> float | None:
    return None if raw.strip().lower() in NONE_WORDS else _number(raw, minimum=0)


def _jobs(raw: str, _: Collection[str]) -> int:
    return int(_number(raw, minimum=1))


def _priority(raw: str, _: Collection[str]) -> int:
    return int(_number(raw, minimum=-100, maximum=100))


def _number(raw: str, *, minimum: float, maximum: float | None = None) -> float:
    try:
        value = float(raw.strip().removesuffix("s"))
    except ValueError:
        raise BadSetting(f"Expected a number, got {raw!r}.") from None
    if value < minimum or (maximum is not None and value > maximum):
        upper = f" and at most {maximum:g}" if maximum is not None else ""
        raise BadSetting(f"Expected a number of at least {minimum:g}{upper}, got {value:g}.")
    return value


def _bool(raw: str, _: Collection[str]) -> bool:
    word = raw.strip().lower()
    if word not in {"true", "yes", "on", "false", "no", "off"}:
        raise BadSetting(f"Expected true or false, got {raw!r}.")
    return word in {"true", "yes", "on"}


def _terms(raw: str, _: Collection[str]) -> list[str]:
    terms = [] if raw.strip().lower() == "none" else list(split_list(raw))
    try:
        BannedTerms.parse(terms)
    except BadTerm as exc:
        raise BadSetting(str(exc)) from None
    return terms


def _mode(raw: str, _: Collection[str]) -> str:
    mode = raw.strip().lower()
    if mode not in MODERATION_MODES:
        raise BadSetting(f"Expected one of {', '.join(MODERATION_MODES)}, got {raw!r}.")
    return mode


def _threshold(raw: str, _: Collection[str]) -> float:
    return _number(raw, minimum=0.01, maximum=0.99)


OPTIONS: dict[str, Option] = {
    option.name: option
    for option in (
        Option("channels", "Channels where the bot may be used (all: everywhere)", _ids),
        Option("roles", "Roles allowed to generate (all: everyone)", _ids),
        Option("workflows", "Workflows members may run (all: every one)", _workflows),
        Option("default_workflow", "Workflow /generate runs when none is chosen", _workflow),
        Option("default_image_workflow", "Workflow for images and Use as input", _workflow),
        Option("jobs_per_member", "Jobs one member may have queued or running", _jobs),
        Option("images_per_day", "Images a member may make a day (none: no limit)", _count),
        Option("gpu_seconds_per_day", "GPU-seconds a member may use a day", _seconds),
        Option("cooldown", "Seconds from one job to the next", _seconds),
        Option("priority", "A role's priority in the queue (needs a role)", _priority),
        Option("exempt_admins", "Managers and the bot's owner skip quotas", _bool),
        Option("banned_terms", "Banned terms, comma-separated; /regex/ allowed", _terms),
        Option("image_moderation", "Results in non-NSFW channels: off, block, spoiler", _mode),
        Option("nsfw_threshold", "NudeNet score from which an image is explicit", _threshold),
        Option("mod_log", "Channel for the mod log (none: no log)", _channel),
    )
}


def parse_name(name: str) -> Option:
    """Return the setting called `name`.

    Raises:
        BadSetting: no such setting (the message lists them).
    """
    option = OPTIONS.get(name)
    if option is None:
        raise BadSetting(f"There is no setting {name!r}; there are: {', '.join(OPTIONS)}.")
    return option


def parse(name: str, raw: str, workflows: Collection[str]) -> Any:
    """Return the stored form of a typed value.

    Raises:
        BadSetting: no such setting, or a value it cannot take.
    """
    return parse_name(name).parse(raw, workflows)


def set_value(
    overrides: Mapping[str, Any], name: str, value: Any, role: int | None = None
) -> dict[str, Any]:
    """Return the overrides with one setting (of one role, for quotas and priority) changed.

    Raises:
        BadSetting: a role given where none is possible, or missing for `priority`.
    """
    changed = dict(overrides)
    if role is None and name == "priority":
        raise BadSetting("A priority belongs to a role: choose the role.")
    if role is None:
        changed[name] = value
        return changed
    if name not in ROLE_KEYS:
        raise BadSetting(f"{name} is the same for every role; set it without a role.")
    table, roles = _role_table(changed, name)
    if name == "priority":
        roles[str(role)] = value
    else:
        roles.setdefault(str(role), {})[name] = value
    changed[table] = roles
    return changed


def _role_table(overrides: Mapping[str, Any], name: str) -> tuple[str, dict[str, Any]]:
    """Return which per-role table holds `name`, and a copy of it (nested dicts copied too)."""
    table = "role_priorities" if name == "priority" else "role_quotas"
    stored = overrides.get(table, {})
    return table, {k: dict(v) if isinstance(v, Mapping) else v for k, v in stored.items()}


def reset_value(
    overrides: Mapping[str, Any], name: str | None = None, role: int | None = None
) -> dict[str, Any]:
    """Return the overrides without one setting (of one role), or without any when no name."""
    if name is None:
        return {}
    changed = dict(overrides)
    if role is None:
        changed.pop(name, None)
        if name == "priority":
            changed.pop("role_priorities", None)
        return changed
    table, roles = _role_table(changed, name)
    if name == "priority":
        roles.pop(str(role), None)
    elif str(role) in roles:
        roles[str(role)].pop(name, None)
        if not roles[str(role)]:
            del roles[str(role)]
    if roles:
        changed[table] = roles
    else:
        changed.pop(table, None)
    return changed


def apply(base: GuildSettings, overrides: Mapping[str, Any]) -> GuildSettings:
    """Return `base` with a server's stored overrides applied (unknown keys are ignored)."""
    s = base
    for name, value in overrides.items():
        match name:
            case "channels":
                s = replace(s, allowed_channel_ids=frozenset(value))
            case "roles":
                s = replace(s, allowed_role_ids=frozenset(value))
            case "workflows":
                s = replace(s, allowed_workflows=frozenset(value))
            case "default_workflow" | "default_image_workflow" | "jobs_per_member":
                s = replace(s, **{name: value})
            case "images_per_day" | "gpu_seconds_per_day" | "cooldown":
                if name == "cooldown":
                    value = value or 0.0  # "none" is no cooldown
                s = replace(s, quota=replace(s.quota, **{name: value}))
            case "exempt_admins" | "image_moderation" | "nsfw_threshold":
                s = replace(s, **{name: value})
            case "banned_terms":
                s = replace(s, banned_terms=BannedTerms.parse(value))
            case "mod_log":
                s = replace(s, mod_log_channel_id=value)
            case "role_quotas":
                s = replace(s, role_quotas={int(k): dict(v) for k, v in value.items()})
            case "role_priorities":
                s = replace(s, role_priorities={int(k): int(v) for k, v in value.items()})
    return replace(s, overrides=dict(overrides))
