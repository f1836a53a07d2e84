"""After a restart: take up the journal's unfinished jobs and find their Discord replies again.

The journal keeps where each reply lives (`Sink.where`): the interaction's webhook token with its
expiry, the channel and the message. `StoredSink` edits that same message from it.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import replace

import discord

from bot.discord import render
from bot.discord.delivery import Delivery
from bot.discord.reply import ReplyLocation
from bot.discord.sinks import (
    NO_MENTIONS,
    MessageSink,
    edit_kwargs,
    is_token_gone,
    rewind,
    take_over,
)
from bot.jobs.queue import JobQueue
from bot.jobs.recorded import request_from
from bot.jobs.recovery import recover, redeliver
from bot.jobs.store import JournalEntry

log = logging.getLogger(__name__)


class StoredSink:
    """A reply known only from the journal: webhook while the token lasts, then the bot token."""

    def __init__(self, client: discord.Client, location: ReplyLocation) -> None:
        if location.channel_id is None:
            raise ValueError("a stored reply needs its channel")
        self.client = client
        self.channel_id = location.channel_id
        self.location = location
        self.fallback: MessageSink | None = None

    def __repr__(self) -> str:  # never the token
        return f"StoredSink(channel={self.channel_id}, message={self.location.message_id})"

    @property
    def filesize_limit(self) -> int:
        """Return the upload limit the interaction had (Discord's default otherwise)."""
        return self.location.filesize_limit

    def _webhook(self) -> discord.Webhook | None:
        location = self.location
        if self.fallback or not location.has_webhook:
            return None
        application_id, token = location.application_id, location.token
        if application_id is None or token is None:  # has_webhook says neither is
            return None
        return discord.Webhook.partial(application_id, token, client=self.client)

    def _channel(self) -> discord.PartialMessageable:
        return self.client.get_partial_messageable(self.channel_id, guild_id=self.location.guild_id)

    async def edit(
        self,
        *,
        content: str,
        embed: discord.Embed | None = None,
        files: Sequence[discord.File] | None = None,
        view: discord.ui.View | None = None,
    ) -> None:
        """Edit the reply: through the webhook, else with the bot token, else send a new one."""
        if self.fallback is not None:
            await self.fallback.edit(content=content, embed=embed, files=files, view=view)
            return
        kwargs = edit_kwargs(content, embed, files, view)
        webhook = self._webhook()
        message_id = self.location.message_id
        if webhook is not None and message_id is not None:
            try:
                await webhook.edit_message(message_id, **kwargs)
                return
            except discord.HTTPException as exc:
                if not is_token_gone(exc):
                    raise
                log.info("token of reply %s is gone: %s", message_id, exc)
                self.location = self.location.without_token()
        if self.location.is_private:
            log.info("private reply %s can no longer be edited", message_id)
            return
        self.fallback = await take_over(
            self._channel(), message_id, content=content, embed=embed, files=files, view=view
        )

    async def send(self, *, content: str, files: Sequence[discord.File]) -> None:
        """Post more files: a webhook follow-up while the token lasts, else a channel message."""
        webhook = self._webhook()
        if webhook is not None:
            try:
                await webhook.send(
                    content,
                    files=list(files),
                    allowed_mentions=NO_MENTIONS,
                    ephemeral=self.location.is_private,
                )
                return
            except discord.HTTPException as exc:
                if not is_token_gone(exc):
                    raise
                self.location = self.location.without_token()
        if self.location.is_private:
            return
        rewind(files)
        await self._channel().send(content, files=list(files), allowed_mentions=NO_MENTIONS)

    def where(self) -> ReplyLocation:
        """Return where the reply lives now."""
        if self.fallback is None:
            return self.location
        # The channel message that took over; the interaction's upload limit still applies.
        return replace(self.location.without_token(), message_id=self.fallback.message.id)


async def reattach(client: discord.Client, jobs: JobQueue, delivery: Delivery) -> int:
    """Restore the journal's unfinished jobs and keep their replies current; return how many.

    Jobs that ended while their reply still showed them running are shown ended.

    Also reattaches jobs still in memory whose delivery stopped (the Discord client restarted
    in the same process), and tells the requester about jobs that cannot be resumed.
    """
    journal = jobs.journal
    if journal is None:
        return 0
    await journal.flush()
    # Ended, but killed before the reply said so: show the end now (before `recover`
    # reconciles, which settles the done ones from ComfyUI's history).
    ended = [e for e in await journal.undelivered() if ReplyLocation.from_dict(e.origin)]
    restored = {job.id: job for job in await redeliver(jobs, journal, ended)}
    entries = await journal.unfinished()
    restored |= {job.id: job for job in await recover(jobs, journal)}
    count = 0
    for entry in [*ended, *entries]:
        location = ReplyLocation.from_dict(entry.origin)
        if location is None:
            continue
        job = restored.get(entry.id) or jobs.find(entry.id)
        sink = StoredSink(client, location)
        if job is None:
            await _tell_unresumable(sink, await journal.get(entry.id) or entry)
        elif not delivery.is_following(job.id):
            delivery.follow(job, sink)
            count += 1
    log.info("reattached %d replies of unfinished jobs", count)
    return count


async def _tell_unresumable(sink: StoredSink, entry: JournalEntry) -> None:
    request = request_from(entry, ())
    reason = entry.error or "it is no longer known."
    text = render.unresumable_text(request, entry.workflow, reason)
    try:
        await sink.edit(content=text, view=None)
    except discord.HTTPException as exc:
        log.warning("could not tell about unresumable job %s: %s", entry.id, exc)
