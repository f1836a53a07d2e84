"""A loopback fake of Discord's REST API and gateway that the real discord.py connects to.

``FakeDiscord`` adds the server, recording, fault injection and user actions to the state in
``discord_store.FakeStore`` (files, messages, interactions) and ``discord_guild.FakeGuild``
(ids, users, roles). Routes live in ``discord_rest`` and ``discord_webhooks``, the socket in
``discord_gateway``, wire payloads in ``discord_payloads``.
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
from tests.fakes.discord_gateway import INTENT_MESSAGE_CONTENT, Session
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
from tests.fakes.discord_payloads import error, snowflake
from tests.fakes.discord_rest import RestRoutes
from tests.fakes.discord_store import FakeStore
from tests.fakes.discord_webhooks import WebhookRoutes

if TYPE_CHECKING:
    import pytest

__all__ = ["FakeDiscord", "Interaction", "RecordedCall", "run_bot"]

ClientT = TypeVar("ClientT", bound=discord.Client)

_NO_AUTH_PREFIXES = ("/interactions/", "/webhooks/")


class FakeDiscord(FakeStore):
    """Discord on 127.0.0.1: one guild, one text channel, a bot user, and recorded traffic."""

    def __init__(self) -> None:
        super().__init__()
        self.token: str | None = None  # None accepts any "Bot <token>"
        self.interaction_response_timeout = 3.0
        self.rate_limited = 0
        self.server_errors: list[BaseException] = []
        self._faults: list[Fault] = []
        self._recorder = Recorder()
        self._server: TestServer | None = None

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

    # interactions and user actions

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
        channel_id: int | None = None,
    ) -> Interaction:
        """Invoke a slash command (in ``channel_id``'s guild, or a DM channel's direct message)."""
        data = command_data(
            self, name, options or {}, subcommand=subcommand, attachments=attachments
        )
        ix = new_interaction(self, APPLICATION_COMMAND, user_id, data, channel_id=channel_id)
        return await self._dispatch(ix)

    async def autocomplete(
        self,
        name: str,
        options: Mapping[str, Any],
        focused: str,
        *,
        user_id: int,
        subcommand: str | None = None,
        timeout: float = 5.0,
        channel_id: int | None = None,
    ) -> list[dict[str, Any]]:
        """Ask the bot for choices of the ``focused`` option; return the choices it answered."""
        data = command_data(
            self, name, options, subcommand=subcommand, attachments=(), focused=focused
        )
        ix = new_interaction(self, AUTOCOMPLETE, user_id, data, channel_id=channel_id)
        ix = await self._dispatch(ix)
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
        channel_id: int | None = None,
    ) -> dict[str, Any]:
        """Post a user's message (MESSAGE_CREATE); ``mentions_bot`` prefixes ``<@bot>``."""
        mention = f"<@{self.bot_user_id}>"
        if mentions_bot and mention not in content:
            content = f"{mention} {content}"
        is_mentioned = mention in content or f"<@!{self.bot_user_id}>" in content
        files = [{k: v for k, v in a.items() if k != "ephemeral"} for a in attachments]
        message = payloads.message(
            snowflake(),
            channel_id or self.channel_id,
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

    # recording and faults

    @property
    def calls(self) -> list[RecordedCall]:
        """Every HTTP call answered, in order."""
        return self._recorder.calls

    def observe(self, observer: Callable[[RecordedCall], None], *, keep_calls: bool = True) -> None:
        """Call ``observer`` with every answered call; ``keep_calls=False`` stops keeping them."""
        self._recorder.observers.append(observer)
        self._recorder.is_keeping = keep_calls

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

    async def drop_gateway(self) -> None:
        """Close the bot's gateway sockets with a resumable code (4000); discord.py RESUMEs."""
        await self.gateway.drop()


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
