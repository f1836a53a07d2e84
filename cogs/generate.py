"""/generate, mention-with-image and "Use as input": receive requests, hand them to the JobQueue.

This cog only parses and checks what Discord delivers; queueing is `bot.jobs.queue`, keeping the
reply current is `bot.discord.delivery`.
"""

from __future__ import annotations

import re
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import discord
from discord import app_commands
from discord.ext import commands

from bot.config import Settings
from bot.discord import inputs, render
from bot.discord.delivery import Delivery, origin
from bot.discord.errors import describe
from bot.discord.sinks import NO_MENTIONS, InteractionSink, MessageSink, persist
from bot.errors import InvalidImage
from bot.jobs.model import GenerationRequest
from bot.jobs.queue import JobQueue
from bot.workflows.library import Workflow

if TYPE_CHECKING:
    from bot.discord.client import ComfyBot

DISCORD_MAX_INT = 2**53 - 1  # the largest integer option Discord accepts
MENU_NAME = "Use as input"


class Generate(commands.Cog):
    """Take generation requests from slash commands, mentions and the message menu."""

    def __init__(self, jobs: JobQueue, settings: Settings, delivery: Delivery) -> None:
        self.jobs = jobs
        self.settings = settings
        self.delivery = delivery
        self.menu = app_commands.ContextMenu(name=MENU_NAME, callback=self.use_as_input)

    @app_commands.command(name="generate")
    @app_commands.describe(**inputs.OPTION_HELP)
    async def generate(
        self,
        interaction: discord.Interaction[Any],
        prompt: app_commands.Range[str, 1, 1500],
        negative: app_commands.Range[str, 1, 1000] | None = None,
        workflow: str | None = None,
        image: discord.Attachment | None = None,
        image2: discord.Attachment | None = None,
        seed: app_commands.Range[int, 0, DISCORD_MAX_INT] | None = None,
        steps: app_commands.Range[int, 1, 200] | None = None,
        width: app_commands.Range[int, 64, 4096] | None = None,
        height: app_commands.Range[int, 64, 4096] | None = None,
    ) -> None:
        """Generate images with ComfyUI."""
        attachments = [a for a in (image, image2) if a is not None]
        inputs.check_interaction(self.settings, interaction)
        inputs.check_attachments(attachments, self.settings.max_input_image_bytes)
        default = self.settings.default_image_workflow if attachments else None
        chosen = self._workflow(workflow or default or self.settings.default_workflow)
        values = {"prompt": prompt, "negative": negative, "seed": seed, "steps": steps}
        values |= {"width": width, "height": height}
        request = inputs.build_request(chosen, interaction.user.id, len(attachments), **values)
        await self._run(interaction, request, attachments)

    @generate.autocomplete("workflow")
    async def workflow_autocomplete(
        self, interaction: discord.Interaction[Any], current: str
    ) -> list[app_commands.Choice[str]]:
        """Offer the library's workflows by name and display name."""
        found = inputs.workflow_choices(self.jobs.workflows, current)
        return [app_commands.Choice(name=label, value=name) for label, name in found]

    async def use_as_input(
        self, interaction: discord.Interaction[Any], message: discord.Message
    ) -> None:
        """Run the image workflow on this message's images; the prompt is asked in a form."""
        attachments = [a for a in message.attachments if inputs.is_image(a)]
        if not attachments:
            raise InvalidImage("That message has no image I can use.")
        inputs.check_interaction(self.settings, interaction)
        chosen = self._workflow(self.settings.default_image_workflow)
        attachments = attachments[: max(chosen.image_inputs, 1)]
        inputs.check_attachments(attachments, self.settings.max_input_image_bytes)

        async def on_prompt(submitted: discord.Interaction[Any], prompt: str) -> None:
            request = inputs.build_request(
                chosen, submitted.user.id, len(attachments), prompt=prompt
            )
            await self._run(submitted, request, attachments)

        modal = inputs.PromptModal(on_prompt, timeout=inputs.MODAL_TIMEOUT)
        await interaction.response.send_modal(modal)

    async def _run(
        self,
        interaction: discord.Interaction[Any],
        request: GenerationRequest,
        attachments: list[discord.Attachment],
    ) -> None:
        response = await interaction.response.defer(thinking=True)
        images = await inputs.read_images(attachments, self.settings.max_input_image_bytes)
        message_id = response.message_id if response is not None else None
        sink = InteractionSink(interaction, message_id=message_id)
        where = origin(sink, request.requester)
        job = self.jobs.submit(replace(request, images=images, origin=where))
        self.delivery.follow(job, sink)

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
            inputs.check_message(self.settings, message)
            chosen = self._workflow(self.settings.default_image_workflow)
            attachments = attachments[: max(chosen.image_inputs, 1)]
            request = inputs.build_request(
                chosen, message.author.id, len(attachments), prompt=prompt
            )
            images = await inputs.read_images(attachments, self.settings.max_input_image_bytes)
            job = self.jobs.submit(replace(request, images=images))
        except Exception as exc:  # the one catch point of chat requests
            text = describe(exc, f"mention by {message.author.id}")
            await persist(
                lambda: message.reply(text, mention_author=False, allowed_mentions=NO_MENTIONS),
                f"telling mention by {message.author.id}",
            )
            return
        text = render.progress_text(
            job.request,
            job.workflow.display_name,
            job.snapshot,
            is_backend_available=self.jobs.has_healthy_backend,
        )
        try:
            reply = await persist(
                lambda: message.reply(text, mention_author=False, allowed_mentions=NO_MENTIONS),
                f"reply to the mention of {job.id}",
            )
        except discord.HTTPException:
            await self.jobs.cancel(job.id, by=str(message.author.id))  # else it runs for nobody
            raise
        self.delivery.follow(job, MessageSink(reply))

    def _workflow(self, name: str) -> Workflow:
        return inputs.find_workflow(self.jobs.workflows, name)


async def setup(bot: ComfyBot) -> None:
    """Add the Generate cog and its message menu."""
    cog = Generate(bot.jobs, bot.settings, bot.delivery)
    await bot.add_cog(cog)
    bot.tree.add_command(cog.menu)


async def teardown(bot: ComfyBot) -> None:
    """Remove the message menu (the cog goes with the extension)."""
    bot.tree.remove_command(MENU_NAME, type=discord.AppCommandType.message)
