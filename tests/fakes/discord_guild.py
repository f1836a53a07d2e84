"""The fake Discord's guild: ids, users, roles, members and the payloads describing them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tests.fakes import discord_payloads as payloads
from tests.fakes.discord_payloads import snowflake


class FakeGuild:
    """A guild with one text channel, the bot's member and role, and an owner.

    More guilds (`add_guild`) and channels (`add_channel`, NSFW or not) may be added; every
    user is a member of every guild, with the roles of that guild among their roles.
    """

    def __init__(self) -> None:
        self.application_id = snowflake()
        self.bot_user_id = snowflake()
        self.guild_id = snowflake()
        self.channel_id = snowflake()
        self.allowed_intents: int | None = None  # None allows every privileged intent
        self.bot_permissions = payloads.BOT_PERMISSIONS
        self.users: dict[int, dict[str, Any]] = {}
        self.roles: dict[int, dict[str, Any]] = {}
        self.url = self.api_base = self.gateway_url = ""
        self._members: dict[int, tuple[list[int], int, str]] = {}
        self.guild_ids: list[int] = [self.guild_id]
        self.role_guild: dict[int, int] = {}  # role id -> its guild
        self.channels: dict[int, dict[str, Any]] = {}  # channel id -> channel object
        self.roles[self.guild_id] = payloads.role(
            self.guild_id, "@everyone", payloads.MEMBER_PERMISSIONS, 0
        )
        self.role_guild[self.guild_id] = self.guild_id
        self.channels[self.channel_id] = payloads.text_channel(
            self.channel_id, self.guild_id, "general"
        )
        self._bot_role_id = self.add_role("ComfyCord", 0)
        self.users[self.bot_user_id] = payloads.user(self.bot_user_id, "ComfyCord", is_bot=True)
        self._members[self.bot_user_id] = ([self._bot_role_id], 0, payloads.now_iso())
        self.owner_id = self.add_user("owner", permissions=payloads.OWNER_PERMISSIONS)

    def add_role(self, name: str, permissions: int = 0, *, guild_id: int | None = None) -> int:
        """Create a role of a guild (the first unless named) and return its id."""
        role_id = snowflake()
        self.roles[role_id] = payloads.role(role_id, name, permissions, len(self.roles))
        self.role_guild[role_id] = guild_id or self.guild_id
        return role_id

    def add_guild(self) -> int:
        """Add another guild with its own text channel and @everyone; return the guild's id."""
        guild_id = snowflake()
        self.guild_ids.append(guild_id)
        self.roles[guild_id] = payloads.role(guild_id, "@everyone", payloads.MEMBER_PERMISSIONS, 0)
        self.role_guild[guild_id] = guild_id
        bot_roles = self._members[self.bot_user_id][0]
        bot_roles.append(self.add_role("ComfyCord", 0, guild_id=guild_id))
        self.add_channel(guild_id, "general")
        return guild_id

    def add_channel(
        self, guild_id: int | None = None, name: str = "art", *, nsfw: bool = False
    ) -> int:
        """Add a text channel (age-restricted when ``nsfw``) and return its id."""
        channel_id = snowflake()
        channel = payloads.text_channel(channel_id, guild_id or self.guild_id, name)
        channel["nsfw"] = nsfw
        self.channels[channel_id] = channel
        return channel_id

    def dm_channel(self, user_id: int) -> int:
        """Return the direct-message channel between a user and the bot (made on first use)."""
        for channel_id, channel in self.channels.items():
            if channel["type"] == 1 and channel["recipient"] == user_id:
                return channel_id
        channel_id = snowflake()
        self.channels[channel_id] = {
            "id": str(channel_id),
            "type": 1,
            "recipients": [self.users[user_id]],
            "recipient": user_id,
            "last_message_id": None,
        }
        return channel_id

    def first_channel(self, guild_id: int) -> int:
        """Return the first text channel of a guild."""
        return next(
            int(c["id"]) for c in self.channels.values() if c.get("guild_id") == str(guild_id)
        )

    def guild_of(self, channel_id: int) -> int | None:
        """Return the guild a channel belongs to (None for a direct message)."""
        guild = self.channels[channel_id].get("guild_id")
        return int(guild) if guild else None

    def add_user(
        self,
        name: str,
        *,
        permissions: int = payloads.MEMBER_PERMISSIONS,
        roles: Sequence[int] = (),
    ) -> int:
        """Add a guild member; ``permissions`` is what interactions report (plus its roles')."""
        user_id = snowflake()
        self.users[user_id] = payloads.user(user_id, name)
        self._members[user_id] = (list(roles), permissions, payloads.now_iso())
        return user_id

    def user_payload(self, user_id: int) -> dict[str, Any]:
        """Return the user object of ``user_id``."""
        return self.users[user_id]

    def member_payload(
        self, user_id: int, *, with_permissions: bool = False, guild_id: int | None = None
    ) -> dict[str, Any]:
        """Return ``user_id``'s member object in a guild (interactions carry ``permissions``)."""
        all_roles, permissions, joined_at = self._members[user_id]
        guild = guild_id or self.guild_id
        roles = [role for role in all_roles if self.role_guild.get(role) == guild]
        data = payloads.member(self.users[user_id], roles, joined_at)
        if with_permissions:
            for role_id in roles:
                permissions |= int(self.roles[role_id]["permissions"])
            data["permissions"] = str(permissions)
        return data

    def member_payloads(self, guild_id: int | None = None) -> list[dict[str, Any]]:
        """Return every member of a guild (the bot included)."""
        return [self.member_payload(user_id, guild_id=guild_id) for user_id in self._members]

    def channel_payload(self, channel_id: int | None = None) -> dict[str, Any]:
        """Return a text channel object (the first guild's channel unless named)."""
        channel = dict(self.channels[channel_id or self.channel_id])
        channel.pop("recipient", None)
        return channel

    def guild_payload(self, guild_id: int | None = None) -> dict[str, Any]:
        """Return the GUILD_CREATE payload of a guild (the first unless named)."""
        guild = guild_id or self.guild_id
        for role_id in self._members[self.bot_user_id][0]:
            self.roles[role_id]["permissions"] = str(self.bot_permissions)
        return payloads.guild(
            guild,
            self.owner_id,
            channels=[dict(c) for c in self.channels.values() if c.get("guild_id") == str(guild)],
            roles=[r for i, r in self.roles.items() if self.role_guild.get(i) == guild],
            members=self.member_payloads(guild),
        )

    def application_payload(self) -> dict[str, Any]:
        """Return the application object (login)."""
        return {
            "id": str(self.application_id),
            "name": "ComfyCord",
            "description": "",
            "icon": None,
            "bot_public": True,
            "bot_require_code_grant": False,
            "verify_key": "0" * 64,
            "owner": self.users[self.owner_id],
            "flags": 0,
            "interactions_endpoint_url": None,
            "team": None,
        }

    def gateway_bot_payload(self) -> dict[str, Any]:
        """Return GET /gateway/bot."""
        limit = {"total": 1000, "remaining": 999, "reset_after": 0, "max_concurrency": 1}
        return {"url": self.gateway_url, "shards": 1, "session_start_limit": limit}

    def ready_payload(self, session_id: str, shard: list[int] | None) -> dict[str, Any]:
        """Return the READY payload of a new session."""
        data: dict[str, Any] = {
            "v": 10,
            "user": self.users[self.bot_user_id],
            "guilds": [{"id": str(guild), "unavailable": True} for guild in self.guild_ids],
            "session_id": session_id,
            "resume_gateway_url": self.gateway_url,
            "application": {"id": str(self.application_id), "flags": 0},
            "private_channels": [],
            "relationships": [],
        }
        if shard is not None:
            data["shard"] = shard
        return data
