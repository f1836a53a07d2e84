"""Subscription: one consumer's queue of events; putting never blocks, the newest preview wins."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from typing import Generic, Self, TypeVar

from bot.comfy.events import Preview

T = TypeVar("T")


class Subscription(Generic[T]):
    """A queue for one consumer; putting never blocks, and only the newest preview waits."""

    def __init__(self, on_close: Callable[[Subscription[T]], None] | None = None) -> None:
        self._items: deque[T] = deque()
        self._ready = asyncio.Event()
        self._on_close = on_close
        self.is_closed = False

    def put(self, item: T) -> None:
        """Hand an item to the consumer without waiting; a newer preview replaces an unread one."""
        if self.is_closed:
            return
        if isinstance(item, Preview):
            for index, queued in enumerate(self._items):
                if isinstance(queued, Preview):
                    del self._items[index]
                    break
        self._items.append(item)
        self._ready.set()

    async def receive(self) -> T | None:
        """Return the next item, waiting for one; None once closed and drained."""
        while not self._items:
            if self.is_closed:
                return None
            self._ready.clear()
            await self._ready.wait()
        return self._items.popleft()

    def get_nowait(self) -> T | None:
        """Return the next item if one is waiting."""
        return self._items.popleft() if self._items else None

    def close(self) -> None:
        """Stop receiving items; those already queued can still be read."""
        if not self.is_closed:
            self.is_closed = True
            self._ready.set()  # wake a consumer waiting in receive()
            if self._on_close is not None:
                self._on_close(self)

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> T:
        item = await self.receive()
        if item is None:
            raise StopAsyncIteration
        return item
