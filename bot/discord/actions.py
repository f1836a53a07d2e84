"""What the result buttons do: post an image alone, upscale or vary it, remix it, its recipe.

Each action finds the earlier job (`bot.jobs.iterations`), takes its image from memory, from the
ComfyUI that made it or from the clicked message, and submits or answers like any command.
"""

from __future__ import annotations

import asyncio
import io
from typing import Any, cast

import discord

from bot.discord import cards, render
from bot.discord.buttons import ButtonServices
from bot.discord.ending import to_embed, to_file
from bot.discord.grid import cell
from bot.discord.remix import RemixModal
from bot.discord.sinks import NO_MENTIONS, InteractionSink
from bot.images import ImageFile
from bot.jobs.iterations import (
    PastJob,
    SourceGone,
    past_job,
    source_image,
    upscale_request,
    vary_request,
)
from bot.jobs.model import GenerationRequest, Job
from bot.jobs.preferences import Preferences
from bot.jobs.recipe import RECIPE_FILENAME, Recipe


def services(interaction: discord.Interaction[Any]) -> ButtonServices:
    """Return the services of the client a button was clicked on."""
    return cast("ButtonServices", interaction.client)


async def _source(
    interaction: discord.Interaction[Any], job_id: str, image: int, *, is_on_grid: bool
) -> tuple[PastJob, ImageFile]:
    """Return the job and its image `image` (1-based), else taken from the clicked message.

    Raises:
        SourceGone: neither ComfyUI nor the message has the image any more.
    """
    jobs = services(interaction).jobs
    past = await past_job(jobs, job_id)
    try:
        return past, await source_image(jobs, past, image - 1)
    except SourceGone:
        found = await _from_message(interaction, past, image, is_on_grid=is_on_grid)
        if found is None:
            raise
        return past, found


async def _from_message(
    interaction: discord.Interaction[Any], past: PastJob, image: int, *, is_on_grid: bool
) -> ImageFile | None:
    """Return the image from the clicked message's attachment: the grid's cell, or itself."""
    attachments = interaction.message.attachments if interaction.message else []
    if len(attachments) != 1 or not 1 <= image <= past.count:
        return None
    try:
        data = await attachments[0].read()
    except discord.HTTPException:
        return None
    if not is_on_grid:
        return ImageFile(attachments[0].filename, data)
    name = f"{past.job_id[-8:]}_{image}.png"
    try:
        return await asyncio.to_thread(cell, ImageFile(name, data), past.count, image - 1, name)
    except ValueError:
        return None


async def _is_private(interaction: discord.Interaction[Any]) -> bool:
    preferences = getattr(interaction.client, "preferences", None)
    if not isinstance(preferences, Preferences):
        return False
    return (await preferences.get(str(interaction.user.id))).is_private


async def pick(
    interaction: discord.Interaction[Any], job_id: str, image: int, view: discord.ui.View
) -> None:
    """Post image `image` of the job alone, with `view`'s buttons (no ComfyUI work)."""
    await interaction.response.defer(thinking=True, ephemeral=await _is_private(interaction))
    past, picture = await _source(interaction, job_id, image, is_on_grid=True)
    fitted, notes = await asyncio.to_thread(
        render.fit_outputs, [picture], interaction.filesize_limit
    )
    text = cards.picked_text(past.request, image, past.count, str(interaction.user.id))
    text = render.truncate("\n".join([text, *(f"-# {note}" for note in notes)]), 2000)
    await interaction.edit_original_response(
        content=text,
        attachments=[to_file(file) for file in fitted],
        view=view,
        allowed_mentions=NO_MENTIONS,
    )


async def vary_or_upscale(
    interaction: discord.Interaction[Any], action: str, job_id: str, image: int
) -> None:
    """Run UPSCALE_WORKFLOW ("upscale") or VARY_WORKFLOW ("vary", "subtle", "strong") on it."""
    bot = services(interaction)
    is_private = await _is_private(interaction)
    response = await interaction.response.defer(thinking=True, ephemeral=is_private)
    past, picture = await _source(interaction, job_id, image, is_on_grid=action == "vary")
    settings, clicker = bot.settings, str(interaction.user.id)
    if action == "upscale":
        request = upscale_request(
            past, picture, requester=clicker, workflow=settings.upscale_workflow
        )
    else:
        denoise = settings.vary_subtle if action == "subtle" else settings.vary_strong
        request = vary_request(
            past, picture, requester=clicker, workflow=settings.vary_workflow, denoise=denoise
        )
    await _submit(interaction, request, response, is_private=is_private)


async def _submit(
    interaction: discord.Interaction[Any],
    request: GenerationRequest,
    response: discord.InteractionCallbackResponse[Any] | None,
    *,
    is_private: bool,
) -> Job:
    bot = services(interaction)
    # The clicker's server rules apply as to any request: terms, quotas, cooldown, priority.
    member = await bot.community.member(interaction)
    admitted, cap = await bot.community.admit(member, request, bot.jobs)
    job = bot.jobs.submit(admitted, max_jobs=cap)
    message_id = response.message_id if response is not None else None
    sink = InteractionSink(interaction, message_id=message_id, is_private=is_private)
    bot.delivery.follow(job, sink)
    return job


async def info(interaction: discord.Interaction[Any], job_id: str, image: int) -> None:
    """Answer privately with the recipe and the graph that ran (image 0: the whole job)."""
    bot = services(interaction)
    past = await past_job(bot.jobs, job_id)
    if past.graph is None:
        raise SourceGone("The bot did not keep how this job was made.")
    workflow = bot.jobs.workflows.resolve(past.request.workflow)
    graph = past.graph_of(image - 1 if image else None) or past.graph
    asked = (past.request.prompt, past.request.negative or "")
    recipe = Recipe.from_graph(
        workflow, graph, elapsed=past.elapsed, server=past.backend, asked=asked
    )
    file = discord.File(io.BytesIO(recipe.graph_json()), filename=RECIPE_FILENAME)
    card = cards.recipe_embed(recipe, is_one_copy=len(graph) < len(past.graph))
    await interaction.response.send_message(embed=to_embed(card), file=file, ephemeral=True)


async def remix(interaction: discord.Interaction[Any], job_id: str, image: int) -> None:
    """Open the Remix form; submitting it varies the image with the edited text."""
    bot = services(interaction)
    past = await past_job(bot.jobs, job_id)

    async def on_submit(submitted: discord.Interaction[Any], prompt: str, negative: str) -> None:
        is_private = await _is_private(submitted)
        response = await submitted.response.defer(thinking=True, ephemeral=is_private)
        source, picture = await _source(submitted, job_id, image, is_on_grid=False)
        request = vary_request(
            source,
            picture,
            requester=str(submitted.user.id),
            workflow=bot.settings.vary_workflow,
            denoise=bot.settings.vary_strong,
            prompt=prompt,
            negative=negative,
        )
        await _submit(submitted, request, response, is_private=is_private)

    modal = RemixModal(past.request.prompt, past.request.negative or "", on_submit)
    await interaction.response.send_modal(modal)
