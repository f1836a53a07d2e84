"""Mention the bot with an image: the image workflow runs on it, the reply kept current.

Like cogs/generate.py, this cog only parses and checks what Discord delivers; a chat request has
no interaction, so its refusals are replies to the member's message, and its job's reply is a
message of the bot's own, posted before the job is queued.
"""

from __future__ import annotations

import re
from dataclasses import replace
from typing import TYPE_CHECKING

import discord
from discord.ext import commands

from bot.community.gate import Member
from bot.config import Settings
from bot.discord import inputs, options, render
from bot.discord.community import Community, Pass
from bot.discord.delivery import Delivery, origin
from bot.discord.errors import describe
from bot.discord.persist import persist
from bot.discord.sinks import NO_MENTIONS, MessageSink
from bot.jobs.progress import ProgressSnapshot
from bot.jobs.queue import JobQueue
from bot.workflows.library import Workflow

if TYPE_CHECKING:
    from bot.discord.client import ComfyBot


class Chat(commands.Cog):
    """Take generation requests from messages that mention the bot with an image."""

    def __init__(
        self, jobs: JobQueue, settings: Settings, delivery: Delivery, community: Community
    ) -> None:
        self.jobs = jobs
        self.settings = settings
        self.delivery = delivery
        self.community = community

    @commands.Cog.listener()
    async def on_message(self, message: discord.Message) -> None:
        """Run the image workflow when someone mentions the bot with an image attached."""
        me = message.guild.me if message.guild else None
        if message.author.bot or me is None or me not in message.mentions:
            return
        attachments = [a for a in message.attachments if inputs.is_image(a)]
        if not attachments:
            return
        prompt = re.sub(rf"<@!?{me.id}>", "", message.content).strip()
        try:
            member = await self.community.member_of(message)
            rules = await self.community.rules(member.guild_id)
            chosen = inputs.find_workflow(self.jobs.workflows, rules.default_image_workflow)
            attachments = attachments[: max(chosen.image_inputs, 1)]
            values = options.request_values(chosen, prompt)
            request = inputs.build_request(chosen, message.author.id, len(attachments), **values)
            admitted = await self.community.admit(member, request, self.jobs)
        except Exception as exc:  # the one catch point of chat requests
            await self._tell(message, describe(exc, f"mention by {message.author.id}"))
            return
        with admitted:  # a failure before the job exists gives the quota back
            await self._answer(message, member, admitted, chosen, attachments)

    async def _answer(
        self,
        message: discord.Message,
        member: Member,
        admitted: Pass,
        chosen: Workflow,
        attachments: list[discord.Attachment],
    ) -> None:
        request, where = admitted.request, f"mention by {message.author.id}"
        try:
            images = await inputs.read_images(attachments, self.settings.max_input_image_bytes)
            self.jobs.placement.check_images(chosen, images)
            await self.community.check_inputs(member, images, message.channel, request.prompt)
        except Exception as exc:  # the one catch point of chat requests
            await self._tell(message, describe(exc, where))
            return
        # The reply first, then the job with its location: a kill in between cannot leave a
        # job that runs where no member sees it.
        waiting = render.progress_text(
            request,
            chosen.display_name,
            ProgressSnapshot(),
            is_backend_available=self.jobs.placement.has_healthy_backend,
        )
        sink = MessageSink(await self._tell(message, waiting))
        try:
            job = admitted.submit(
                replace(request, images=images, origin=origin(sink, request.requester))
            )
        except Exception as exc:  # the one catch point of chat requests, after the reply
            text = describe(exc, where)
            await persist(lambda: sink.edit(content=text), f"telling {where}")
            return
        self.delivery.follow(job, sink)

    async def _tell(self, message: discord.Message, text: str) -> discord.Message:
        return await persist(
            lambda: message.reply(text, mention_author=False, allowed_mentions=NO_MENTIONS),
            f"reply to the mention by {message.author.id}",
        )


async def setup(bot: ComfyBot) -> None:
    """Add the Chat cog."""
    await bot.add_cog(Chat(bot.jobs, bot.settings, bot.delivery, bot.community))
