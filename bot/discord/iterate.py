"""Buttons that iterate on a result: U1..U4, V1..V4, Upscale, Vary (Subtle/Strong), Remix, info.

Persistent like the job buttons: a click is matched by its custom_id
`comfycord:<action>:<image>:<job_id>` alone, and the earlier job comes from the queue or the
journal, so buttons on messages sent before a restart work. Image 0 means the whole job.
"""

from __future__ import annotations

import re
from typing import Any, Self

import discord

from bot.discord import actions
from bot.discord.buttons import Button, RerollButton, job_view
from bot.discord.errors import reply_error
from bot.discord.grid import is_grid
from bot.discord.inputs import check_interaction
from bot.jobs.model import Job
from bot.jobs.progress import JobState

_TEMPLATE = (
    r"comfycord:(?P<action>pick|vary|upscale|subtle|strong|remix|info)"
    r":(?P<image>[0-4]):(?P<job_id>[A-Za-z0-9_-]{1,80})"
)
_LABELS = {
    "upscale": "Upscale",
    "subtle": "Vary (Subtle)",
    "strong": "Vary (Strong)",
    "remix": "Remix",
    "info": "\N{INFORMATION SOURCE}\ufe0f",
}
REROLL_LABEL = "\N{ANTICLOCKWISE DOWNWARDS AND UPWARDS OPEN CIRCLE ARROWS}"


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
        return cls(match["action"], int(match["image"]), match["job_id"])

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        """Do the action; every refusal is a private message."""
        try:
            check_interaction(actions.services(interaction).settings, interaction)
            if self.action == "remix":
                await actions.remix(interaction, self.job_id, self.image)
            elif self.action == "info":
                await actions.info(interaction, self.job_id, self.image)
            elif self.action == "pick":
                view = single_view(self.job_id, self.image)
                await actions.pick(interaction, self.job_id, self.image, view)
            else:
                await actions.vary_or_upscale(interaction, self.action, self.job_id, self.image)
        except Exception as exc:  # the one catch point of these buttons
            await reply_error(interaction, exc)


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
    # An ended job's bytes may be released (bot.jobs.ended): its files still say how many.
    made = max(len(result.outputs), len(result.files)) if result is not None else 0
    if result is None or result.state is not JobState.DONE or not made:
        return job_view(job, has_ended)
    if is_grid(job.request.count, made):
        return grid_view(job.id, made)
    if made == 1:
        return single_view(job.id, 1)
    return job_view(job, has_ended)


ITERATE_ITEMS = (ResultButton,)
"""The persistent button classes of this module, registered by the bot at start."""
