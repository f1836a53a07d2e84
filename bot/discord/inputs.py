"""Turn what Discord users give (options, attachments, roles, channels) into checked requests."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any

import discord

from bot.config import Settings
from bot.discord.errors import reply_error
from bot.discord.render import truncate
from bot.errors import ImageTooLarge, InvalidImage, NotAllowed
from bot.images import ImageFile, check_input_image
from bot.jobs.model import GenerationRequest
from bot.workflows.library import Workflow, WorkflowInputError, WorkflowLibrary

OPTION_HELP = {
    "prompt": "What to draw",
    "negative": "What to avoid",
    "workflow": "Which workflow to run (the default depends on whether you attach an image)",
    "image": "Input image for image-to-image workflows",
    "image2": "Second input image, for workflows that take two",
    "seed": "Seed for reproducible results (random if empty)",
    "steps": "Sampling steps",
    "width": "Width in pixels",
    "height": "Height in pixels",
}
"""Descriptions of /generate's options, as Discord shows them."""

MODAL_TIMEOUT = 10 * 60.0
"""Seconds a form stays open; discord.py then forgets it (one closed unsent would stay forever)."""

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".gif", ".bmp", ".tif", ".tiff")


def check_access(
    settings: Settings, channel_ids: Iterable[int | None], role_ids: Iterable[int]
) -> None:
    """Refuse requests outside the allowed channels or from members without an allowed role.

    Raises:
        NotAllowed: with a message naming what is allowed.
    """
    channels, roles = settings.allowed_channel_ids, settings.allowed_role_ids
    if channels and not channels.intersection(channel_ids):
        where = ", ".join(f"<#{channel}>" for channel in sorted(channels))
        raise NotAllowed(f"I only take requests in {where}.")
    if roles and not roles.intersection(role_ids):
        which = ", ".join(f"<@&{role}>" for role in sorted(roles))
        raise NotAllowed(f"You need one of these roles to generate images: {which}.")


def check_interaction(settings: Settings, interaction: discord.Interaction[Any]) -> None:
    """Apply `check_access` to the channel (or thread parent) and roles of an interaction.

    Raises:
        NotAllowed: outside the allow-lists.
    """
    parent = getattr(interaction.channel, "parent_id", None)
    check_access(settings, (interaction.channel_id, parent), _roles(interaction.user))


def check_message(settings: Settings, message: discord.Message) -> None:
    """Apply `check_access` to a chat message.

    Raises:
        NotAllowed: outside the allow-lists.
    """
    parent = getattr(message.channel, "parent_id", None)
    check_access(settings, (message.channel.id, parent), _roles(message.author))


def _roles(user: discord.abc.User) -> list[int]:
    return [role.id for role in user.roles] if isinstance(user, discord.Member) else []


def is_image(attachment: discord.Attachment) -> bool:
    """Tell whether an attachment claims to be an image."""
    if attachment.content_type:
        return attachment.content_type.startswith("image/")
    return attachment.filename.lower().endswith(IMAGE_SUFFIXES)


def find_workflow(library: WorkflowLibrary, name: str) -> Workflow:
    """Return the workflow with that name or display name; never a path on disk.

    Raises:
        UnknownWorkflow: no such workflow (the message lists the available ones).
    """
    if name in library:
        return library.get(name)
    for workflow in library:
        if workflow.display_name.casefold() == name.strip().casefold():
            return workflow
    return library.get(name)


def workflow_choices(library: WorkflowLibrary, typed: str) -> list[tuple[str, str]]:
    """Return up to 25 (label, name) pairs of workflows whose name or display name matches."""
    needle = typed.strip().casefold()
    found = [
        (
            truncate(f"{w.display_name} ({w.name})" if w.display_name != w.name else w.name, 100),
            w.name,
        )
        for w in library
        if needle in w.name.casefold() or needle in w.display_name.casefold()
    ]
    return found[:25]


def build_request(
    workflow: Workflow, requester: int, image_count: int, **values: Any
) -> GenerationRequest:
    """Return a request for `workflow`, checked against its inputs and ranges (no images yet).

    Raises:
        WorkflowInputError: a value out of range or without a place, or a missing input image.
    """
    if workflow.image_inputs and not image_count:
        raise WorkflowInputError(
            f"The workflow {workflow.display_name} needs an input image; attach one."
        )
    request = GenerationRequest(requester=str(requester), workflow=workflow.name, **values)
    request.graph_for(workflow, [f"check_{i}.png" for i in range(image_count)])
    return request


def check_attachments(attachments: Sequence[discord.Attachment], max_bytes: int) -> None:
    """Refuse attachments that are not images or too large, before downloading them.

    Raises:
        InvalidImage: not an image; ImageTooLarge: over `max_bytes`.
    """
    for attachment in attachments:
        if not is_image(attachment):
            raise InvalidImage(f"{attachment.filename} is not an image.")
        if attachment.size > max_bytes:
            raise ImageTooLarge(
                f"{attachment.filename} is {attachment.size / 2**20:.1f} MiB;"
                f" the limit is {max_bytes / 2**20:.1f} MiB per image."
            )


async def read_images(
    attachments: Sequence[discord.Attachment], max_bytes: int
) -> tuple[ImageFile, ...]:
    """Download and check every attachment.

    Raises:
        InvalidImage: not an image, too large, corrupt, or it could not be downloaded.
    """
    check_attachments(attachments, max_bytes)
    images = []
    for attachment in attachments:
        try:
            data = await attachment.read()
        except discord.HTTPException as exc:
            raise InvalidImage(f"{attachment.filename} could not be downloaded.") from exc
        image = await asyncio.to_thread(
            check_input_image, data, attachment.filename, max_bytes=max_bytes
        )
        images.append(image)
    return tuple(images)


class PromptModal(discord.ui.Modal, title="Use this image as input"):
    """Ask for the prompt of a "Use as input" request."""

    prompt: discord.ui.TextInput[PromptModal] = discord.ui.TextInput(
        label="Prompt", style=discord.TextStyle.paragraph, max_length=1500, required=False
    )

    def __init__(
        self,
        on_prompt: Callable[[discord.Interaction[Any], str], Awaitable[None]],
        *,
        timeout: float = MODAL_TIMEOUT,
    ) -> None:
        super().__init__(timeout=timeout)
        self._on_prompt = on_prompt

    async def on_submit(self, interaction: discord.Interaction[Any]) -> None:
        """Hand the prompt to the flow."""
        await self._on_prompt(interaction, self.prompt.value)

    async def on_error(  # type: ignore[override]  # Modal's hook has no `item`, unlike BaseView's
        self, interaction: discord.Interaction[Any], error: Exception, /
    ) -> None:
        """Reply privately, as the command tree does."""
        await reply_error(interaction, error)
