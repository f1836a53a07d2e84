"""ReplyLocation: where a job's Discord reply lives, and the one rule for reaching it.

The core keeps a reply's location opaquely (a JSON mapping in the request's origin and the
journal); only this module spells out its keys.
"""

from __future__ import annotations

import datetime
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Self

import discord

# Switch to a channel message a little before Discord's 15 minutes are up: an edit that starts
# just in time may still arrive after the token has gone.
TOKEN_MARGIN = datetime.timedelta(minutes=1)
_INTERACTION, _CHANNEL = "interaction", "channel"


def token_lives(expires_at: float, *, now: float | None = None) -> bool:
    """Tell whether an interaction token expiring at `expires_at` (POSIX time) is still usable.

    The rule of every reply: edit through the interaction webhook while its token lives,
    else a channel message with the bot token.
    """
    now = time.time() if now is None else now
    return now < expires_at - TOKEN_MARGIN.total_seconds()


def _int(value: Any) -> int | None:
    return int(value) if value not in (None, "") else None


@dataclass(frozen=True, slots=True)
class ReplyLocation:
    """A reply: its channel and message, and the interaction webhook while it may be used."""

    channel_id: int | None  # None only for an interaction outside any channel: not restorable
    guild_id: int | None = None
    message_id: int | None = None
    application_id: int | None = None
    token: str | None = field(default=None, repr=False)  # the interaction's: never logged
    token_expires: float = 0.0
    filesize_limit: int = discord.utils.DEFAULT_FILE_SIZE_LIMIT_BYTES
    # An ephemeral reply: only its webhook reaches it, and no channel message may replace it.
    is_private: bool = False

    @classmethod
    def of_interaction(
        cls, interaction: discord.Interaction[Any], message_id: int | None
    ) -> ReplyLocation:
        """Return where an interaction's @original response lives."""
        return cls(
            channel_id=interaction.channel_id,
            guild_id=interaction.guild_id,
            message_id=message_id,
            application_id=interaction.application_id,
            token=interaction.token,
            token_expires=interaction.expires_at.timestamp(),
            filesize_limit=interaction.filesize_limit,
        )

    @classmethod
    def of_message(cls, message: discord.Message, filesize_limit: int) -> ReplyLocation:
        """Return where a message the bot sent itself lives."""
        return cls(
            channel_id=message.channel.id,
            guild_id=message.guild.id if message.guild else None,
            message_id=message.id,
            filesize_limit=filesize_limit,
        )

    @property
    def has_webhook(self) -> bool:
        """Tell whether the reply may be edited through the interaction webhook now."""
        return (
            self.token is not None
            and self.application_id is not None
            and token_lives(self.token_expires)
        )

    def without_token(self) -> Self:
        """Return this location once the webhook can no longer be used."""
        return replace(self, token=None, application_id=None, token_expires=0.0)

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON-safe form the journal keeps (it may hold the token)."""
        where: dict[str, Any] = {
            "via": _CHANNEL,
            "guild_id": self.guild_id,
            "channel_id": self.channel_id,
            "message_id": self.message_id,
            "filesize_limit": self.filesize_limit,
        }
        if self.token:
            where |= {"via": _INTERACTION, "application_id": self.application_id}
            where |= {"token": self.token, "token_expires": self.token_expires}
        if self.is_private:
            where["private"] = True
        return where

    @classmethod
    def from_dict(cls, origin: Mapping[str, Any]) -> ReplyLocation | None:
        """Return the location a journal origin names; None when it is not a Discord reply.

        An origin that names a channel but no "via" is read as a channel message.
        """
        via = origin.get("via", _CHANNEL)
        if via not in (_INTERACTION, _CHANNEL) or not origin.get("channel_id"):
            return None
        is_interaction = via == _INTERACTION and bool(origin.get("token"))
        limit = origin.get("filesize_limit") or discord.utils.DEFAULT_FILE_SIZE_LIMIT_BYTES
        return cls(
            channel_id=int(origin["channel_id"]),
            guild_id=_int(origin.get("guild_id")),
            message_id=_int(origin.get("message_id")),
            application_id=_int(origin.get("application_id")) if is_interaction else None,
            token=str(origin["token"]) if is_interaction else None,
            token_expires=float(origin.get("token_expires") or 0.0) if is_interaction else 0.0,
            filesize_limit=int(limit),
            is_private=origin.get("private") is True,
        )

    @property
    def link(self) -> str | None:
        """Return the reply's jump link, when its message is known."""
        if not self.message_id or not self.channel_id:
            return None
        guild = self.guild_id if self.guild_id is not None else "@me"
        return f"https://discord.com/channels/{guild}/{self.channel_id}/{self.message_id}"
