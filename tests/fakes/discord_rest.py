"""Bot-token REST routes of the fake Discord: login, commands, gateway, channel messages."""

from __future__ import annotations

import copy
import re
from typing import TYPE_CHECKING, Any

from aiohttp import web

from tests.fakes import discord_messages as messages
from tests.fakes.discord_http import CALL
from tests.fakes.discord_messages import Problem
from tests.fakes.discord_payloads import (
    FLAG_EPHEMERAL,
    FLAG_LOADING,
    error,
    form_errors,
    json_response,
    snowflake,
)

if TYPE_CHECKING:
    from tests.fakes.discord import FakeDiscord
    from tests.fakes.discord_http import RecordedCall

SEND_MESSAGES, ATTACH_FILES, MANAGE_MESSAGES = 1 << 11, 1 << 15, 1 << 13
_COMMAND_NAME = re.compile(r"^[-_\w]{1,32}$")


def command_problems(commands: list[dict[str, Any]]) -> list[Problem]:
    """Check a bulk-overwrite body against Discord's rules for names, descriptions and options."""
    problems: list[Problem] = []
    seen: set[tuple[str, int]] = set()
    for i, command in enumerate(commands):
        kind, name = int(command.get("type", 1)), command.get("name") or ""
        if (name, kind) in seen:
            problems.append((f"{i}.name", "APPLICATION_COMMANDS_DUPLICATE_NAME", name))
        seen.add((name, kind))
        if kind == 1:
            problems += _chat_input_problems(f"{i}", command)
        elif not 1 <= len(name) <= 32:
            problems.append((f"{i}.name", "BASE_TYPE_BAD_LENGTH", "Must be 1-32 long."))
    return problems


def _chat_input_problems(path: str, command: dict[str, Any]) -> list[Problem]:
    problems: list[Problem] = []
    name = command.get("name") or ""
    if not _COMMAND_NAME.match(name) or name != name.lower():
        problems.append((f"{path}.name", "APPLICATION_COMMAND_INVALID_NAME", name))
    if not 1 <= len(command.get("description") or "") <= 100:
        problems.append((f"{path}.description", "BASE_TYPE_BAD_LENGTH", "Must be 1-100 long."))
    options = command.get("options") or []
    if len(options) > 25:
        problems.append((f"{path}.options", "BASE_TYPE_MAX_LENGTH", "Must be 25 or fewer."))
    is_optional_seen = False
    for j, option in enumerate(options):
        if option.get("type") in (1, 2):
            problems += _chat_input_problems(f"{path}.options.{j}", option)
            continue
        if option.get("required") and is_optional_seen:
            problems.append(
                (f"{path}.options.{j}", "APPLICATION_COMMAND_OPTIONS_REQUIRED_INVALID", "")
            )
        is_optional_seen = is_optional_seen or not option.get("required")
        if not _COMMAND_NAME.match(option.get("name") or ""):
            problems.append((f"{path}.options.{j}.name", "APPLICATION_COMMAND_INVALID_NAME", ""))
        if not 1 <= len(option.get("description") or "") <= 100:
            problems.append((f"{path}.options.{j}.description", "BASE_TYPE_BAD_LENGTH", ""))
    return problems


