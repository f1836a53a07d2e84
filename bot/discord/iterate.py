"""Buttons that iterate on a result: U1..U4, V1..V4, Upscale, Vary (Subtle/Strong), Remix, info.

Persistent like the job buttons: a click is matched by its custom_id
`comfycord:<action>:<image>:<job_id>` alone, and the earlier job comes from the queue or the
journal, so buttons on messages sent before a restart work. Image 0 means the whole job.
"""

from __future__ import annotations

import asyncio
import io
import re
from typing import Any, Self, cast

import discord

from bot.discord import cards
from bot.discord.buttons import Button, ButtonServices, RerollButton, job_view
from bot.discord.delivery import to_embed, to_file
from bot.discord.errors import reply_error
from bot.discord.grid import cell, is_grid
from bot.discord.inputs import check_interaction
from bot.discord.remix import RemixModal
from bot.discord.sinks import NO_MENTIONS, InteractionSink
from bot.images import ImageFile
from bot.jobs.iterations import PastJob, SourceGone, past_job, source_image, vary_request
from bot.jobs.iterations import upscale_request as upscale_of
from bot.jobs.model import GenerationRequest, Job
from bot.jobs.preferences import Preferences
from bot.jobs.progress import JobState
from bot.jobs.recipe import RECIPE_FILENAME, Recipe

_TEMPLATE = r"comfycord:(?P<action>[a-z]+):(?P<image>[0-4]):(?P<job_id>[A-Za-z0-9_-]{1,80})"
_LABELS = {
    "upscale": "Upscale",
    "subtle": "Vary (Subtle)",
    "strong": "Vary (Strong)",
    "remix": "Remix",
    "info": "\N{INFORMATION SOURCE}\ufe0f",
}
REROLL_LABEL = "\N{ANTICLOCKWISE DOWNWARDS AND UPWARDS OPEN CIRCLE ARROWS}"


def _bot(interaction: discord.Interaction[Any]) -> ButtonServices:
    return cast("ButtonServices", interaction.client)


class ResultButton(discord.ui.DynamicItem[Button], template=re.compile(_TEMPLATE)):
    """One iterating action on image `image` (1-based; 0 = the whole job) of a finished job."""

    def __init__(self, action: str, image: int, job_id: str, *, row: int | None = None) -> None:
        label = {"pick": f"U{image}", "vary": f"V{image}"}.get(action) or _LABELS[action]
        style = discord.ButtonStyle.primary if action == "pick" else discord.ButtonStyle.secondary
        button: Button = discord.ui.Button(
            label=label, style=style, custom_id=f"comfycord:{action}:{image}:{job_id}", row=row
        )
        super().__init__(button)
        self.action, self.image, self.job_id = action, image, job_id

    @classmethod
    async def from_custom_id(
        cls,
        interaction: discord.Interaction[Any],
        item: discord.ui.Item[Any],
        match: re.Match[str],
        /,
    ) -> Self:
        """Rebuild the button from a click, also on messages sent before a restart."""
        if match["action"] not in {"pick", "vary", *_LABELS}:
            raise ValueError(f"unknown result action {match['action']!r}")
        return cls(match["action"], int(match["image"]), match["job_id"])

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        """Do the action; every refusal is a private message."""
        try:
            check_interaction(_bot(interaction).settings, interaction)
            if self.action == "remix":
                await _remix(interaction, self.job_id, self.image)
            elif self.action == "info":
                await _info(interaction, self.job_id, self.image)
            elif self.action == "pick":
                await _pick(interaction, self.job_id, self.image)
            else:
                await _vary_or_upscale(interaction, self.action, self.job_id, self.image)
        except Exception as exc:  # the one catch point of these buttons
            await reply_error(interaction, exc)


async def _source(
    interaction: discord.Interaction[Any], job_id: str, image: int, *, is_on_grid: bool
) -> tuple[PastJob, ImageFile]:
    """Return the job and its image `image` (1-based), else taken from the clicked message.

    Raises:
        SourceGone: neither ComfyUI nor the message has the image any more.
    """
    jobs = _bot(interaction).jobs
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


