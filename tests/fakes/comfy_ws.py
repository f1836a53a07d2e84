"""The fake ComfyUI's WebSocket side: sockets by clientId, targeting, and the message pump."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web

log = logging.getLogger(__name__)
_SEND_ERRORS = (ConnectionError, RuntimeError)


@dataclass(eq=False, slots=True)
class _Connection:
    ws: web.WebSocketResponse
    request: web.Request
    closed: asyncio.Event = field(default_factory=asyncio.Event)


class Hub:
    """Open sockets and the outbox that one publisher task drains, as ComfyUI's server does."""

    def __init__(
        self,
        queue_info: Callable[[], dict[str, Any]],
        reconnect_node: Callable[[str], str | None],
        features: dict[str, Any],
    ) -> None:
        self.features = features
        self.sockets: dict[str, web.WebSocketResponse] = {}
        self.metadata: dict[str, dict[str, Any]] = {}
        self._connections: set[_Connection] = set()
        self._outbox: asyncio.Queue[tuple[str | bytes, str | None]] = asyncio.Queue()
        self._queue_info = queue_info
        self._reconnect_node = reconnect_node

    def send(self, event: str, data: dict[str, Any], sid: str | None) -> None:
        """Queue a JSON message: to one clientId, or to every socket when `sid` is None."""
        self._outbox.put_nowait((json.dumps({"type": event, "data": data}), sid))

    def send_bytes(self, frame: bytes, sid: str | None) -> None:
        """Queue a binary frame, targeted like `send`."""
        self._outbox.put_nowait((frame, sid))

    def supports_metadata(self, sid: str | None) -> bool:
        """Tell whether that client negotiated preview metadata (event 4)."""
        flags = self.metadata.get(sid or "", {}).get("feature_flags", {})
        return sid is not None and flags.get("supports_preview_metadata") is True

    async def flush(self) -> None:
        """Wait until every queued message has been written to its socket(s)."""
        await self._outbox.join()

    async def publish(self) -> None:
        """Deliver queued messages in order, forever (run as a task)."""
        while True:
            message, sid = await self._outbox.get()
            try:
                if sid is None:
                    targets = list(self.sockets.values())
                else:
                    targets = [self.sockets[sid]] if sid in self.sockets else []
                for ws in targets:
                    await _write(ws, message)
            finally:
                self._outbox.task_done()

    async def handle(self, request: web.Request) -> web.WebSocketResponse:
        """Serve GET /ws: register the socket, greet it, read feature flags."""
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        sid = request.query.get("clientId", "")
        if sid:
            self.sockets.pop(sid, None)
        else:
            sid = uuid.uuid4().hex
        self.sockets[sid] = ws
        self.metadata[sid] = {"feature_flags": {}}
        connection = _Connection(ws, request)
        self._connections.add(connection)
        try:
            await _write(ws, _status(self._queue_info(), sid))
            node = self._reconnect_node(sid)
            if node is not None:
                await _write(ws, json.dumps({"type": "executing", "data": {"node": node}}))
            await self._read(ws, sid)
        finally:
            # ComfyUI pops by clientId, even if a newer socket took the id over.
            self.sockets.pop(sid, None)
            self.metadata.pop(sid, None)
            self._connections.discard(connection)
            connection.closed.set()
        return ws

    async def _read(self, ws: web.WebSocketResponse, sid: str) -> None:
        first_message = True
        async for message in ws:
            if message.type != WSMsgType.TEXT:
                continue
            try:
                data = json.loads(message.data)
            except json.JSONDecodeError:
                continue
            if first_message and isinstance(data, dict) and data.get("type") == "feature_flags":
                self.metadata[sid]["feature_flags"] = data.get("data", {})
                reply = {"type": "feature_flags", "data": self.features}
                await _write(ws, json.dumps(reply))
            first_message = False

    async def drop(self, *, graceful: bool) -> None:
        """Close every socket (abruptly: no close frame) and wait for their handlers to end."""
        connections = list(self._connections)
        for connection in connections:
            if graceful:
                with contextlib.suppress(*_SEND_ERRORS):
                    await connection.ws.close()
            elif connection.request.transport is not None:
                connection.request.transport.abort()
        for connection in connections:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(connection.closed.wait(), timeout=2)


def _status(info: dict[str, Any], sid: str) -> str:
    return json.dumps({"type": "status", "data": {"status": info, "sid": sid}})


async def _write(ws: web.WebSocketResponse, message: str | bytes) -> None:
    if ws.closed:
        return
    try:
        if isinstance(message, bytes):
            await ws.send_bytes(message)
        else:
            await ws.send_str(message)
    except _SEND_ERRORS as exc:
        log.debug("fake comfy: dropped a frame to a closing socket: %s", exc)
