"""The fake Discord's guild: ids, users, roles, members and the payloads describing them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tests.fakes import discord_payloads as payloads
from tests.fakes.discord_payloads import snowflake


class FakeGuild:
    """One guild with a text channel (more with ``add_channel``), the bot's member and role."""

    def __init__(self) -> None:
        self.application_id = snowflake()
        self.bot_user_id = snowflake()
        self.guild_id = snowflake()
        self.channel_id = snowflake()
        self.channel_names: dict[int, str] = {self.channel_id: "general"}
        self.allowed_intents: int | None = None  # None allows every privileged intent
        self.bot_permissions = payloads.BOT_PERMISSIONS
        self.users: dict[int, dict[str, Any]] = {}
        self.roles: dict[int, dict[str, Any]] = {}
        self.url = self.api_base = self.gateway_url = ""
        self._members: dict[int, tuple[list[int], int, str]] = {}
        self.roles[self.guild_id] = payloads.role(
            self.guild_id, "@everyone", payloads.MEMBER_PERMISSIONS, 0
        )
        self._bot_role_id = self.add_role("ComfyCord", 0)
        self.users[self.bot_user_id] = payloads.user(self.bot_user_id, "ComfyCord", is_bot=True)
        self._members[self.bot_user_id] = ([self._bot_role_id], 0, payloads.now_iso())
        self.owner_id = self.add_user("owner", permissions=payloads.OWNER_PERMISSIONS)

    def add_role(self, name: str, permissions: int = 0) -> int:
        """Create a guild role and return its id."""
        role_id = snowflake()
        self.roles[role_id] = payloads.role(role_id, name, permissions, len(self.roles))
        return role_id

    def add_channel(self, name: str) -> int:
        """Add another text channel to the guild and return its id (``channel_id`` is the first)."""
        channel_id = snowflake()
        self.channel_names[channel_id] = name
        return channel_id

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

    def member_payload(self, user_id: int, *, with_permissions: bool = False) -> dict[str, Any]:
        """Return the member object of ``user_id`` (interactions carry ``permissions``)."""
        roles, permissions, joined_at = self._members[user_id]
        data = payloads.member(self.users[user_id], roles, joined_at)
        if with_permissions:
            for role_id in roles:
                permissions |= int(self.roles[role_id]["permissions"])
            data["permissions"] = str(permissions)
        return data

    def member_payloads(self) -> list[dict[str, Any]]:
        """Return every member (the bot included)."""
        return [self.member_payload(user_id) for user_id in self._members]

    def channel_payload(self, channel_id: int | None = None) -> dict[str, Any]:
        """Return a text channel object (the first channel by default)."""
        channel_id = channel_id or self.channel_id
        return payloads.text_channel(channel_id, self.guild_id, self.channel_names[channel_id])

    def guild_payload(self) -> dict[str, Any]:
        """Return the GUILD_CREATE payload."""
        self.roles[self._bot_role_id]["permissions"] = str(self.bot_permissions)
        return payloads.guild(
            self.guild_id,
            self.owner_id,
            channels=[self.channel_payload(channel_id) for channel_id in self.channel_names],
            roles=list(self.roles.values()),
            members=self.member_payloads(),
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
            "guilds": [{"id": str(self.guild_id), "unavailable": True}],
            "session_id": session_id,
            "resume_gateway_url": self.gateway_url,
            "application": {"id": str(self.application_id), "flags": 0},
            "private_channels": [],
            "relationships": [],
        }
        if shard is not None:
            data["shard"] = shard
        return data
