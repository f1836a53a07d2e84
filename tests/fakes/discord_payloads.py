"""Wire payloads of the fake Discord: snowflakes, users, members, the guild, messages, errors."""

from __future__ import annotations

import datetime
import io
import itertools
import json
import time
from typing import Any

import discord
from aiohttp import web
from PIL import Image, UnidentifiedImageError

DISCORD_EPOCH_MS = 1_420_070_400_000
_sequence = itertools.count()

MEMBER_PERMISSIONS = discord.Permissions(
    view_channel=True,
    send_messages=True,
    embed_links=True,
    attach_files=True,
    read_message_history=True,
    add_reactions=True,
    use_external_emojis=True,
    use_application_commands=True,
).value
BOT_PERMISSIONS = MEMBER_PERMISSIONS | discord.Permissions(manage_messages=True).value
OWNER_PERMISSIONS = discord.Permissions.all().value

FLAG_EPHEMERAL = 1 << 6
FLAG_LOADING = 1 << 7
FLAG_COMPONENTS_V2 = 1 << 15


def snowflake() -> int:
    """Return a fresh, increasing snowflake with the current time in it."""
    ms = int(time.time() * 1000) - DISCORD_EPOCH_MS
    return (ms << 22) | (next(_sequence) & 0x3FFFFF)


def now_iso() -> str:
    """Return the current time as Discord's ISO 8601 timestamp."""
    return datetime.datetime.now(datetime.UTC).isoformat()


def json_response(
    data: Any, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    """Answer JSON with ``Content-Type`` exactly ``application/json``, as discord.py requires."""
    return web.Response(
        status=status,
        body=json.dumps(data).encode(),
        headers={"Content-Type": "application/json", **(headers or {})},
    )


def error(
    status: int, code: int, message: str, errors: dict[str, Any] | None = None
) -> web.Response:
    """Answer a Discord JSON error body."""
    body: dict[str, Any] = {"message": message, "code": code}
    if errors:
        body["errors"] = errors
    return json_response(body, status)


def form_errors(problems: list[tuple[str, str, str]]) -> dict[str, Any]:
    """Nest ``(dotted.path, CODE, message)`` triples the way Discord reports Invalid Form Body."""
    tree: dict[str, Any] = {}
    for path, code, message in problems:
        node = tree
        for part in path.split("."):
            node = node.setdefault(part, {})
        node.setdefault("_errors", []).append({"code": code, "message": message})
    return tree


def user(user_id: int, name: str, *, is_bot: bool = False) -> dict[str, Any]:
    """Build a user object."""
    data: dict[str, Any] = {
        "id": str(user_id),
        "username": name,
        "discriminator": "0",
        "global_name": None if is_bot else name,
        "avatar": None,
        "public_flags": 0,
    }
    if is_bot:
        data["bot"] = True
    return data


def role(role_id: int, name: str, permissions: int, position: int) -> dict[str, Any]:
    """Build a role object."""
    return {
        "id": str(role_id),
        "name": name,
        "permissions": str(permissions),
        "position": position,
        "color": 0,
        "hoist": False,
        "managed": False,
        "mentionable": False,
        "flags": 0,
    }


def member(user_data: dict[str, Any], roles: list[int], joined_at: str) -> dict[str, Any]:
    """Build a guild member object (without ``permissions``)."""
    return {
        "user": user_data,
        "roles": [str(r) for r in roles],
        "flags": 0,
        "joined_at": joined_at,
        "nick": None,
        "avatar": None,
        "deaf": False,
        "mute": False,
        "pending": False,
    }


def text_channel(channel_id: int, guild_id: int, name: str) -> dict[str, Any]:
    """Build a guild text channel object."""
    return {
        "id": str(channel_id),
        "type": 0,
        "name": name,
        "position": 0,
        "guild_id": str(guild_id),
        "permission_overwrites": [],
        "topic": None,
        "nsfw": False,
        "last_message_id": None,
        "rate_limit_per_user": 0,
        "parent_id": None,
    }


def guild(
    guild_id: int,
    owner_id: int,
    *,
    channels: list[dict[str, Any]],
    roles: list[dict[str, Any]],
    members: list[dict[str, Any]],
) -> dict[str, Any]:
    """Build the GUILD_CREATE payload; ``member_count == len(members)`` so no chunking is needed."""
    empty: dict[str, Any] = {
        key: []
        for key in (
            "threads",
            "emojis",
            "stickers",
            "stage_instances",
            "guild_scheduled_events",
            "soundboard_sounds",
            "voice_states",
            "presences",
            "features",
        )
    }
    return {
        "id": str(guild_id),
        "name": "Fake Guild",
        "owner_id": str(owner_id),
        "icon": None,
        "large": False,
        "unavailable": False,
        "joined_at": now_iso(),
        "member_count": len(members),
        "members": members,
        "channels": channels,
        "roles": roles,
        "preferred_locale": "en-US",
        **empty,
    }


def message(
    message_id: int, channel_id: int, author: dict[str, Any], **fields: Any
) -> dict[str, Any]:
    """Build a message object with every field discord.py reads; ``fields`` override defaults."""
    data: dict[str, Any] = {
        "id": str(message_id),
        "type": 0,
        "channel_id": str(channel_id),
        "author": author,
        "content": "",
        "timestamp": now_iso(),
        "edited_timestamp": None,
        "tts": False,
        "mention_everyone": False,
        "mentions": [],
        "mention_roles": [],
        "attachments": [],
        "embeds": [],
        "components": [],
        "pinned": False,
        "flags": 0,
    }
    data.update(fields)
    return data


def image_size(data: bytes) -> tuple[int, int] | None:
    """Return ``(width, height)`` if ``data`` is an image Pillow can read."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            return image.size
    except (UnidentifiedImageError, OSError, ValueError):
        return None