async def _pick(interaction: discord.Interaction[Any], job_id: str, image: int) -> None:
    await interaction.response.defer(thinking=True, ephemeral=await _is_private(interaction))
    past, picture = await _source(interaction, job_id, image, is_on_grid=True)
    text = cards.picked_text(past.request, image, past.count, str(interaction.user.id))
    await interaction.edit_original_response(
        content=text,
        attachments=[to_file(picture)],
        view=single_view(job_id, image),
        allowed_mentions=NO_MENTIONS,
    )


async def _vary_or_upscale(
    interaction: discord.Interaction[Any], action: str, job_id: str, image: int
) -> None:
    bot = _bot(interaction)
    is_private = await _is_private(interaction)
    response = await interaction.response.defer(thinking=True, ephemeral=is_private)
    past, picture = await _source(interaction, job_id, image, is_on_grid=action == "vary")
    settings, clicker = bot.settings, str(interaction.user.id)
    if action == "upscale":
        request = upscale_of(past, picture, requester=clicker, workflow=settings.upscale_workflow)
    else:
        denoise = settings.vary_subtle if action == "subtle" else settings.vary_strong
        request = vary_request(
            past, picture, requester=clicker, workflow=settings.vary_workflow, denoise=denoise
        )
    _submit(interaction, request, response, is_private=is_private)


def _submit(
    interaction: discord.Interaction[Any],
    request: GenerationRequest,
    response: discord.InteractionCallbackResponse[Any] | None,
    *,
    is_private: bool,
) -> Job:
    bot = _bot(interaction)
    job = bot.jobs.submit(request)
    message_id = response.message_id if response is not None else None
    sink = InteractionSink(interaction, message_id=message_id, is_private=is_private)
    bot.delivery.follow(job, sink)
    return job


async def _info(interaction: discord.Interaction[Any], job_id: str, image: int) -> None:
    bot = _bot(interaction)
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
    await interaction.response.send_message(
        embed=to_embed(cards.recipe_embed(recipe)), file=file, ephemeral=True
    )


async def _remix(interaction: discord.Interaction[Any], job_id: str, image: int) -> None:
    bot = _bot(interaction)
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
        _submit(submitted, request, response, is_private=is_private)

    modal = RemixModal(past.request.prompt, past.request.negative or "", on_submit)
    await interaction.response.send_modal(modal)


def grid_view(job_id: str, count: int) -> discord.ui.View:
    """Return a grid's buttons: U1..Un, V1..Vn, reroll all and the recipe."""
    view = discord.ui.View(timeout=None)
    for number in range(1, count + 1):
        view.add_item(ResultButton("pick", number, job_id, row=0))
    for number in range(1, count + 1):
        view.add_item(ResultButton("vary", number, job_id, row=1))
    view.add_item(_reroll(job_id, row=2))
    view.add_item(ResultButton("info", 0, job_id, row=2))
    return view


def single_view(job_id: str, image: int) -> discord.ui.View:
    """Return one image's buttons: Upscale, Vary (Subtle), Vary (Strong), Remix, reroll, recipe."""
    view = discord.ui.View(timeout=None)
    for action in ("upscale", "subtle", "strong", "remix"):
        view.add_item(ResultButton(action, image, job_id, row=0))
    view.add_item(_reroll(job_id, row=1))
    view.add_item(ResultButton("info", image, job_id, row=1))
    return view


def _reroll(job_id: str, *, row: int) -> RerollButton:
    reroll = RerollButton(job_id, label=REROLL_LABEL)
    reroll.item.row = row
    return reroll


def result_controls(job: Job, has_ended: bool) -> discord.ui.View | None:
    """Return a job message's buttons: a grid's or one image's once done, else the job's."""
    result = job.outcome if has_ended else None
    if result is None or result.state is not JobState.DONE or not result.outputs:
        return job_view(job, has_ended)
    if is_grid(job.request.count, len(result.outputs)):
        return grid_view(job.id, len(result.outputs))
    if len(result.outputs) == 1:
        return single_view(job.id, 1)
    return job_view(job, has_ended)


ITERATE_ITEMS = (ResultButton,)
"""The persistent button classes of this module, registered by the bot at start."""
