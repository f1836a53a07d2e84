"""EventStream: one WebSocket per backend, reconnecting, routing events by prompt_id."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, replace
from types import TracebackType
from typing import Any, Self

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI

from bot.comfy.events import (
    FEATURE_FLAGS_MESSAGE,
    Event,
    Executing,
    ExecutionError,
    ExecutionInterrupted,
    ExecutionStart,
    ExecutionSuccess,
    Preview,
    Status,
    parse_event,
    prompt_id_of,
)
from bot.comfy.subscription import Subscription
from bot.comfy.urls import redact, shown_url

log = logging.getLogger(__name__)

MAX_FRAME_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class Backoff:
    """Delays between reconnect attempts: initial, doubled each failure, capped."""

    # Half a second rides out a dropped socket or a quick ComfyUI restart without a visible stall;
    # ten seconds at most keeps a server that is down for minutes from being hammered, yet found
    # again soon after it is back (a model load after restart often takes that long anyway).
    initial: float = 0.5
    maximum: float = 10.0

    def delays(self) -> Callable[[], float]:
        """Return a function giving the next delay; reset by creating a new one."""
        state = [self.initial / 2]

        def step() -> float:
            state[0] = min(state[0] * 2, self.maximum)
            return state[0]

        return step


ConnectHook = Callable[[bool], Coroutine[Any, Any, None]]


class EventStream:
    """One WebSocket to one ComfyUI server, shared by every job of this process.

    Events that carry a prompt_id go to that prompt's subscriber only; everything is also given
    to `listen()` subscribers. The receive loop never awaits a consumer.
    """

    def __init__(
        self,
        ws_url: str,
        *,
        backoff: Backoff | None = None,
        on_connect: ConnectHook | None = None,
    ) -> None:
        self.ws_url = ws_url
        self.shown_url = shown_url(ws_url)
        self._backoff = backoff or Backoff()
        self._on_connect = on_connect
        self._routes: dict[str, Subscription[Event]] = {}
        # Listener -> the event classes it wants (None: every event).
        self._listeners: dict[Subscription[Event], tuple[type, ...] | None] = {}
        self._reader: asyncio.Task[None] | None = None
        self._hooks: set[asyncio.Task[None]] = set()
        self._connected = asyncio.Event()
        self.running_prompt_id: str | None = None
        self.queue_remaining = 0
        self.connections = 0
        self.last_message_at = time.monotonic()
        self._ws: ClientConnection | None = None

    def __repr__(self) -> str:
        return f"EventStream({self.shown_url!r}, connected={self.is_connected})"

    @property
    def is_connected(self) -> bool:
        """Tell whether the socket is open now."""
        return self._connected.is_set()

    async def wait_connected(self) -> None:
        """Wait until the socket is open."""
        await self._connected.wait()

    async def __aenter__(self) -> Self:
        self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    def start(self) -> None:
        """Start the receive loop in the background."""
        if self._reader is None:
            self._reader = asyncio.create_task(self._run(), name=f"comfy-stream {self.shown_url}")

    async def close(self) -> None:
        """Stop the receive loop and every connect hook, then close all subscriptions."""
        tasks = [t for t in (self._reader, *self._hooks) if t is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._reader = None
        for sub in [*self._routes.values(), *self._listeners]:
            sub.close()

    def subscribe(self, prompt_id: str) -> Subscription[Event]:
        """Receive every event of one prompt until the subscription is closed."""
        sub: Subscription[Event] = Subscription(lambda s: self._drop_route(prompt_id, s))
        self._routes[prompt_id] = sub
        return sub

    def listen(self, *kinds: type) -> Subscription[Event]:
        """Receive the stream's events of these classes (every event when none is named)."""
        sub: Subscription[Event] = Subscription(self._drop_listener)
        self._listeners[sub] = kinds or None
        return sub

    def _drop_listener(self, sub: Subscription[Event]) -> None:
        self._listeners.pop(sub, None)

    def _drop_route(self, prompt_id: str, sub: Subscription[Event]) -> None:
        if self._routes.get(prompt_id) is sub:
            del self._routes[prompt_id]

    async def _run(self) -> None:
        next_delay = self._backoff.delays()
        while True:
            try:
                # No permessage-deflate: previews are JPEG/PNG already, the JSON is tiny, and
                # inflating every frame costs more CPU than routing it.
                async with connect(
                    self.ws_url,
                    max_size=MAX_FRAME_BYTES,
                    open_timeout=10,
                    ping_interval=20,
                    compression=None,
                ) as ws:
                    await ws.send(FEATURE_FLAGS_MESSAGE)
                    next_delay = self._backoff.delays()
                    self._ws = ws
                    self._opened()
                    await self._receive(ws)
            except (OSError, TimeoutError, InvalidHandshake, ConnectionClosed) as exc:
                reason = redact(str(exc)) or type(exc).__name__
                log.warning("ComfyUI stream %s lost: %s", self.shown_url, reason)
            except InvalidURI:
                log.error("ComfyUI stream URL %s is invalid", self.shown_url)
                raise
            finally:
                self._ws = None
                self._connected.clear()
            await asyncio.sleep(next_delay())

    def _opened(self) -> None:
        self.connections += 1
        self._connected.set()
        log.info("ComfyUI stream %s connected (#%d)", self.shown_url, self.connections)
        if self._on_connect is not None:
            hook = asyncio.create_task(self._on_connect(self.connections > 1))
            self._hooks.add(hook)
            hook.add_done_callback(self._hook_done)

    def _hook_done(self, task: asyncio.Task[None]) -> None:
        self._hooks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("ComfyUI stream connect hook failed", exc_info=task.exception())

    async def reconnect(self) -> None:
        """Close the socket so that the receive loop opens a new one."""
        if self._ws is not None:
            await self._ws.close()

    @property
    def silence(self) -> float:
        """Return the seconds since the last message arrived (or the socket opened)."""
        return time.monotonic() - self.last_message_at

    async def _receive(self, ws: ClientConnection) -> None:
        self.last_message_at = time.monotonic()
        async for message in ws:
            self.last_message_at = time.monotonic()
            self.dispatch(parse_event(message))

    def dispatch(self, event: Event) -> None:
        """Route one event to its prompt's subscriber and to every listener."""
        prompt_id = prompt_id_of(event)
        match event:
            case Status(queue_remaining=remaining):
                self.queue_remaining = remaining
            case ExecutionStart(prompt_id=started):
                self.running_prompt_id = started
            case Executing(prompt_id=None, node=str()):
                # After a reconnect ComfyUI names the running node without its prompt.
                prompt_id = self.running_prompt_id
                event = replace(event, prompt_id=prompt_id)
            case (
                Executing(node=None)
                | ExecutionSuccess()
                | ExecutionError()
                | (ExecutionInterrupted())
            ) if prompt_id == self.running_prompt_id:
                self.running_prompt_id = None
            case Preview(prompt_id=None) if self.running_prompt_id is not None:
                # Legacy previews (event 1) carry no prompt; they belong to the running one.
                prompt_id = self.running_prompt_id
                event = replace(event, prompt_id=prompt_id)
        if prompt_id is not None and (sub := self._routes.get(prompt_id)) is not None:
            sub.put(event)
        for listener, kinds in self._listeners.items():
            if kinds is None or isinstance(event, kinds):
                listener.put(event)