class RestRoutes:
    """Handlers for the routes discord.py calls with ``Authorization: Bot <token>``."""

    def __init__(self, fake: FakeDiscord) -> None:
        self._fake = fake

    def add_to(self, app: web.Application, prefix: str) -> None:
        """Register the routes under ``prefix``."""
        r = app.router
        r.add_get(prefix + "/users/@me", self.me)
        r.add_get(prefix + "/oauth2/applications/@me", self.application)
        r.add_get(prefix + "/applications/@me", self.application)
        r.add_get(prefix + "/gateway", self.gateway)
        r.add_get(prefix + "/gateway/bot", self.gateway)
        for commands in (
            "/applications/{app}/commands",
            "/applications/{app}/guilds/{guild}/commands",
        ):
            r.add_get(prefix + commands, self.get_commands)
            r.add_put(prefix + commands, self.put_commands)
        channel = prefix + "/channels/{channel}"
        r.add_get(channel, self.get_channel)
        r.add_post(channel + "/typing", self.no_content)
        r.add_get(channel + "/messages", self.history)
        r.add_post(channel + "/messages", self.create_message)
        r.add_get(channel + "/messages/{message}", self.get_message)
        r.add_patch(channel + "/messages/{message}", self.edit_message)
        r.add_delete(channel + "/messages/{message}", self.delete_message)
        reaction = channel + "/messages/{message}/reactions/{emoji}/@me"
        r.add_put(reaction, self.no_content)
        r.add_delete(reaction, self.no_content)

    async def me(self, request: web.Request) -> web.Response:
        """GET the bot user (login)."""
        return json_response(self._fake.users[self._fake.bot_user_id])

    async def application(self, request: web.Request) -> web.Response:
        """GET the application (login)."""
        return json_response(self._fake.application_payload())

    async def gateway(self, request: web.Request) -> web.Response:
        """GET /gateway and /gateway/bot (AutoShardedClient)."""
        return json_response(self._fake.gateway_bot_payload())

    async def no_content(self, request: web.Request) -> web.Response:
        """Accept typing and reactions."""
        return _no_content()

    def _scope(self, request: web.Request) -> int | None:
        guild = request.match_info.get("guild")
        return None if guild is None else int(guild)

    async def get_commands(self, request: web.Request) -> web.Response:
        """List the commands last synced to a scope."""
        return json_response(self._fake.commands.get(self._scope(request), []))

    async def put_commands(self, request: web.Request) -> web.Response:
        """Bulk-overwrite commands (``tree.sync``); echo them with ids as Discord does."""
        fake, scope = self._fake, self._scope(request)
        if request.match_info["app"] != str(fake.application_id):
            return error(
                403, 20012, "You are not authorized to perform this action on this application"
            )
        body: list[dict[str, Any]] = request[CALL].json or []
        if problems := command_problems(body):
            return error(400, 50035, "Invalid Form Body", form_errors(problems))
        synced = []
        for command in body:
            item = copy.deepcopy(command)
            item.setdefault("type", 1)
            item.setdefault("description", "")
            item["id"] = str(fake.command_id(item["name"], item["type"]))
            item["application_id"] = str(fake.application_id)
            item["version"] = str(snowflake())
            if scope is not None:
                item["guild_id"] = str(scope)
            synced.append(item)
        fake.commands[scope] = synced
        return json_response(synced)

    def _channel(self, request: web.Request) -> web.Response | None:
        channel = request.match_info["channel"]
        if not channel.isdigit() or int(channel) not in self._fake.channels:
            return error(404, 10003, "Unknown Channel")
        return None

    def _message(self, request: web.Request) -> dict[str, Any] | web.Response:
        if missing := self._channel(request):
            return missing
        key = request.match_info["message"]
        message = self._fake.messages.get(int(key) if key.isdigit() else 0)
        if (
            message is None
            or message["flags"] & FLAG_EPHEMERAL
            or message["channel_id"] != request.match_info["channel"]
        ):
            return error(404, 10008, "Unknown Message")
        return message

    async def get_channel(self, request: web.Request) -> web.Response:
        """GET a channel."""
        channel = (
            int(request.match_info["channel"]) if request.match_info["channel"].isdigit() else 0
        )
        return self._channel(request) or json_response(self._fake.channel_payload(channel))

    async def history(self, request: web.Request) -> web.Response:
        """GET recent channel messages, newest first."""
        if missing := self._channel(request):
            return missing
        limit = int(request.query.get("limit", "50"))
        channel = request.match_info["channel"]
        found = [
            m
            for m in self._fake.messages.values()
            if not m["flags"] & FLAG_EPHEMERAL and m["channel_id"] == channel
        ]
        found.sort(key=lambda m: int(m["id"]), reverse=True)
        return json_response(found[:limit])

    async def get_message(self, request: web.Request) -> web.Response:
        """GET one channel message."""
        message = self._message(request)
        return message if isinstance(message, web.Response) else json_response(message)

    async def create_message(self, request: web.Request) -> web.Response:
        """POST a channel message (the bot's own, with its permissions checked)."""
        fake, call = self._fake, request[CALL]
        body: dict[str, Any] = call.json or {}
        needed = SEND_MESSAGES | (ATTACH_FILES if call.files else 0)
        rejected = (
            self._channel(request)
            or (None if fake.bot_permissions & needed == needed else _missing_permissions())
            or fake.reject_upload(call)
            or messages.check(body, call, creating=True)
            or self._reference_problem(body)
        )
        if rejected:
            return rejected
        message = fake.new_bot_message(None, 0, int(request.match_info["channel"]))
        reference = body.get("message_reference")
        referenced = fake.messages.get(int((reference or {}).get("message_id") or 0))
        if referenced is not None:
            message["type"] = 19
            message["message_reference"] = {
                "type": 0,
                "channel_id": referenced["channel_id"],
                "guild_id": str(fake.guild_of(int(referenced["channel_id"]))),
                "message_id": referenced["id"],
            }
            message["referenced_message"] = referenced
        body = {key: value for key, value in body.items() if key != "flags"}
        messages.apply(fake, message, body, call)
        await fake.store_message(message, None)
        return json_response(message)

    def _reference_problem(self, body: dict[str, Any]) -> web.Response | None:
        reference = body.get("message_reference") or {}
        if not reference.get("message_id") or not reference.get("fail_if_not_exists", True):
            return None
        if int(reference["message_id"]) in self._fake.messages:
            return None
        problem = ("message_reference", "MESSAGE_REFERENCE_UNKNOWN_MESSAGE", "Unknown message")
        return error(400, 50035, "Invalid Form Body", form_errors([problem]))

    async def edit_message(self, request: web.Request) -> web.Response:
        """PATCH a message the bot authored, subject to ``edit_bucket``."""
        message = self._message(request)
        if isinstance(message, web.Response):
            return message
        call: RecordedCall = request[CALL]
        body: dict[str, Any] = call.json or {}
        if message["author"]["id"] != str(self._fake.bot_user_id):
            return error(403, 50005, "Cannot edit a message authored by another user")
        rejected = (
            self._fake.reject_upload(call)
            or messages.check(body, call, creating=False)
            or self._fake.take_edit_token(int(message["id"]))
        )
        if rejected:
            return rejected
        messages.apply(self._fake, message, body, call)
        message["flags"] &= ~FLAG_LOADING  # an edit ends the "thinking" state, by any route
        messages.mark_edited(message)
        await self._fake.echo("MESSAGE_UPDATE", message)
        return json_response(message)

    async def delete_message(self, request: web.Request) -> web.Response:
        """DELETE a message (others' messages need Manage Messages)."""
        message = self._message(request)
        if isinstance(message, web.Response):
            return message
        is_own = message["author"]["id"] == str(self._fake.bot_user_id)
        if not is_own and not self._fake.bot_permissions & MANAGE_MESSAGES:
            return _missing_permissions()
        await self._fake.delete_message(int(message["id"]))
        return _no_content()


def _no_content() -> web.Response:
    return web.Response(status=204)


def _missing_permissions() -> web.Response:
    return error(403, 50013, "Missing Permissions")
