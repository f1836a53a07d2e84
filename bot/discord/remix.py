"""The Remix form: the prompt and negative of an image, filled in, to edit and run again."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import discord

from bot.discord.errors import reply_error

OnRemix = Callable[[discord.Interaction[Any], str, str], Awaitable[None]]
"""Run the variation with the edited (interaction, prompt, negative)."""


class RemixModal(discord.ui.Modal, title="Remix"):
    """Edit the prompt and negative of an image, then vary it with them."""

    prompt: discord.ui.TextInput[RemixModal] = discord.ui.TextInput(
        label="Prompt", style=discord.TextStyle.paragraph, max_length=1500, required=False
    )
    negative: discord.ui.TextInput[RemixModal] = discord.ui.TextInput(
        label="Negative prompt", style=discord.TextStyle.paragraph, max_length=1000, required=False
    )

    def __init__(self, prompt: str, negative: str, on_remix: OnRemix) -> None:
        super().__init__()
        self.prompt.default = prompt[:1500]
        self.negative.default = negative[:1000]
        self._on_remix = on_remix

    async def on_submit(self, interaction: discord.Interaction[Any]) -> None:
        """Run the variation with the edited text."""
        await self._on_remix(interaction, self.prompt.value, self.negative.value)

    async def on_error(  # type: ignore[override]  # Modal's hook has no `item`, unlike BaseView's
        self, interaction: discord.Interaction[Any], error: Exception, /
    ) -> None:
        """Reply privately, as the command tree does."""
        await reply_error(interaction, error)
