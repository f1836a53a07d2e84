"""/generate and "Use as input": receive requests, hand them to the JobQueue.

This cog only parses and checks what Discord delivers; queueing is `bot.jobs.queue`, keeping the
reply current is `bot.discord.delivery`. Mentions with an image are cogs/chat.py's.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any, Literal

import discord
from discord import app_commands
from discord.ext import commands

from bot.community.gate import Member
from bot.config import Settings
from bot.discord import inputs, options
from bot.discord.community import Community
from bot.discord.delivery import Delivery, origin
from bot.discord.sinks import InteractionSink
from bot.errors import InvalidImage
from bot.jobs.catalog import ModelCatalog
from bot.jobs.model import GenerationRequest
from bot.jobs.preferences import Preferences
from bot.jobs.queue import JobQueue
from bot.workflows.library import Workflow

if TYPE_CHECKING:
    from bot.discord.client import ComfyBot

DISCORD_MAX_INT = 2**53 - 1  # the largest integer option Discord accepts
ASPECT = Literal["1:1", "4:3", "3:4", "3:2", "2:3", "16:9", "9:16", "21:9"]  # = aspect.ASPECTS
MENU_NAME = "Use as input"


class Generate(commands.Cog):
    """Take generation requests from the slash command and the message menu."""

    def __init__(
        self,
        jobs: JobQueue,
        settings: Settings,
        delivery: Delivery,
        preferences: Preferences,
        community: Community,
    ) -> None:
        self.jobs = jobs
        self.preferences = preferences
        self.settings = settings
        self.delivery = delivery
        self.community = community
        self.catalog = ModelCatalog(jobs.backends)
        self.menu = app_commands.ContextMenu(name=MENU_NAME, callback=self.use_as_input)

    @app_commands.command(name="generate")
    @app_commands.describe(**inputs.OPTION_HELP, **options.OPTION_HELP)
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
        count: app_commands.Range[int, 1, 4] | None = None,
        aspect: ASPECT | None = None,
        model: str | None = None,
        lora: str | None = None,
        lora_strength: app_commands.Range[float, -5.0, 5.0] | None = None,
    ) -> None:
        """Generate images with ComfyUI."""
        attachments = [a for a in (image, image2) if a is not None]
        member = await self.community.member(interaction)
        rules = await self.community.rules(member.guild_id)
        inputs.check_attachments(attachments, self.settings.max_input_image_bytes)
        mine = await self.preferences.get(str(interaction.user.id))
        # A member's default that an admin removed, or this server does not allow, falls back
        # to the server's.
        kept = mine.workflow if mine.workflow in self.jobs.workflows else None
        kept = kept if kept is not None and rules.allows_workflow(kept) else None
        default = rules.default_image_workflow if attachments else kept
        chosen = self._workflow(workflow or default or rules.default_workflow)
        values = options.request_values(
            chosen, prompt, negative=negative, seed=seed, steps=steps, width=width,
            height=height, count=count, aspect=aspect, model=model, lora=lora,
            lora_strength=lora_strength,
        )  # fmt: skip
        values = options.with_defaults(chosen, values, mine)
        request = inputs.build_request(chosen, interaction.user.id, len(attachments), **values)
        await self._run(interaction, member, request, attachments, is_private=mine.is_private)

    @generate.autocomplete("workflow")
    async def workflow_autocomplete(
        self, interaction: discord.Interaction[Any], current: str
    ) -> list[app_commands.Choice[str]]:
        """Offer the library's workflows this server allows, by name and display name."""
        rules = await self.community.rules(interaction.guild_id)
        found = inputs.workflow_choices(self.jobs.workflows, current)
        return [
            app_commands.Choice(name=label, value=name)
            for label, name in found
            if rules.allows_workflow(name)
        ]

    @generate.autocomplete("model")
    async def model_autocomplete(
        self, interaction: discord.Interaction[Any], current: str
    ) -> list[app_commands.Choice[str]]:
        """Offer the servers' checkpoints (or UNETs) that the workflow's sidecar allows."""
        return await self._files(interaction, "model", current)

    @generate.autocomplete("lora")
    async def lora_autocomplete(
        self, interaction: discord.Interaction[Any], current: str
    ) -> list[app_commands.Choice[str]]:
        """Offer the servers' LoRAs that the workflow's sidecar allows."""
        return await self._files(interaction, "lora", current)

    async def _files(
        self, interaction: discord.Interaction[Any], option: str, current: str
    ) -> list[app_commands.Choice[str]]:
        name = getattr(interaction.namespace, "workflow", None) or self.settings.default_workflow
        names = await options.file_choices(self.jobs.workflows, name, option, current, self.catalog)
        return [app_commands.Choice(name=n[:100], value=n) for n in names if len(n) <= 100]

    async def use_as_input(
        self, interaction: discord.Interaction[Any], message: discord.Message
    ) -> None:
        """Run the image workflow on this message's images; the prompt is asked in a form."""
        attachments = [a for a in message.attachments if inputs.is_image(a)]
        if not attachments:
            raise InvalidImage("That message has no image I can use.")
        member = await self.community.member(interaction)
        rules = await self.community.rules(member.guild_id)
        chosen = self._workflow(rules.default_image_workflow)
        attachments = attachments[: max(chosen.image_inputs, 1)]
        inputs.check_attachments(attachments, self.settings.max_input_image_bytes)

        async def on_prompt(submitted: discord.Interaction[Any], prompt: str) -> None:
            values = options.request_values(chosen, prompt)
            request = inputs.build_request(chosen, submitted.user.id, len(attachments), **values)
            await self._run(submitted, member, request, attachments)

        modal = inputs.PromptModal(on_prompt, timeout=inputs.MODAL_TIMEOUT)
        await interaction.response.send_modal(modal)

    async def _run(
        self,
        interaction: discord.Interaction[Any],
        member: Member,
        request: GenerationRequest,
        attachments: list[discord.Attachment],
        *,
        is_private: bool = False,
    ) -> None:
        # Before the reply exists: a refusal stays private and nothing is sent to ComfyUI.
        admitted = await self.community.admit(member, request, self.jobs)
        with admitted:  # a failure before the job exists gives the quota back
            request = admitted.request
            response = await interaction.response.defer(thinking=True, ephemeral=is_private)
            images = await inputs.read_images(attachments, self.settings.max_input_image_bytes)
            if images:
                await self.community.check_inputs(
                    member, images, interaction.channel, request.prompt
                )
            message_id = response.message_id if response is not None else None
            sink = InteractionSink(interaction, message_id=message_id, is_private=is_private)
            job = admitted.submit(
                replace(request, images=images, origin=origin(sink, request.requester))
            )
        self.delivery.follow(job, sink)

    def _workflow(self, name: str) -> Workflow:
        return inputs.find_workflow(self.jobs.workflows, name)


async def setup(bot: ComfyBot) -> None:
    """Add the Generate cog and its message menu."""
    cog = Generate(bot.jobs, bot.settings, bot.delivery, bot.preferences, bot.community)
    await bot.add_cog(cog)
    bot.tree.add_command(cog.menu)


async def teardown(bot: ComfyBot) -> None:
    """Remove the message menu (the cog goes with the extension)."""
    bot.tree.remove_command(MENU_NAME, type=discord.AppCommandType.message)
