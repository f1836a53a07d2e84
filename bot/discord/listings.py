"""Render the /history and /comfy status listings as chat text; pure functions of plain values."""

from __future__ import annotations

from collections.abc import Sequence

from bot.comfy.backend import BackendHealth
from bot.comfy.info import Device
from bot.discord.render import CONTENT_LIMIT, mention, quoted, truncate
from bot.discord.reply import ReplyLocation
from bot.jobs.model import GenerationRequest
from bot.jobs.store import JournalEntry

GIB = 2**30
HISTORY_PROMPT = 60
STATE_ICONS = {
    "waiting": "⏳",
    "submitting": "📤",
    "queued": "📥",
    "running": "⚙️",
    "done": "✅",
    "failed": "❌",
    "cancelled": "🚫",
    "lost": "⚠️",
}


def history_line(number: int, entry: JournalEntry, *, show_requester: bool = False) -> str:
    """Describe one journal entry: workflow, prompt excerpt, state, when, and a link."""
    prompt = str(entry.params.get("prompt") or "")
    what = quoted(prompt, HISTORY_PROMPT) if prompt.strip() else "(no prompt)"
    state = f"{STATE_ICONS.get(entry.state, '•')} {entry.state}"
    parts = [f"`{number}.` **{entry.workflow}** {what}", state, f"<t:{int(entry.created_at)}:R>"]
    if show_requester:
        parts.append(f"by {mention(entry.requester)}")
    reply = ReplyLocation.from_dict(entry.origin)
    if reply is not None and (link := reply.link) is not None:
        parts.append(f"[message]({link})")
    return " · ".join(parts)


def history(entries: Sequence[JournalEntry], *, show_requester: bool = False) -> str:
    """Return the /history listing, newest first, within a message's limit."""
    if not entries:
        return "No jobs yet." if show_requester else "You have no jobs yet."
    title = "Recent jobs" if show_requester else "Your recent jobs"
    lines = [f"**{title}** (Reroll runs one again with a new seed):"]
    lines += [
        history_line(n, entry, show_requester=show_requester)
        for n, entry in enumerate(entries, start=1)
    ]
    return truncate("\n".join(lines), CONTENT_LIMIT)


def device_line(device: Device) -> str:
    """Describe a ComfyUI device: its name and free memory."""
    return f"{device.label}: {device.memory}" if device.memory else device.label


def backend_status(
    url: str,
    health: BackendHealth,
    *,
    is_healthy: bool,
    queue_remaining: int,
    running: Sequence[tuple[str, GenerationRequest]] = (),
) -> str:
    """Describe one ComfyUI server: up or down, its queue, version, devices, our running job."""
    if not health.is_up:
        reason = health.error or ("not checked yet" if not health.checked_at else "no answer")
        return f"🔴 `{url}` · down: {truncate(reason, 300)}"
    icon = "🟢" if is_healthy else "🟡"
    version = f"ComfyUI {health.version or '(unknown version)'}"
    parts = [f"{icon} `{url}`", f"{version} via {health.path}" if health.path else version]
    if is_healthy:
        parts.append(f"queue {queue_remaining}")
    else:
        parts.append("event stream reconnecting")
    parts += [device_line(device) for device in health.devices]
    lines = [" · ".join(parts)]
    for job_id, request in running:
        what = quoted(request.prompt, HISTORY_PROMPT) if request.prompt.strip() else "Image"
        lines.append(f"   ⚙️ running `{job_id}` {what} for {mention(request.requester)}")
    return "\n".join(lines)


def queue_counts(waiting: int, in_comfy: int, workflows: int) -> str:
    """Describe our own queue for /comfy status."""
    return (
        f"Our queue: {waiting} waiting for a server, {in_comfy} in ComfyUI;"
        f" {workflows} workflows loaded."
    )
