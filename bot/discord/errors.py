"""The one error hook of the Discord bot: failures become a private reply through `user_message`."""

from __future__ import annotations

import contextlib
import logging
import secrets
from typing import Any

import discord
from discord import app_commands

from bot.discord.persist import persist
from bot.errors import UNEXPECTED, user_message

log = logging.getLogger(__name__)


def describe(exc: BaseException, where: str) -> str:
    """Return the user text for `exc`; unexpected failures are logged under a short error id."""
    if isinstance(exc, app_commands.CommandInvokeError):
        exc = exc.original
    text = user_message(exc)
    if text == UNEXPECTED:
        error_id = secrets.token_hex(4)
        log.error("unexpected error %s in %s", error_id, where, exc_info=exc)
        return f"Sorry, something went wrong on our side (error id `{error_id}`)."
    log.info("refused %s: %s", where, text.splitlines()[0] if text else "")
    return text


async def reply_error(interaction: discord.Interaction[Any], exc: BaseException) -> None:
    """Tell the user privately what went wrong, whether or not the interaction was answered."""
    command = interaction.command.qualified_name if interaction.command else None
    where = f"{command or interaction.type.name} by {interaction.user.id}"
    text = describe(exc, where)
    try:
        if not interaction.response.is_done():
            await interaction.response.send_message(text, ephemeral=True)
            return
        if interaction.response.type is discord.InteractionResponseType.deferred_channel_message:
            # The first follow-up would fill the public "thinking…" message; remove it so the
            # refusal is private.
            with contextlib.suppress(discord.HTTPException):
                await interaction.delete_original_response()
        await persist(lambda: interaction.followup.send(text, ephemeral=True), f"telling {where}")
    except discord.HTTPException as reply_failure:
        log.warning("could not tell %s about an error: %s", where, reply_failure)


class ErrorTree(app_commands.CommandTree[Any]):
    """Command tree whose failures are answered privately with `bot.errors.user_message`."""

    async def on_error(
        self, interaction: discord.Interaction[Any], error: app_commands.AppCommandError
    ) -> None:
        """Reply to the user; unexpected failures are logged with an error id."""
        await reply_error(interaction, error)
