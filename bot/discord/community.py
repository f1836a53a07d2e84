"""The community controls at Discord's door: who asks, the gate, image moderation, the mod log."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace
from typing import Any

import discord

from bot.community.gate import Gate, Member, check_place
from bot.community.guild import GuildSettings
from bot.community.nsfw import Action, ImageModerator
from bot.discord.ending import Screening
from bot.discord.modlog import ModEvent, ModKind, ModLog
from bot.discord.reply import ReplyLocation
from bot.errors import BotError, InvalidImage
from bot.images import ImageFile
from bot.jobs.model import GenerationRequest, Job
from bot.jobs.queue import JobQueue
from bot.tasks import TaskSet

log = logging.getLogger(__name__)

IsOwner = Callable[[discord.abc.User], Awaitable[bool]]
WITHHELD = "The images were withheld: this server's image moderation"


def is_nsfw(channel: object) -> bool:
    """Tell whether a channel is age-restricted (a thread follows its parent; a DM is not)."""
    check = getattr(channel, "is_nsfw", None)
    return bool(check()) if callable(check) else False


class Community:
    """Check requests before they are queued, and results before they are posted, per server."""

    def __init__(
        self, gate: Gate, moderator: ImageModerator, modlog: ModLog, *, is_owner: IsOwner
    ) -> None:
        self.gate = gate
        self.moderator = moderator
        self.modlog = modlog
        self._is_owner = is_owner
        self._posts = TaskSet(log)  # mod-log posts: nobody waits for them

    async def close(self) -> None:
        """Stop the mod-log posts still on their way."""
        await self._posts.close()

    def _log(self, channel_id: int | None, event: ModEvent) -> None:
        """Post to the mod log in the background: a refusal or result is not held up by it."""
        if channel_id is not None:
            self._posts.spawn(self._post(channel_id, event), f"mod log {event.kind.name}")

    async def _post(self, channel_id: int, event: ModEvent) -> None:
        await self.modlog.post(channel_id, event)

    def __repr__(self) -> str:
        return f"Community({self.gate.servers!r}, {self.moderator!r})"

    async def rules(self, guild_id: int | None) -> GuildSettings:
        """Return a server's rules (the defaults in DMs)."""
        return await self.gate.rules(guild_id)

    async def member(self, interaction: discord.Interaction[Any]) -> Member:
        """Describe who clicked or typed, and where."""
        parent = getattr(interaction.channel, "parent_id", None)
        # The interaction's own permissions: they count channel overwrites and the owner.
        is_manager = interaction.guild_id is not None and interaction.permissions.manage_guild
        return await self._member(
            interaction.user, interaction.guild_id, (interaction.channel_id, parent), is_manager
        )

    async def member_of(self, message: discord.Message) -> Member:
        """Describe who posted a message, and where."""
        parent = getattr(message.channel, "parent_id", None)
        guild_id = message.guild.id if message.guild else None
        author = message.author
        is_manager = isinstance(author, discord.Member) and author.guild_permissions.manage_guild
        return await self._member(author, guild_id, (message.channel.id, parent), is_manager)

    async def _member(
        self,
        user: discord.abc.User,
        guild_id: int | None,
        channels: Sequence[int | None],
        is_manager: bool,
    ) -> Member:
        roles: frozenset[int] = frozenset()
        if isinstance(user, discord.Member):
            roles = frozenset(role.id for role in user.roles)
        try:
            owner = await self._is_owner(user)
        except discord.HTTPException:
            owner = False
        ids = tuple(channel for channel in channels if channel is not None)
        return Member(user.id, guild_id, roles, ids, is_manager=is_manager, is_owner=owner)

    async def check_place(self, interaction: discord.Interaction[Any]) -> None:
        """Refuse a click or command outside the server's channels and roles (or in DMs).

        Raises:
            NotAllowed: with what is allowed.
        """
        member = await self.member(interaction)
        rules = await self.gate.rules(member.guild_id)
        check_place(rules, member, allow_dms=self.gate.allow_dms)

    async def admit(
        self, member: Member, request: GenerationRequest, jobs: JobQueue
    ) -> tuple[GenerationRequest, int]:
        """Let a request through the server's rules; return it with its priority and the cap.

        A refusal goes to the mod log before it is raised.

        Raises:
            BotError: NotAllowed, BannedTermUsed, TooManyJobs or QuotaExceeded.
        """
        active = jobs.active_count(member.requester, guild_id=member.guild_id)
        fields = {"prompt": request.prompt, "negative": request.negative}
        try:
            admission = await self.gate.admit(
                member, workflow=request.workflow, fields=fields, active=active
            )
        except BotError as exc:
            await self.refused(member, exc.user_message, request.prompt)
            raise
        admitted = replace(request, priority=admission.priority, guild_id=member.guild_id)
        return admitted, admission.rules.jobs_per_member

    async def refused(self, member: Member, why: str, prompt: str | None) -> None:
        """Write a refusal into the server's mod log."""
        if member.guild_id is None:
            return
        rules = await self.gate.rules(member.guild_id)
        event = ModEvent(ModKind.REFUSED, member.user_id, why, prompt=prompt)
        self._log(rules.mod_log_channel_id, event)

    async def check_inputs(
        self, member: Member, images: Sequence[ImageFile], channel: object, prompt: str
    ) -> None:
        """Refuse input images the server's moderation finds explicit (outside NSFW channels).

        Raises:
            InvalidImage: explicit, or the server checks images but the bot cannot.
        """
        rules = await self.gate.rules(member.guild_id)
        decision = await self.moderator.decide(
            [image.data for image in images],
            mode=rules.image_moderation,
            threshold=rules.nsfw_threshold,
            is_nsfw_channel=is_nsfw(channel),
        )
        if decision.action is Action.POST:
            return
        if not self.moderator.is_available:
            why = "This server checks images, but this bot cannot (moderation is not installed)."
        else:
            why = "That input image looks explicit, and this channel is not marked NSFW."
        await self.refused(member, f"{why} ({decision.reason})", prompt)
        raise InvalidImage(why)

    async def screen(
        self, job: Job, images: Sequence[ImageFile], where: ReplyLocation
    ) -> Screening:
        """Decide how a job's results may be posted where its reply is (Delivery's hook)."""
        rules = await self.gate.rules(job.request.guild_id)
        channel = self.modlog.channel(where.channel_id) if where.channel_id else None
        decision = await self.moderator.decide(
            [image.data for image in images],
            mode=rules.image_moderation,
            threshold=rules.nsfw_threshold,
            is_nsfw_channel=is_nsfw(channel),
        )
        if decision.action is Action.POST:
            return Screening()
        if decision.action is Action.SPOILER:
            return Screening(spoiler=True)
        event = ModEvent(
            ModKind.BLOCKED,
            int(job.request.requester),
            f"{WITHHELD} ({decision.reason}).",
            prompt=job.request.prompt,
            job_id=job.id,
            link=where.link,
        )
        self._log(rules.mod_log_channel_id, event)
        return Screening(withheld=f"{WITHHELD} ({decision.reason or 'explicit'}).")

    async def cancelled_by_moderator(self, interaction: discord.Interaction[Any], job: Job) -> None:
        """Write a moderator's cancel of someone else's job into the mod log."""
        rules = await self.gate.rules(interaction.guild_id)
        link = None
        if interaction.message is not None:
            link = interaction.message.jump_url
        event = ModEvent(
            ModKind.CANCELLED,
            interaction.user.id,
            "Cancelled the job.",
            prompt=job.request.prompt,
            job_id=job.id,
            link=link,
            for_user_id=int(job.request.requester),
        )
        self._log(rules.mod_log_channel_id, event)

    async def setting_changed(self, guild_id: int, user_id: int, what: str) -> None:
        """Write a settings change into the server's mod log (the new mod log, if it moved)."""
        rules = await self.gate.rules(guild_id)
        self._log(rules.mod_log_channel_id, ModEvent(ModKind.SETTING, user_id, what))
