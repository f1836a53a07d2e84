"""Interaction callbacks and the interaction webhook endpoints (@original, followups)."""

from __future__ import annotations

import copy
import time
from typing import TYPE_CHECKING, Any

from aiohttp import web

from tests.fakes import discord_messages as messages
from tests.fakes.discord_http import CALL
from tests.fakes.discord_interactions import (
    APPLICATION_COMMAND,
    AUTOCOMPLETE,
    COMPONENT,
    MODAL_SUBMIT,
    Interaction,
)
from tests.fakes.discord_payloads import (
    FLAG_EPHEMERAL,
    FLAG_LOADING,
    error,
    form_errors,
    json_response,
)

if TYPE_CHECKING:
    from tests.fakes.discord import FakeDiscord
    from tests.fakes.discord_http import RecordedCall

Result = web.Response | dict[str, Any] | None

_ALLOWED = {
    APPLICATION_COMMAND: {4, 5, 9},
    COMPONENT: {4, 5, 6, 7, 9},
    AUTOCOMPLETE: {8},
    MODAL_SUBMIT: {4, 5, 6, 7},
}


DEFERRED_MESSAGE = 5


def _bad_type() -> web.Response:
    problem = ("type", "INTERACTION_RESPONSE_TYPE_INVALID", "Invalid interaction response type")
    return error(400, 50035, "Invalid Form Body", form_errors([problem]))


