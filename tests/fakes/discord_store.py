"""The fake Discord's stored state: files, messages, edit buckets, commands and interactions."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from aiohttp import web

from tests.fakes import discord_payloads as payloads
from tests.fakes.discord_gateway import Gateway
from tests.fakes.discord_guild import FakeGuild
from tests.fakes.discord_http import rate_limit_response
from tests.fakes.discord_interactions import APPLICATION_COMMAND, Interaction
from tests.fakes.discord_payloads import FLAG_EPHEMERAL, error, snowflake

if TYPE_CHECKING:
    from tests.fakes.discord_http import RecordedCall

REQUEST_SIZE_LIMIT = 25 * 1024 * 1024


class FakeStore(FakeGuild):
    """What the fake remembers across bot restarts, and the rules applied when it changes."""

    def __init__(self) -> None:
        super().__init__()
        self.attachment_size_limit = 10 * 1024 * 1024
        self.edit_bucket: tuple[int, float] | None = None
        self.is_echoing_bot_messages = True
        self.messages: dict[int, dict[str, Any]] = {}
        self.deleted_messages: dict[int, dict[str, Any]] = {}
        self.interactions: dict[int, Interaction] = {}
        self.commands: dict[int | None, list[dict[str, Any]]] = {}
        self.modals: dict[str, dict[str, Any]] = {}
        self.gateway = Gateway(self)
        self._files: dict[int, tuple[bytes, str]] = {}
        self._buckets: dict[int, tuple[float, int]] = {}
        self._command_ids: dict[tuple[str, int], int] = {}

    def add_attachment(
        self, data: bytes, filename: str, content_type: str = "image/png"
    ) -> dict[str, Any]:
        """Store a user's upload and return its attachment payload (for slash or post_message)."""
        return self.store_file(data, filename, content_type, is_ephemeral=True)

    def store_file(
        self,
        data: bytes,
        filename: str,
        content_type: str,
        *,
        description: str | None = None,
        is_ephemeral: bool = False,
    ) -> dict[str, Any]:
        """Store bytes, serve them under /attachments/, and return the attachment payload."""
        attachment_id = snowflake()
        self._files[attachment_id] = (data, content_type)
        url = f"{self.url}/attachments/{attachment_id}/{filename}"
        attachment: dict[str, Any] = {
            "id": str(attachment_id),
            "filename": filename,
            "size": len(data),
            "url": url,
            "proxy_url": url,
            "content_type": content_type,
            "ephemeral": is_ephemeral,
        }
        if description is not None:
            attachment["description"] = description
        if size := payloads.image_size(data):
            attachment["width"], attachment["height"] = size
        return attachment

    def attachment_bytes(self, attachment: Mapping[str, Any] | int | str) -> bytes:
        """Return the stored bytes of an attachment payload or id."""
        key = attachment["id"] if isinstance(attachment, Mapping) else attachment
        return self._files[int(key)][0]

    def expire_attachment(self, attachment: Mapping[str, Any] | int | str) -> None:
        """Make an attachment's URL answer 404, as Discord's CDN does once a link expired."""
        key = attachment["id"] if isinstance(attachment, Mapping) else attachment
        self._files.pop(int(key), None)

    async def _serve_attachment(self, request: web.Request) -> web.StreamResponse:
        stored = self._files.get(int(request.match_info["id"]))
        if stored is None:
            return web.Response(status=404, text="Not Found")
        return web.Response(body=stored[0], headers={"Content-Type": stored[1]})

    def reject_upload(self, call: RecordedCall) -> web.Response | None:
        """Answer 413 like Discord when a file exceeds ``attachment_size_limit``."""
        sizes = [len(data) for _, data, _ in call.files]
        if (
            any(size > self.attachment_size_limit for size in sizes)
            or sum(sizes) > REQUEST_SIZE_LIMIT
        ):
            return error(413, 40005, "Request entity too large")
        return None

    def take_edit_token(self, message_id: int) -> web.Response | None:
        """Count an edit in the message's ``edit_bucket``; answer 429 when it is spent."""
        if self.edit_bucket is None:
            return None
        limit, per = self.edit_bucket
        now = time.monotonic()
        start, count = self._buckets.get(message_id, (now, 0))
        if now - start >= per:
            start, count = now, 0
        if count >= limit:
            return rate_limit_response(start + per - now, f"edit-{message_id}")
        self._buckets[message_id] = (start, count + 1)
        return None

    def new_bot_message(
        self, ix: Interaction | None, flags: int, channel_id: int | None = None
    ) -> dict[str, Any]:
        """Build (not store) a message authored by the bot, tied to ``ix`` if given."""
        author = self.users[self.bot_user_id]
        if ix is not None:
            channel_id = int(ix.payload["channel_id"])
        channel_id = channel_id or self.channel_id
        message = payloads.message(snowflake(), channel_id, author, flags=flags)
        if ix is not None:
            data = ix.payload["data"]
            is_command = ix.type == APPLICATION_COMMAND
            message["type"] = (20 if data.get("type", 1) == 1 else 23) if is_command else 0
            message["webhook_id"] = message["application_id"] = str(self.application_id)
            metadata: dict[str, Any] = {
                "id": str(ix.id),
                "type": ix.type,
                "user": self.users[ix.user_id],
                "authorizing_integration_owners": {"0": str(self.guild_id)},
            }
            if is_command:
                metadata["name"] = ix.name
            if ix.message_id is not None:
                metadata["interacted_message_id"] = str(ix.message_id)
            message["interaction_metadata"] = metadata
        return message

    async def store_message(self, message: dict[str, Any], ix: Interaction | None) -> None:
        """Keep a new bot message and echo MESSAGE_CREATE on the gateway."""
        self.messages[int(message["id"])] = message
        if ix is not None:
            ix.message_ids.append(int(message["id"]))
        await self.echo("MESSAGE_CREATE", message)

    async def delete_message(self, message_id: int) -> None:
        """Move a message to ``deleted_messages`` and echo MESSAGE_DELETE."""
        message = self.deleted_messages[message_id] = self.messages.pop(message_id)
        if self.is_echoing_bot_messages and not message["flags"] & FLAG_EPHEMERAL:
            ids = {"id": message["id"], "channel_id": message["channel_id"]}
            await self.gateway.dispatch(
                "MESSAGE_DELETE", {**ids, "guild_id": str(self.guild_id)}, wait=0
            )

    async def echo(self, event: str, message: dict[str, Any]) -> None:
        """Send the bot's own non-ephemeral message back on the gateway, as Discord does."""
        if self.is_echoing_bot_messages and not message["flags"] & FLAG_EPHEMERAL:
            await self.gateway.dispatch(event, self._gateway_message(message), wait=0)

    def _gateway_message(self, message: dict[str, Any]) -> dict[str, Any]:
        member = self.member_payload(int(message["author"]["id"]))
        del member["user"]
        return {**message, "guild_id": str(self.guild_id), "member": member}

    # commands

    def command_id(self, name: str, kind: int) -> int:
        """Return the id of a command (the synced one, or a stable made-up one)."""
        for synced in self.commands.values():
            for command in synced:
                if command["name"] == name and command["type"] == kind:
                    return int(command["id"])
        return self._command_ids.setdefault((name, kind), snowflake())

    def is_guild_command(self, name: str, kind: int) -> bool:
        """Tell whether interactions for ``name`` carry ``data.guild_id``.

        True when synced to the guild, False when synced only globally; True if never synced,
        which discord.py resolves through its fallback to global commands.
        """
        matches = [(c["name"], c["type"]) == (name, kind) for c in self.commands.get(None, [])]
        guild = [
            (c["name"], c["type"]) == (name, kind) for c in self.commands.get(self.guild_id, [])
        ]
        return any(guild) or not any(matches)

    def interaction_by_token(self, token: str) -> Interaction | None:
        """Find an interaction by its token."""
        return next((ix for ix in self.interactions.values() if ix.token == token), None)

    def original(self, interaction: Interaction | int) -> dict[str, Any] | None:
        """Return the current @original message of an interaction, if any."""
        ix = self._interaction(interaction)
        return self.messages.get(ix.original_message_id or 0)

    def _interaction(self, interaction: Interaction | int) -> Interaction:
        return (
            interaction if isinstance(interaction, Interaction) else self.interactions[interaction]
        )
