"""Interactions the fake Discord sends: the Interaction record and INTERACTION_CREATE payloads."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tests.fakes.discord_messages import SELECTS as _SELECTS
from tests.fakes.discord_messages import walk
from tests.fakes.discord_payloads import snowflake

if TYPE_CHECKING:
    from tests.fakes.discord import FakeDiscord

PING, APPLICATION_COMMAND, COMPONENT, AUTOCOMPLETE, MODAL_SUBMIT = 1, 2, 3, 4, 5


@dataclass(eq=False)
class Interaction:
    """An interaction the fake dispatched, and what the bot answered to it.

    ``response`` is the callback body ``{"type", "data"}`` once the bot responded.
    ``original_message_id`` is the @original message (a new one for callback types 4/5, the
    component's message for 6/7). ``message_ids`` holds @original plus every followup.
    """

    id: int
    token: str
    type: int
    user_id: int
    payload: dict[str, Any] = field(repr=False)
    name: str | None = None
    custom_id: str | None = None
    message_id: int | None = None
    response: dict[str, Any] | None = None
    original_message_id: int | None = None
    message_ids: list[int] = field(default_factory=list)
    is_expired: bool = False
    created: float = field(default_factory=time.monotonic)
    _responded: asyncio.Event = field(default_factory=asyncio.Event, repr=False)

    @property
    def response_type(self) -> int | None:
        """The callback type the bot answered with (4, 5, 6, 7, 8, 9), or None."""
        return None if self.response is None else int(self.response["type"])

    @property
    def response_data(self) -> dict[str, Any]:
        """The callback's ``data`` ({} if none)."""
        return (self.response or {}).get("data") or {}

    async def wait_response(self, timeout: float = 5.0) -> dict[str, Any]:
        """Wait for the bot's interaction callback and return its body ``{"type", "data"}``."""
        async with asyncio.timeout(timeout):
            await self._responded.wait()
        assert self.response is not None
        return self.response

    def set_response(self, body: dict[str, Any]) -> None:
        """Store the callback body and wake waiters."""
        self.response = body
        self._responded.set()


def new_interaction(
    fake: FakeDiscord,
    kind: int,
    user_id: int,
    data: dict[str, Any],
    message_id: int | None = None,
    channel_id: int | None = None,
) -> Interaction:
    """Build the INTERACTION_CREATE payload of type ``kind`` from ``user_id`` and register it.

    The channel is the clicked message's, else ``channel_id``, else the first channel.
    """
    if user_id not in fake.users:
        raise KeyError(f"unknown user {user_id}; create one with add_user()")
    if message_id is not None:
        channel_id = int(fake.messages[message_id]["channel_id"])
    channel_id = channel_id or fake.channel_id
    interaction_id = snowflake()
    token = "aW50ZXJhY3Rpb246" + secrets.token_urlsafe(48)
    payload: dict[str, Any] = {
        "id": str(interaction_id),
        "application_id": str(fake.application_id),
        "type": kind,
        "token": token,
        "version": 1,
        "data": data,
        "guild_id": str(fake.guild_id),
        "guild": {"id": str(fake.guild_id), "locale": "en-US", "features": []},
        "channel_id": str(channel_id),
        "channel": fake.channel_payload(channel_id),
        "member": fake.member_payload(user_id, with_permissions=True),
        "app_permissions": str(fake.bot_permissions),
        "locale": "en-US",
        "guild_locale": "en-US",
        "entitlements": [],
        "authorizing_integration_owners": {"0": str(fake.guild_id)},
        "context": 0,
        "attachment_size_limit": fake.attachment_size_limit,
    }
    if message_id is not None:
        payload["message"] = fake.messages[message_id]
    interaction = Interaction(
        id=interaction_id,
        token=token,
        type=kind,
        user_id=user_id,
        payload=payload,
        name=data.get("name"),
        custom_id=data.get("custom_id"),
        message_id=message_id,
    )
    fake.interactions[interaction_id] = interaction
    return interaction


def command_data(
    fake: FakeDiscord,
    name: str,
    options: Mapping[str, Any],
    *,
    subcommand: str | None,
    attachments: Sequence[dict[str, Any]],
    focused: str | None = None,
) -> dict[str, Any]:
    """Build ``data`` of a chat-input command; ``subcommand`` may be ``"group sub"``."""
    resolved: dict[str, dict[str, Any]] = {}
    for attachment in attachments:
        resolved.setdefault("attachments", {})[str(attachment["id"])] = attachment
    built = [_option(fake, key, value, resolved) for key, value in options.items()]
    for option in built:
        if option["name"] == focused:
            option["focused"] = True
    if subcommand:
        *groups, sub = subcommand.split()
        built = [{"name": sub, "type": 1, "options": built}]
        for group in reversed(groups):
            built = [{"name": group, "type": 2, "options": built}]
    data: dict[str, Any] = {"id": str(fake.command_id(name, 1)), "name": name, "type": 1}
    data["options"] = built
    if resolved:
        data["resolved"] = resolved
    if fake.is_guild_command(name, 1):
        data["guild_id"] = str(fake.guild_id)
    return data


def _option(
    fake: FakeDiscord, name: str, value: Any, resolved: dict[str, dict[str, Any]]
) -> dict[str, Any]:
    # Option types: 3 string, 4 integer, 5 boolean, 6 user, 10 number, 11 attachment.
    if isinstance(value, dict) and "filename" in value:
        resolved.setdefault("attachments", {})[str(value["id"])] = value
        return {"name": name, "type": 11, "value": str(value["id"])}
    if isinstance(value, dict) and "type" in value:
        if value["type"] == 6:
            uid = int(value["value"])
            resolved.setdefault("users", {})[str(uid)] = fake.users[uid]
            resolved.setdefault("members", {})[str(uid)] = fake.member_payload(
                uid, with_permissions=True
            )
        return {"name": name, **value}
    if isinstance(value, bool):
        return {"name": name, "type": 5, "value": value}
    if isinstance(value, int):
        return {"name": name, "type": 4, "value": value}
    if isinstance(value, float):
        return {"name": name, "type": 10, "value": value}
    if isinstance(value, str):
        return {"name": name, "type": 3, "value": value}
    raise TypeError(f"cannot infer the option type of {name}={value!r}")


def component_data(
    message: dict[str, Any], custom_id: str, values: Sequence[str] | None
) -> dict[str, Any]:
    """Build ``data`` of a click on ``custom_id`` in ``message`` (select menus get ``values``)."""
    for component in walk(message.get("components") or []):
        if component.get("custom_id") == custom_id:
            data: dict[str, Any] = {"custom_id": custom_id, "component_type": component["type"]}
            if component["type"] != 2:
                data["values"] = list(values or ())
            return data
    raise LookupError(f"message {message['id']} has no component with custom_id {custom_id!r}")


Values = Mapping[str, str | Sequence[str]]


def modal_components(modal: dict[str, Any] | None, values: Values) -> list[dict[str, Any]]:
    """Build submitted components mirroring the modal the bot opened (rows or labels)."""
    if modal is None:
        return [
            {"type": 1, "components": [{"type": 4, "custom_id": key, "value": value}]}
            for key, value in values.items()
        ]
    return [_submitted(component, values) for component in modal.get("components") or []]


def _submitted(component: dict[str, Any], values: Values) -> dict[str, Any]:
    kind = component.get("type")
    if kind == 1:
        return {"type": 1, "components": [_submitted(c, values) for c in component["components"]]}
    if kind == 18:
        return {"type": 18, "component": _submitted(component["component"], values)}
    custom_id = component.get("custom_id")
    submitted: dict[str, Any] = {"type": kind, "id": component.get("id", 0)}
    if custom_id is not None:
        submitted["custom_id"] = custom_id
    raw = values.get(custom_id or "")
    if kind == 4:
        submitted["value"] = raw if isinstance(raw, str) else component.get("value") or ""
    elif kind in _SELECTS:
        submitted["values"] = [raw] if isinstance(raw, str) else list(raw or ())
    return submitted
