"""Job buttons that survive restarts (Cancel, Reroll, Retry): persistent DynamicItems.

A click is matched by its custom_id alone, so buttons on messages sent before a restart work;
Reroll and Retry rebuild the request from the job journal when the job is no longer in memory.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import replace
from typing import Any, Protocol, Self, cast

import discord

from bot.config import Settings
from bot.discord.community import Community
from bot.discord.delivery import Delivery, origin
from bot.discord.errors import reply_error
from bot.discord.sinks import InteractionSink
from bot.errors import BotError, NotAllowed, UnknownJob
from bot.jobs.model import GenerationRequest, Job
from bot.jobs.progress import JobState
from bot.jobs.queue import JobQueue

_JOB_ID = r"(?P<job_id>[A-Za-z0-9_-]{1,80})"
Button = discord.ui.Button[discord.ui.View]


class ButtonServices(Protocol):
    """What a button needs of the client it was clicked on (the bot's client class has these)."""

    @property
    def settings(self) -> Settings: ...
    @property
    def jobs(self) -> JobQueue: ...
    @property
    def delivery(self) -> Delivery: ...
    @property
    def community(self) -> Community: ...


def _bot(interaction: discord.Interaction[Any]) -> ButtonServices:
    # The client class is ours; a Protocol instead of its import keeps buttons and client apart.
    return cast("ButtonServices", interaction.client)


class _JobButton(discord.ui.DynamicItem[Button], template=f"comfycord:[a-z]+:{_JOB_ID}"):
    """A button acting on one job, found again by its custom_id `comfycord:<action>:<job_id>`."""

    _action = ""
    _label = ""
    _style = discord.ButtonStyle.secondary

    def __init__(self, job_id: str, *, label: str | None = None) -> None:
        button: Button = discord.ui.Button(
            label=label or self._label,
            style=self._style,
            custom_id=f"comfycord:{self._action}:{job_id}",
        )
        super().__init__(button)
        self.job_id = job_id

    @classmethod
    async def from_custom_id(
        cls,
        interaction: discord.Interaction[Any],
        item: discord.ui.Item[Any],
        match: re.Match[str],
        /,
    ) -> Self:
        """Rebuild the button from a click, also on messages sent before a restart."""
        return cls(match["job_id"])


class CancelButton(_JobButton, template=re.compile(f"comfycord:cancel:{_JOB_ID}")):
    """Cancel a job: its requester or a member with Manage Messages."""

    _action, _label, _style = "cancel", "Cancel", discord.ButtonStyle.danger

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        """Cancel the job; the job's message then says who cancelled it."""
        bot = _bot(interaction)
        try:
            job = bot.jobs.get(self.job_id)
            check_server(job.request, interaction)
            await interaction.response.defer()
            is_moderator = interaction.permissions.manage_messages
            clicker = str(interaction.user.id)
            await bot.jobs.cancel(job.id, by=clicker, is_moderator=is_moderator)
            if clicker != job.request.requester:
                await bot.community.cancelled_by_moderator(interaction, job)
        except Exception as exc:  # the one catch point of this button
            await reply_error(interaction, exc)
            return
        if not bot.delivery.is_following(job.id):
            # Sent before a restart: keep the clicked message up to date from now on.
            bot.delivery.follow(
                job, InteractionSink(interaction, message_id=_message_id(interaction))
            )


class RerollButton(_JobButton, template=re.compile(f"comfycord:reroll:{_JOB_ID}")):
    """Run the same request again with a new seed, for whoever clicks."""

    _action, _label = "reroll", "Reroll"

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        """Submit a copy of the job's request with a new seed, in a new message."""
        bot = _bot(interaction)
        try:
            request = await _request(bot, self.job_id, "rerolled")
            check_server(request, interaction)
            clicker = str(interaction.user.id)
            where = origin(InteractionSink(interaction), clicker)  # its message comes with defer
            again = replace(request, seed=None, requester=clicker, origin=where)
            new_job = await _admit_and_submit(bot, interaction, again)
            response = await interaction.response.defer(thinking=True)
        except Exception as exc:  # the one catch point of this button
            await reply_error(interaction, exc)
            return
        message_id = response.message_id if response is not None else None
        bot.delivery.follow(new_job, InteractionSink(interaction, message_id=message_id))


class RetryButton(_JobButton, template=re.compile(f"comfycord:retry:{_JOB_ID}")):
    """Run a lost job's request again (same seed), in its message: requester or moderators."""

    _action, _label, _style = "retry", "Retry", discord.ButtonStyle.primary

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        """Submit the lost job's request again as a new job; the lost message follows it."""
        bot = _bot(interaction)
        try:
            request = await _request(bot, self.job_id, "retried")
            clicker = str(interaction.user.id)
            if clicker != request.requester and not interaction.permissions.manage_messages:
                raise NotAllowed(
                    "Only the person who asked for this job, or a moderator, can retry it."
                )
            check_server(request, interaction)
            sink = InteractionSink(interaction, message_id=_message_id(interaction))
            again = replace(request, requester=clicker, origin=origin(sink, clicker))
            new_job = await _admit_and_submit(bot, interaction, again)
            await interaction.response.defer()
        except Exception as exc:  # the one catch point of this button
            await reply_error(interaction, exc)
            return
        bot.delivery.follow(new_job, sink)


async def _request(bot: ButtonServices, job_id: str, verb: str) -> GenerationRequest:
    try:
        return await bot.jobs.history.past_request(job_id)
    except UnknownJob:
        raise BotError(
            f"This job can no longer be {verb} (the bot no longer knows it); use /generate again."
        ) from None


def check_server(request: GenerationRequest, interaction: discord.Interaction[Any]) -> None:
    """Refuse acting on a job from another server (or from DMs in a server, and back).

    Raises:
        NotAllowed: the job was asked for elsewhere.
    """
    if request.guild_id != interaction.guild_id:
        raise NotAllowed("That job belongs to another server.")


async def _admit_and_submit(
    bot: ButtonServices, interaction: discord.Interaction[Any], request: GenerationRequest
) -> Job:
    """Pass a request again through this server's rules (quota, terms...), then queue it."""
    member = await bot.community.member(interaction)
    admitted = await bot.community.admit(member, replace(request, images=()), bot.jobs)
    return admitted.submit(replace(admitted.request, images=request.images))


def _message_id(interaction: discord.Interaction[Any]) -> int | None:
    return interaction.message.id if interaction.message is not None else None


def job_view(job: Job, has_ended: bool) -> discord.ui.View:
    """Return a job message's buttons: Cancel while it runs, Retry once lost, Reroll always."""
    # No timeout: every item is a DynamicItem, which discord.py matches by custom_id pattern
    # and stores nothing of per message; a timeout would only keep the view alive until then.
    view = discord.ui.View(timeout=None)
    if not has_ended:
        view.add_item(CancelButton(job.id))
    elif job.state is JobState.LOST:
        view.add_item(RetryButton(job.id))
    view.add_item(RerollButton(job.id))
    return view


def history_view(job_ids: Sequence[str]) -> discord.ui.View | None:
    """Return one Reroll button per listed job, numbered like the listing (at most 25)."""
    if not job_ids:
        return None
    view = discord.ui.View(timeout=None)  # DynamicItems only, as in job_view
    for number, job_id in enumerate(job_ids[:25], start=1):
        view.add_item(RerollButton(job_id, label=f"Reroll {number}"))
    return view


DYNAMIC_ITEMS = (CancelButton, RerollButton, RetryButton)
"""Every persistent button class, registered by the bot at start."""
