"""The fake Discord gateway: HELLO/IDENTIFY/READY/RESUME, heartbeats and sequenced dispatches."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aiohttp import WSMsgType, web

if TYPE_CHECKING:
    from tests.fakes.discord_guild import FakeGuild

log = logging.getLogger(__name__)

HEARTBEAT_INTERVAL_MS = 41_250
INTENT_MEMBERS = 1 << 1
INTENT_PRESENCES = 1 << 8
INTENT_MESSAGE_CONTENT = 1 << 15
PRIVILEGED_INTENTS = INTENT_MEMBERS | INTENT_PRESENCES | INTENT_MESSAGE_CONTENT
_REPLAY_LIMIT = 2000

Transform = Callable[["Session", dict[str, Any]], dict[str, Any]]


@dataclass(eq=False)
class Session:
    """One identified gateway session; it survives a RESUME on a new socket."""

    id: str
    intents: int
    shard: list[int] | None
    ws: web.WebSocketResponse | None
    seq: int = 0
    sent: list[dict[str, Any]] = field(default_factory=list)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    def has_intent(self, intent: int) -> bool:
        """Tell whether the session identified with ``intent``."""
        return bool(self.intents & intent)


class Gateway:
    """Serve ``/gateway`` and push events to every live session."""

    def __init__(self, fake: FakeGuild) -> None:
        self._fake = fake
        self.sessions: dict[str, Session] = {}
        self.identifies: list[dict[str, Any]] = []
        self._sockets: set[web.WebSocketResponse] = set()
        self._live = asyncio.Event()

    @property
    def live(self) -> list[Session]:
        """Sessions with an open socket."""
        return [s for s in self.sessions.values() if s.ws is not None and not s.ws.closed]

    async def handle(self, request: web.Request) -> web.WebSocketResponse:
        """Run one gateway connection until the client closes it."""
        ws = web.WebSocketResponse(max_msg_size=0)
        await ws.prepare(request)
        self._sockets.add(ws)
        session: Session | None = None
        try:
            await ws.send_str(_frame(10, {"heartbeat_interval": HEARTBEAT_INTERVAL_MS}))
            async for msg in ws:
                if msg.type is WSMsgType.TEXT:
                    session = await self._receive(ws, json.loads(msg.data), session)
        finally:
            self._sockets.discard(ws)
            if session is not None and session.ws is ws:
                session.ws = None
            if not self.live:
                self._live.clear()
        return ws

    async def _receive(
        self, ws: web.WebSocketResponse, payload: dict[str, Any], session: Session | None
    ) -> Session | None:
        op, data = payload["op"], payload.get("d") or {}
        if op == 1:
            await ws.send_str(_frame(11, None))
        elif op == 2:
            return await self._identify(ws, data)
        elif op == 6:
            return await self._resume(ws, data)
        elif op == 8 and session is not None:
            await self._send_chunk(session, data)
        return session

    async def _identify(self, ws: web.WebSocketResponse, data: dict[str, Any]) -> Session | None:
        self.identifies.append(data)
        intents = int(data.get("intents", 0))
        allowed = self._fake.allowed_intents
        if allowed is not None and intents & PRIVILEGED_INTENTS & ~allowed:
            await ws.close(code=4014, message=b"Disallowed intent(s).")
            return None
        session = Session(secrets.token_hex(16), intents, data.get("shard"), ws)
        self.sessions[session.id] = session
        ready = self._fake.ready_payload(session.id, session.shard)
        await self._send(session, "READY", ready)
        for guild_id in self._fake.guild_ids:
            if session.shard is None or (guild_id >> 22) % session.shard[1] == session.shard[0]:
                await self._send(session, "GUILD_CREATE", self._fake.guild_payload(guild_id))
        self._live.set()
        return session

    async def _resume(self, ws: web.WebSocketResponse, data: dict[str, Any]) -> Session | None:
        session = self.sessions.get(data.get("session_id", ""))
        if session is None:
            await ws.send_str(_frame(9, False))
            return None
        session.ws = ws
        async with session.lock:
            for frame in session.sent:
                if frame["s"] > int(data.get("seq") or 0):
                    await ws.send_str(json.dumps(frame))
        await self._send(session, "RESUMED", {})
        self._live.set()
        return session

    async def _send_chunk(self, session: Session, data: dict[str, Any]) -> None:
        guild_id = int(data.get("guild_id") or self._fake.guild_id)
        chunk = {
            "guild_id": str(guild_id),
            "members": self._fake.member_payloads(guild_id),
            "chunk_index": 0,
            "chunk_count": 1,
            "not_found": [],
        }
        if data.get("nonce") is not None:
            chunk["nonce"] = data["nonce"]
        await self._send(session, "GUILD_MEMBERS_CHUNK", chunk)

    async def _send(self, session: Session, event: str, data: dict[str, Any]) -> None:
        async with session.lock:
            session.seq += 1
            frame = {"op": 0, "t": event, "s": session.seq, "d": data}
            session.sent.append(frame)
            del session.sent[:-_REPLAY_LIMIT]
            ws = session.ws
            if ws is not None and not ws.closed:
                with contextlib.suppress(ConnectionError):
                    await ws.send_str(json.dumps(frame))

    async def wait_live(self, timeout: float) -> list[Session]:
        """Return the live sessions, waiting up to ``timeout`` for a bot to connect."""
        try:
            async with asyncio.timeout(timeout):
                while not self.live:
                    self._live.clear()
                    await self._live.wait()
        except TimeoutError:
            raise RuntimeError("no bot is connected to the fake Discord gateway") from None
        return self.live

    async def dispatch(
        self,
        event: str,
        data: dict[str, Any],
        *,
        transform: Transform | None = None,
        wait: float = 5.0,
    ) -> None:
        """Dispatch to every live session, waiting up to ``wait`` s for one (0: skip if none)."""
        sessions = self.live if wait <= 0 else await self.wait_live(wait)
        for session in sessions:
            await self._send(session, event, transform(session, data) if transform else data)

    async def send_op(self, op: int, data: Any = None) -> None:
        """Send a bare opcode (7 RECONNECT, 9 INVALID_SESSION) to every live session."""
        for session in self.live:
            if session.ws is not None:
                await session.ws.send_str(_frame(op, data))

    async def drop(self, code: int = 4000) -> None:
        """Close every live session's socket with ``code`` (4000 Unknown error: resumable)."""
        for session in self.live:
            if session.ws is not None:
                await session.ws.close(code=code, message=b"fake Discord dropped the socket")

    async def close(self) -> None:
        """Close every socket (code 1001, going away)."""
        for ws in list(self._sockets):
            await ws.close(code=1001, message=b"fake Discord shutting down")


def _frame(op: int, data: Any) -> str:
    return json.dumps({"op": op, "d": data, "s": None, "t": None})