class WebhookRoutes:
    """Handlers for ``/interactions/{id}/{token}/callback`` and ``/webhooks/{app}/{token}``."""

    def __init__(self, fake: FakeDiscord) -> None:
        self._fake = fake

    def add_to(self, app: web.Application, prefix: str) -> None:
        """Register the routes under ``prefix``."""
        base = prefix + "/webhooks/{app}/{token}"
        app.router.add_post(prefix + "/interactions/{id}/{token}/callback", self.callback)
        app.router.add_post(base, self.followup)
        app.router.add_get(base + "/messages/{message}", self.get_message)
        app.router.add_patch(base + "/messages/{message}", self.edit_message)
        app.router.add_delete(base + "/messages/{message}", self.delete_message)

    async def callback(self, request: web.Request) -> web.Response:
        """Answer an interaction callback; the body is JSON because of ``with_response=1``."""
        call: RecordedCall = request[CALL]
        ix = self._fake.interactions.get(int(request.match_info["id"]))
        is_late = ix is not None and (
            time.monotonic() - ix.created > self._fake.interaction_response_timeout
        )
        if ix is None or ix.token != request.match_info["token"] or ix.is_expired or is_late:
            return error(404, 10062, "Unknown interaction")
        if ix.response is not None:
            return error(400, 40060, "Interaction has already been acknowledged.")
        body = call.json or {}
        kind = int(body.get("type", 0))
        if kind not in _ALLOWED[ix.type] or (kind in (6, 7) and ix.message_id is None):
            return _bad_type()
        data = body.get("data") or {}
        handlers = {4: self._reply, 5: self._defer, 6: self._defer_update, 7: self._update}
        result: Result = None
        if kind in handlers:
            result = await handlers[kind](ix, data, call)
        elif kind == 9:
            result = self._open_modal(data)
        if isinstance(result, web.Response):
            return result
        ix.set_response(copy.deepcopy(body))
        flags = int(data.get("flags") or 0)
        answer: dict[str, Any] = {
            "interaction": {
                "id": str(ix.id),
                "type": ix.type,
                "response_message_loading": kind == 5,
                "response_message_ephemeral": bool(flags & FLAG_EPHEMERAL),
            }
        }
        if result is not None:
            answer["interaction"]["response_message_id"] = result["id"]
            answer["resource"] = {"type": kind, "message": result}
        return json_response(answer)

    async def _reply(self, ix: Interaction, data: dict[str, Any], call: RecordedCall) -> Result:
        if rejected := self._fake.reject_upload(call) or messages.check(data, call, creating=True):
            return rejected
        message = self._fake.new_bot_message(ix, int(data.get("flags") or 0) & FLAG_EPHEMERAL)
        messages.apply(self._fake, message, data, call)
        ix.original_message_id = int(message["id"])
        await self._fake.store_message(message, ix)
        return message

    async def _defer(self, ix: Interaction, data: dict[str, Any], call: RecordedCall) -> Result:
        flags = FLAG_LOADING | (int(data.get("flags") or 0) & FLAG_EPHEMERAL)
        message = self._fake.new_bot_message(ix, flags)
        ix.original_message_id = int(message["id"])
        await self._fake.store_message(message, ix)
        return message

    async def _defer_update(
        self, ix: Interaction, data: dict[str, Any], call: RecordedCall
    ) -> Result:
        ix.original_message_id = ix.message_id
        return None

    async def _update(self, ix: Interaction, data: dict[str, Any], call: RecordedCall) -> Result:
        if rejected := self._fake.reject_upload(call) or messages.check(data, call, creating=False):
            return rejected
        ix.original_message_id = ix.message_id
        message = self._fake.messages[int(ix.message_id or 0)]
        messages.apply(self._fake, message, data, call)
        messages.mark_edited(message)
        await self._fake.echo("MESSAGE_UPDATE", message)
        return message

    def _open_modal(self, data: dict[str, Any]) -> Result:
        problems = []
        if not 1 <= len(data.get("custom_id") or "") <= 100:
            problems.append(("data.custom_id", "BASE_TYPE_BAD_LENGTH", "Must be 1-100 long."))
        if not 1 <= len(data.get("title") or "") <= 45:
            problems.append(("data.title", "BASE_TYPE_BAD_LENGTH", "Must be 1-45 long."))
        if not 1 <= len(data.get("components") or []) <= 5:
            problems.append(("data.components", "BASE_TYPE_BAD_LENGTH", "Must be 1-5 long."))
        if problems:
            return error(400, 50035, "Invalid Form Body", form_errors(problems))
        self._fake.modals[data["custom_id"]] = copy.deepcopy(data)
        return None

    def _interaction(self, request: web.Request) -> Interaction | web.Response:
        if request.match_info["app"] != str(self._fake.application_id):
            return error(404, 10015, "Unknown Webhook")
        ix = self._fake.interaction_by_token(request.match_info["token"])
        if ix is None or ix.is_expired:
            return error(401, 50027, "Invalid Webhook Token")
        return ix

    def _target(self, request: web.Request) -> tuple[Interaction, dict[str, Any]] | web.Response:
        ix = self._interaction(request)
        if isinstance(ix, web.Response):
            return ix
        key = request.match_info["message"]
        if key == "@original":
            if ix.original_message_id is None:
                return error(404, 10015, "Unknown Webhook")
            message_id = ix.original_message_id
        else:
            message_id = int(key) if key.isdigit() else 0
            if message_id not in ix.message_ids:
                return error(404, 10008, "Unknown Message")
        message = self._fake.messages.get(message_id)
        if message is None:
            return error(404, 10008, "Unknown Message")
        return ix, message

    async def get_message(self, request: web.Request) -> web.Response:
        """GET @original or a followup."""
        target = self._target(request)
        return target if isinstance(target, web.Response) else json_response(target[1])

    async def edit_message(self, request: web.Request) -> web.Response:
        """PATCH @original or a followup (JSON or multipart), subject to ``edit_bucket``."""
        target = self._target(request)
        if isinstance(target, web.Response):
            return target
        call: RecordedCall = request[CALL]
        _, message = target
        body = call.json or {}
        rejected = (
            self._fake.reject_upload(call)
            or messages.check(body, call, creating=False)
            or self._fake.take_edit_token(int(message["id"]))
        )
        if rejected:
            return rejected
        messages.apply(self._fake, message, body, call)
        message["flags"] &= ~FLAG_LOADING
        messages.mark_edited(message)
        await self._fake.echo("MESSAGE_UPDATE", message)
        return json_response(message)

    async def delete_message(self, request: web.Request) -> web.Response:
        """DELETE @original or a followup."""
        target = self._target(request)
        if isinstance(target, web.Response):
            return target
        await self._fake.delete_message(int(target[1]["id"]))
        return web.Response(status=204)

    async def followup(self, request: web.Request) -> web.Response:
        """POST a followup; the first one after a deferral fills the loading message."""
        ix = self._interaction(request)
        if isinstance(ix, web.Response):
            return ix
        if ix.response is None:
            return error(404, 10015, "Unknown Webhook")
        call: RecordedCall = request[CALL]
        body = call.json or {}
        if rejected := self._fake.reject_upload(call) or messages.check(body, call, creating=True):
            return rejected
        # Only this interaction's own "thinking" message is filled: after a deferred update
        # (type 6) the clicked message is another interaction's, and a followup is a new message.
        is_thinking = ix.response_type == DEFERRED_MESSAGE
        original = self._fake.messages.get(ix.original_message_id or 0) if is_thinking else None
        if original is not None and original["flags"] & FLAG_LOADING:
            messages.apply(self._fake, original, body, call)
            original["flags"] &= ~FLAG_LOADING
            await self._fake.echo("MESSAGE_UPDATE", original)
            message = original
        else:
            message = self._fake.new_bot_message(ix, int(body.get("flags") or 0) & FLAG_EPHEMERAL)
            messages.apply(self._fake, message, body, call)
            await self._fake.store_message(message, ix)
        if call.query.get("wait", "0").lower() in ("1", "true"):
            return json_response(message)
        return web.Response(status=204)
