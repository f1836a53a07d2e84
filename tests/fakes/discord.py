"""A loopback fake of Discord's REST API and gateway that the real discord.py connects to.

The facade owns the state (users, messages, files, interactions, calls) and the public test API;
routes live in ``discord_rest``/``discord_webhooks``, the socket in ``discord_gateway``, wire
payloads in ``discord_payloads``. It is longer than 250 lines because it is the one API tests
code against.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Self, TypeVar

import discord
import yarl
from aiohttp import web
from aiohttp.test_utils import TestServer

from tests.fakes import discord_payloads as payloads
from tests.fakes.discord_gateway import INTENT_MESSAGE_CONTENT, Gateway, Session
from tests.fakes.discord_http import (
    API_PREFIX,
    CALL,
    Fault,
    Handler,
    RecordedCall,
    Recorder,
    internal_error,
    parse_call,
    rate_limit_response,
    response_body,
)
from tests.fakes.discord_interactions import (
    APPLICATION_COMMAND,
    AUTOCOMPLETE,
    COMPONENT,
    MODAL_SUBMIT,
    Interaction,
    Values,
    command_data,
    component_data,
    modal_components,
    new_interaction,
)
from tests.fakes.discord_payloads import FLAG_EPHEMERAL, error, snowflake
from tests.fakes.discord_rest import RestRoutes
from tests.fakes.discord_webhooks import WebhookRoutes

if TYPE_CHECKING:
    import pytest

__all__ = ["FakeDiscord", "Interaction", "RecordedCall", "run_bot"]

ClientT = TypeVar("ClientT", bound=discord.Client)

REQUEST_SIZE_LIMIT = 25 * 1024 * 1024
_NO_AUTH_PREFIXES = ("/interactions/", "/webhooks/")


class FakeDiscord:
    """Discord on 127.0.0.1: one guild, one text channel, a bot user, and recorded traffic."""

    def __init__(self) -> None:
        self.application_id = snowflake()
        self.bot_user_id = snowflake()
        self.guild_id = snowflake()
        self.channel_id = snowflake()
        self.token: str | None = None  # None accepts any "Bot <token>"
        self.allowed_intents: int | None = None  # None allows every privileged intent
        self.bot_permissions = payloads.BOT_PERMISSIONS
        self.attachment_size_limit = 10 * 1024 * 1024
        self.edit_bucket: tuple[int, float] | None = None
        self.interaction_response_timeout = 3.0
        self.is_echoing_bot_messages = True
        self.rate_limited = 0
        self.server_errors: list[BaseException] = []
        self.users: dict[int, dict[str, Any]] = {}
        self.roles: dict[int, dict[str, Any]] = {}
        self.messages: dict[int, dict[str, Any]] = {}
        self.deleted_messages: dict[int, dict[str, Any]] = {}
        self.interactions: dict[int, Interaction] = {}
        self.commands: dict[int | None, list[dict[str, Any]]] = {}
        self.modals: dict[str, dict[str, Any]] = {}
        self.url = self.api_base = self.gateway_url = ""
        self.gateway = Gateway(self)
        self._members: dict[int, tuple[list[int], int, str]] = {}
        self._files: dict[int, tuple[bytes, str]] = {}
        self._faults: list[Fault] = []
        self._buckets: dict[int, tuple[float, int]] = {}
        self._command_ids: dict[tuple[str, int], int] = {}
        self._recorder = Recorder()
        self._server: TestServer | None = None
        self.roles[self.guild_id] = payloads.role(
            self.guild_id, "@everyone", payloads.MEMBER_PERMISSIONS, 0
        )
        self._bot_role_id = self.add_role("ComfyCord", 0)
        self.users[self.bot_user_id] = payloads.user(self.bot_user_id, "ComfyCord", is_bot=True)
        self._members[self.bot_user_id] = ([self._bot_role_id], 0, payloads.now_iso())
        self.owner_id = self.add_user("owner", permissions=payloads.OWNER_PERMISSIONS)

    # lifecycle

    async def start(self) -> None:
        """Listen on a random port of 127.0.0.1."""
        app = web.Application(middlewares=[self._middleware], client_max_size=64 * 1024 * 1024)
        RestRoutes(self).add_to(app, API_PREFIX)
        WebhookRoutes(self).add_to(app, API_PREFIX)
        app.router.add_get("/gateway", self.gateway.handle)
        app.router.add_get("/attachments/{id}/{filename}", self._serve_attachment)
        self._server = TestServer(app, host="127.0.0.1", access_log=None)
        await self._server.start_server()
        self.url = f"http://127.0.0.1:{self._server.port}"
        self.api_base = self.url + API_PREFIX
        self.gateway_url = f"ws://127.0.0.1:{self._server.port}/gateway"

    async def close(self) -> None:
        """Close gateway sockets and stop the server."""
        await self.gateway.close()
        if self._server is not None:
            await self._server.close()
            self._server = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    def install(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Point discord.py's REST base and default gateway at this fake."""
        monkeypatch.setattr(discord.http.Route, "BASE", self.api_base)
        monkeypatch.setattr(
            discord.gateway.DiscordWebSocket, "DEFAULT_GATEWAY", yarl.URL(self.gateway_url)
        )

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path == "/gateway":
            return await handler(request)
        try:
            call = await parse_call(request)
        except ValueError as exc:
            return error(400, 50109, f"The request body contains invalid JSON: {exc}")
        request[CALL] = call
        try:
            response = self._fault(call) or self._unauthorized(call) or await handler(request)
        except web.HTTPException as exc:
            response = error(exc.status, 0, f"{exc.status}: {exc.reason}")
        except Exception as exc:
            self.server_errors.append(exc)
            response = internal_error(exc)
        call.status = response.status
        call.response = response_body(response)
        self.rate_limited += response.status == 429
        self._recorder.record(call)
        return response

    def _fault(self, call: RecordedCall) -> web.Response | None:
        for fault in self._faults:
            if fault.matches(call):
                fault.count -= 1
                if fault.retry_after is not None:
                    return rate_limit_response(fault.retry_after, "fake-injected")
                return payloads.json_response(fault.body, fault.status)
        return None

    def _unauthorized(self, call: RecordedCall) -> web.Response | None:
        if call.path.startswith(("/attachments/", *_NO_AUTH_PREFIXES)):
            return None
        auth = call.headers.get("Authorization", "")
        if auth.startswith("Bot ") and self.token in (None, auth[4:]):
            return None
        return error(401, 0, "401: Unauthorized")

    # the guild

    def add_role(self, name: str, permissions: int = 0) -> int:
        """Create a guild role and return its id."""
        role_id = snowflake()
        self.roles[role_id] = payloads.role(role_id, name, permissions, len(self.roles))
        return role_id

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

    def channel_payload(self) -> dict[str, Any]:
        """Return the text channel object."""
        return payloads.text_channel(self.channel_id, self.guild_id, "general")

    def guild_payload(self) -> dict[str, Any]:
        """Return the GUILD_CREATE payload."""
        self.roles[self._bot_role_id]["permissions"] = str(self.bot_permissions)
        return payloads.guild(
            self.guild_id,
            self.owner_id,
            channels=[self.channel_payload()],
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

    # files and messages

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

    def new_bot_message(self, ix: Interaction | None, flags: int) -> dict[str, Any]:
        """Build (not store) a message authored by the bot, tied to ``ix`` if given."""
        author = self.users[self.bot_user_id]
        message = payloads.message(snowflake(), self.channel_id, author, flags=flags)
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

    # interactions and user actions

    def interaction_by_token(self, token: str) -> Interaction | None:
        """Find an interaction by its token."""
        return next((ix for ix in self.interactions.values() if ix.token == token), None)

    async def _dispatch(self, ix: Interaction) -> Interaction:
        ix.created = time.monotonic()
        await self.gateway.dispatch("INTERACTION_CREATE", ix.payload)
        return ix

    async def slash(
        self,
        name: str,
        options: Mapping[str, Any] | None = None,
        *,
        user_id: int,
        subcommand: str | None = None,
        attachments: Sequence[dict[str, Any]] = (),
    ) -> Interaction:
        """Invoke a slash command; option types are inferred (attachment dicts are type 11)."""
        data = command_data(
            self, name, options or {}, subcommand=subcommand, attachments=attachments
        )
        return await self._dispatch(new_interaction(self, APPLICATION_COMMAND, user_id, data))

    async def autocomplete(
        self,
        name: str,
        options: Mapping[str, Any],
        focused: str,
        *,
        user_id: int,
        subcommand: str | None = None,
        timeout: float = 5.0,
    ) -> list[dict[str, Any]]:
        """Ask the bot for choices of the ``focused`` option; return the choices it answered."""
        data = command_data(
            self, name, options, subcommand=subcommand, attachments=(), focused=focused
        )
        ix = await self._dispatch(new_interaction(self, AUTOCOMPLETE, user_id, data))
        body = await ix.wait_response(timeout)
        return list((body.get("data") or {}).get("choices") or [])

    async def click(
        self, message_id: int, custom_id: str, *, user_id: int, values: Sequence[str] | None = None
    ) -> Interaction:
        """Click a button (or choose select ``values``) on a stored message."""
        data = component_data(self.messages[message_id], custom_id, values)
        return await self._dispatch(new_interaction(self, COMPONENT, user_id, data, message_id))

    async def message_command(
        self, name: str, target_message_id: int, *, user_id: int
    ) -> Interaction:
        """Invoke a message context-menu command on a stored message."""
        return await self._context_menu(name, 3, "messages", target_message_id, user_id)

    async def user_command(self, name: str, target_user_id: int, *, user_id: int) -> Interaction:
        """Invoke a user context-menu command on a member."""
        return await self._context_menu(name, 2, "users", target_user_id, user_id)

    async def _context_menu(
        self, name: str, kind: int, resolved_key: str, target: int, user_id: int
    ) -> Interaction:
        resolved: dict[str, Any] = {}
        if kind == 3:
            resolved["messages"] = {str(target): self.messages[target]}
        else:
            resolved["users"] = {str(target): self.users[target]}
            resolved["members"] = {str(target): self.member_payload(target, with_permissions=True)}
        data: dict[str, Any] = {
            "id": str(self.command_id(name, kind)),
            "name": name,
            "type": kind,
            "target_id": str(target),
            "resolved": resolved,
        }
        if self.is_guild_command(name, kind):
            data["guild_id"] = str(self.guild_id)
        return await self._dispatch(new_interaction(self, APPLICATION_COMMAND, user_id, data))

    async def submit_modal(
        self, custom_id: str, values: Values, *, user_id: int, message_id: int | None = None
    ) -> Interaction:
        """Submit a modal; components mirror the modal the bot opened with that custom_id."""
        components = modal_components(self.modals.get(custom_id), values)
        data = {"custom_id": custom_id, "components": components}
        return await self._dispatch(new_interaction(self, MODAL_SUBMIT, user_id, data, message_id))

    async def post_message(
        self,
        content: str,
        *,
        user_id: int,
        attachments: Sequence[dict[str, Any]] = (),
        mentions_bot: bool = False,
    ) -> dict[str, Any]:
        """Post a user's message (MESSAGE_CREATE); ``mentions_bot`` prefixes ``<@bot>``."""
        mention = f"<@{self.bot_user_id}>"
        if mentions_bot and mention not in content:
            content = f"{mention} {content}"
        is_mentioned = mention in content or f"<@!{self.bot_user_id}>" in content
        files = [{k: v for k, v in a.items() if k != "ephemeral"} for a in attachments]
        message = payloads.message(
            snowflake(),
            self.channel_id,
            self.users[user_id],
            content=content,
            attachments=files,
            mentions=[self.users[self.bot_user_id]] if is_mentioned else [],
        )
        self.messages[int(message["id"])] = message

        def redact(session: Session, data: dict[str, Any]) -> dict[str, Any]:
            # Without the message_content intent, content and attachments arrive empty.
            if is_mentioned or session.has_intent(INTENT_MESSAGE_CONTENT):
                return data
            return {**data, "content": "", "attachments": [], "embeds": [], "components": []}

        await self.gateway.dispatch(
            "MESSAGE_CREATE", self._gateway_message(message), transform=redact
        )
        return message

    def original(self, interaction: Interaction | int) -> dict[str, Any] | None:
        """Return the current @original message of an interaction, if any."""
        ix = self._interaction(interaction)
        return self.messages.get(ix.original_message_id or 0)

    def _interaction(self, interaction: Interaction | int) -> Interaction:
        return (
            interaction if isinstance(interaction, Interaction) else self.interactions[interaction]
        )

    # recording and faults

    @property
    def calls(self) -> list[RecordedCall]:
        """Every HTTP call answered, in order."""
        return self._recorder.calls

    async def wait_for(
        self, predicate: Callable[[RecordedCall], bool], timeout: float = 5, *, since: int = 0
    ) -> RecordedCall:
        """Return the first call in ``calls[since:]`` matching ``predicate`` (no polling)."""
        return await self._recorder.wait_for(predicate, timeout, since)

    def inject_429(
        self, method: str, path_pattern: str, retry_after: float = 0.2, count: int = 1
    ) -> None:
        """Answer the next ``count`` matching calls (fnmatch on the path) with a retryable 429."""
        self._faults.append(Fault(method, path_pattern, 429, {}, count, retry_after))

    def inject_error(
        self, method: str, path_pattern: str, status: int, code: int = 0, count: int = 1
    ) -> None:
        """Answer the next ``count`` matching calls with a Discord JSON error."""
        body = {"message": f"{status}: injected", "code": code}
        self._faults.append(Fault(method, path_pattern, status, body, count))

    def expire_token(self, interaction: Interaction | int) -> None:
        """Make the interaction's token invalid: webhook calls answer 401 code 50027."""
        self._interaction(interaction).is_expired = True

    async def request_reconnect(self) -> None:
        """Send op 7 RECONNECT; discord.py reconnects and RESUMEs."""
        await self.gateway.send_op(7)


@contextlib.asynccontextmanager
async def run_bot(
    bot: ClientT, token: str = "fake-token", *, timeout: float = 5.0
) -> AsyncIterator[ClientT]:
    """Run ``bot.start(token)`` as a task until ready; on exit close the bot and await the task."""
    task = asyncio.create_task(bot.start(token), name="fake-discord-bot")
    try:
        ready = asyncio.create_task(bot.wait_until_ready())
        try:
            async with asyncio.timeout(timeout):
                await asyncio.wait({task, ready}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            ready.cancel()
        if task.done():
            task.result()
            raise RuntimeError("the bot stopped before it was ready")
        yield bot
    finally:
        await bot.close()
        async with asyncio.timeout(timeout):
            await task
