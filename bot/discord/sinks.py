"""Where a job's message lives: an interaction's response, or a message sent with the bot token."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import replace
from typing import Any, Protocol

import discord

from bot.discord.reply import ReplyLocation, token_lives

log = logging.getLogger(__name__)

NO_MENTIONS = discord.AllowedMentions.none()
# Webhook errors meaning the interaction token can no longer be used: Invalid Webhook Token,
# Unknown Webhook, Unknown Message (of @original).
EXPIRED_CODES = frozenset({50027, 10015, 10008})


class Sink(Protocol):
    """Where one job's message lives: an interaction response or a plain message."""

    @property
    def filesize_limit(self) -> int:
        """Return the largest file this destination accepts."""

    async def edit(
        self,
        *,
        content: str,
        embed: discord.Embed | None = None,
        files: Sequence[discord.File] | None = None,
        view: discord.ui.View | None = None,
    ) -> None:
        """Replace the message; `files=None` keeps its attachments, `[]` removes them."""

    async def send(self, *, content: str, files: Sequence[discord.File]) -> None:
        """Post an extra message beside it (more images than fit in one message)."""

    def where(self) -> ReplyLocation:
        """Return where the message lives now, for the journal."""


def is_token_gone(exc: discord.HTTPException) -> bool:
    """Tell whether an error means the interaction token expired or became invalid."""
    return exc.status in (401, 404) and exc.code in EXPIRED_CODES


def edit_kwargs(
    content: str,
    embed: discord.Embed | None,
    files: Sequence[discord.File] | None,
    view: discord.ui.View | None,
) -> dict[str, Any]:
    """Return the keyword arguments of a message edit (no mentions; `files=None` keeps them)."""
    kwargs: dict[str, Any] = {
        "content": content,
        "embed": embed,
        "view": view,
        "allowed_mentions": NO_MENTIONS,
    }
    if files is not None:
        kwargs["attachments"] = list(files)
    return kwargs


def rewind(files: Sequence[discord.File] | None) -> None:
    """Rewind files that a failed attempt may have read, so that they can be sent again."""
    for file in files or ():
        file.reset()


class MessageSink:
    """A message the bot sent itself (a reply to a mention), edited with the bot token."""

    def __init__(self, message: discord.Message) -> None:
        self.message = message

    @property
    def filesize_limit(self) -> int:
        """Return the guild's upload limit (Discord's default outside guilds)."""
        guild = self.message.guild
        return guild.filesize_limit if guild else discord.utils.DEFAULT_FILE_SIZE_LIMIT_BYTES

    async def edit(
        self,
        *,
        content: str,
        embed: discord.Embed | None = None,
        files: Sequence[discord.File] | None = None,
        view: discord.ui.View | None = None,
    ) -> None:
        """Edit the message."""
        self.message = await self.message.edit(**edit_kwargs(content, embed, files, view))

    async def send(self, *, content: str, files: Sequence[discord.File]) -> None:
        """Post more files in the same channel."""
        await self.message.channel.send(content, files=list(files), allowed_mentions=NO_MENTIONS)

    @classmethod
    async def post(
        cls,
        channel: discord.PartialMessageable,
        *,
        content: str,
        embed: discord.Embed | None = None,
        files: Sequence[discord.File] | None = None,
        view: discord.ui.View | None = None,
    ) -> MessageSink:
        """Send a new message in place of a reply that can no longer be edited."""
        rewind(files)
        message = await channel.send(
            content,
            embed=embed,  # type: ignore[arg-type]  # discord.py's stubs forbid an explicit None
            files=list(files or ()),
            view=view,  # type: ignore[arg-type]  # as above
            allowed_mentions=NO_MENTIONS,
        )
        return cls(message)

    def where(self) -> ReplyLocation:
        """Return the channel message's ids."""
        return ReplyLocation.of_message(self.message, self.filesize_limit)


