"""Raw-aiohttp helpers for tests of the fake ComfyUI: a recording socket and trace readers."""

from __future__ import annotations

import asyncio
import json
import re
import struct
from pathlib import Path
from typing import Any

import aiohttp

TRACES = Path(__file__).resolve().parent.parent / "fixtures" / "traces"
_FILENAME = re.compile(r"_(temp_[a-z]{5}_)?\d{5}_\.png$")


class Probe:
    """A WebSocket client that reads ComfyUI frames as dicts (binary: `{"type": "binary<N>"}`)."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws

    @classmethod
    async def connect(
        cls, session: aiohttp.ClientSession, url: str, client_id: str | None = None
    ) -> Probe:
        """Open `/ws` (with `?clientId=` when given)."""
        target = f"{url}/ws" + (f"?clientId={client_id}" if client_id else "")
        return cls(await session.ws_connect(target))

    async def send(self, message: dict[str, Any]) -> None:
        """Send a JSON text frame."""
        await self.ws.send_str(json.dumps(message))

    async def next(self, timeout: float = 5) -> dict[str, Any]:
        """Return the next frame; raise ConnectionError when the socket closed."""
        async with asyncio.timeout(timeout):
            message = await self.ws.receive()
        if message.type == aiohttp.WSMsgType.TEXT:
            parsed: dict[str, Any] = json.loads(message.data)
            return parsed
        if message.type == aiohttp.WSMsgType.BINARY:
            return binary(message.data)
        raise ConnectionError(f"socket ended: {message.type!r}")

    async def until_closed(self, timeout: float = 5) -> None:
        """Read (and drop) frames until the server ends the socket."""
        async with asyncio.timeout(timeout):
            while True:
                message = await self.ws.receive()
                if message.type not in (aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY):
                    return

    async def until(self, kind: str, timeout: float = 5, **data: Any) -> list[dict[str, Any]]:
        """Read frames up to and including the first of `kind` whose data contains `data`."""
        frames = []
        async with asyncio.timeout(timeout):
            while True:
                frame = await self.next(timeout)
                frames.append(frame)
                payload = frame.get("data", {})
                if frame["type"] == kind and all(payload.get(k) == v for k, v in data.items()):
                    return frames

    async def until_done(self, prompt_id: str, timeout: float = 5) -> list[dict[str, Any]]:
        """Read frames up to `executing{node: null, prompt_id}` (the last frame of a run)."""
        return await self.until("executing", timeout, node=None, prompt_id=prompt_id)


def binary(frame: bytes) -> dict[str, Any]:
    """Decode a binary frame's header (event 1/3/4) into a dict."""
    event, second = struct.unpack(">II", frame[:8])
    out: dict[str, Any] = {"type": f"binary{event}", "bytes": frame}
    if event == 1:
        out["format"] = second
    elif event in (3, 4):
        head = frame[8 : 8 + second].decode()
        out["metadata" if event == 4 else "node_id"] = json.loads(head) if event == 4 else head
        out["payload"] = frame[8 + second :]
    return out


def load_trace(name: str) -> dict[str, Any]:
    """Load a recorded trace from tests/fixtures/traces."""
    with (TRACES / name).open(encoding="utf-8") as file:
        trace: dict[str, Any] = json.load(file)
    return trace


def trace_frames(trace: dict[str, Any], client: str) -> list[dict[str, Any]]:
    """Return one client's received frames from a trace, in the probe's dict form."""
    frames = []
    for step in trace["steps"]:
        if step.get("client") != client:
            continue
        if step["kind"] == "ws_text":
            frames.append(step["json"])
        elif step["kind"] == "ws_binary":
            frames.append({"type": f"binary{step['event_type']}"})
    return frames


def trace_posts(trace: dict[str, Any], path: str = "/prompt") -> list[dict[str, Any]]:
    """Return the recorded HTTP steps that POSTed to `path`."""
    return [
        step
        for step in trace["steps"]
        if step["kind"] == "http"
        and step["request"]["method"] == "POST"
        and step["request"]["path"] == path
    ]


def shape(frame: dict[str, Any]) -> tuple[Any, ...]:
    """Reduce a frame to what must match a recording (no ids, timestamps or file counters)."""
    kind, data = frame["type"], frame.get("data", {})
    if kind == "status":
        return (kind, data["status"]["exec_info"]["queue_remaining"], "sid" in data)
    if kind == "progress_state":
        nodes = data["nodes"].items()
        return (
            kind,
            tuple((n, v["value"], type(v["value"]).__name__, v["state"]) for n, v in nodes),
        )
    if kind == "executing":
        return (kind, data["node"], "prompt_id" in data)
    if kind == "executed":
        output = data["output"]
        names = [_FILENAME.sub("_N_.png", i["filename"]) for i in (output or {}).get("images", [])]
        return (kind, data["node"], tuple(names), tuple(output or {}))
    if kind == "progress":
        return (kind, data["value"], data["max"], data["node"])
    if kind in ("execution_cached", "execution_interrupted", "execution_error"):
        return (kind, tuple(data.get("nodes", [])), data.get("node_id"))
    return (kind,)
