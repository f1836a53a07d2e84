"""The mod log: refusals, blocked results, moderator cancels and setting changes, as embeds."""

from __future__ import annotations

import enum
import logging
from dataclasses import dataclass
from typing import Any

import discord

from bot.discord.ending import to_embed
from bot.discord.render import FIELD_LIMIT, EmbedData, EmbedField, truncate

log = logging.getLogger(__name__)


class ModKind(enum.StrEnum):
    """What happened."""

    REFUSED = "Request refused"
    BLOCKED = "Result blocked"
    CANCELLED = "Job cancelled by a moderator"
    SETTING = "Setting changed"


COLORS = {
    ModKind.REFUSED: 0xE67E22,
    ModKind.BLOCKED: 0xE74C3C,
    ModKind.CANCELLED: 0x95A5A6,
    ModKind.SETTING: 0x3498DB,
}


@dataclass(frozen=True, slots=True)
class ModEvent:
    """One entry of a server's mod log: who, what, which prompt, and a link to the job."""

    kind: ModKind
    user_id: int
    what: str
    prompt: str | None = None
    job_id: str | None = None
    link: str | None = None
    for_user_id: int | None = None  # whose job it was, when a moderator acted on it

    def embed(self) -> EmbedData:
        """Describe the event within Discord's embed limits."""
        fields = [EmbedField("Who", f"<@{self.user_id}>")]
        if self.for_user_id is not None:
            fields.append(EmbedField("Job of", f"<@{self.for_user_id}>"))
        fields.append(EmbedField("What", truncate(self.what, FIELD_LIMIT), inline=False))
        if self.prompt:
            fields.append(EmbedField("Prompt", truncate(self.prompt, FIELD_LIMIT), inline=False))
        if self.job_id:
            job = f"[{self.job_id}]({self.link})" if self.link else f"`{self.job_id}`"
            fields.append(EmbedField("Job", job, inline=False))
        return EmbedData(title=self.kind.value, fields=tuple(fields), color=COLORS[self.kind])


class ModLog:
    """Post mod-log embeds to a server's mod-log channel; a failure is logged, never raised."""

    def __init__(self, client: discord.Client) -> None:
        self._client = client

    def __repr__(self) -> str:
        return "ModLog()"

    def channel(self, channel_id: int) -> Any:
        """Return a channel from the cache (with its NSFW flag), or a partial one."""
        found = self._client.get_channel(channel_id)
        return found if found is not None else self._client.get_partial_messageable(channel_id)

    async def post(self, channel_id: int | None, event: ModEvent) -> discord.Message | None:
        """Post `event` to the channel (nothing when the server has no mod log)."""
        if channel_id is None:
            return None
        channel = self.channel(channel_id)
        try:
            message: discord.Message = await channel.send(
                embed=to_embed(event.embed()), allowed_mentions=discord.AllowedMentions.none()
            )
        except discord.HTTPException as exc:
            log.warning("mod log post to %s failed: %s", channel_id, exc)
            return None
        return message