async def take_over(
    channel: discord.PartialMessageable,
    message_id: int | None,
    *,
    content: str,
    embed: discord.Embed | None = None,
    files: Sequence[discord.File] | None = None,
    view: discord.ui.View | None = None,
) -> MessageSink:
    """Edit a public reply with the bot token once its interaction token is gone.

    Discord lets a bot edit its interaction's (non-private) response as any message of its own,
    so the job stays in the one message its member knows, buttons and all. Only a reply that
    cannot be edited that way (deleted, or the bot lost access) is replaced by a new message.
    """
    if message_id is not None:
        rewind(files)
        try:
            message = await channel.get_partial_message(message_id).edit(
                **edit_kwargs(content, embed, files, view)
            )
        except (discord.NotFound, discord.Forbidden) as exc:
            log.info("reply %s cannot be edited any more: %s", message_id, exc)
        else:
            return MessageSink(message)
    return await MessageSink.post(channel, content=content, embed=embed, files=files, view=view)


class InteractionSink:
    """An interaction's @original response, edited with the bot token once the token is gone."""

    def __init__(
        self,
        interaction: discord.Interaction[Any],
        *,
        message_id: int | None = None,
        is_private: bool = False,
    ) -> None:
        self.interaction = interaction
        self.message_id = message_id  # of @original, once known
        self.fallback: MessageSink | None = None
        # An ephemeral reply has no channel message to fall back to: that would make it public.
        self.is_private = is_private

    @property
    def filesize_limit(self) -> int:
        """Return the interaction's attachment size limit."""
        return self.interaction.filesize_limit

    def _is_token_usable(self) -> bool:
        return token_lives(self.interaction.expires_at.timestamp())

    async def edit(
        self,
        *,
        content: str,
        embed: discord.Embed | None = None,
        files: Sequence[discord.File] | None = None,
        view: discord.ui.View | None = None,
    ) -> None:
        """Edit @original; after the token is gone, the same message with the bot token."""
        if self.fallback is None and self._is_token_usable():
            try:
                original = await self.interaction.edit_original_response(
                    **edit_kwargs(content, embed, files, view)
                )
                self.message_id = original.id
                return
            except discord.HTTPException as exc:
                if not is_token_gone(exc):
                    raise
                log.info("token of interaction %s is gone: %s", self.interaction.id, exc)
        if self.fallback is not None:
            await self.fallback.edit(content=content, embed=embed, files=files, view=view)
            return
        if self.is_private:
            log.info("private reply of interaction %s can no longer be edited", self.interaction.id)
            return
        self.fallback = await take_over(
            self._channel(), self.message_id, content=content, embed=embed, files=files, view=view
        )

    async def send(self, *, content: str, files: Sequence[discord.File]) -> None:
        """Post a follow-up; a channel message once the token is gone."""
        if self.fallback is None and self._is_token_usable():
            try:
                await self.interaction.followup.send(
                    content,
                    files=list(files),
                    allowed_mentions=NO_MENTIONS,
                    ephemeral=self.is_private,
                )
                return
            except discord.HTTPException as exc:
                if not is_token_gone(exc):
                    raise
        if self.is_private:
            return
        rewind(files)
        await self._channel().send(content, files=list(files), allowed_mentions=NO_MENTIONS)

    def where(self) -> ReplyLocation:
        """Return the interaction's reply: its webhook (token and expiry) or the channel message."""
        if self.fallback is not None:
            return self.fallback.where()
        location = ReplyLocation.of_interaction(self.interaction, self.message_id)
        return replace(location, is_private=self.is_private)

    def _channel(self) -> discord.PartialMessageable:
        interaction = self.interaction
        if interaction.channel_id is None:
            raise RuntimeError(f"interaction {interaction.id} has no channel to fall back to")
        client: discord.Client = interaction.client
        return client.get_partial_messageable(interaction.channel_id, guild_id=interaction.guild_id)
