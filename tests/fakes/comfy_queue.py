"""The fake ComfyUI's prompt queue and history (ComfyUI's PromptQueue: a heap, one runner)."""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

MAX_HISTORY = 10000


@dataclass(slots=True)
class QueueItem:
    """One queued prompt: `[number, prompt_id, prompt, extra_data, outputs_to_execute]`."""

    number: float
    prompt_id: str
    prompt: dict[str, Any]
    extra_data: dict[str, Any]
    outputs: list[str]

    @property
    def client_id(self) -> str | None:
        """Return the submitting client's id, if it sent one."""
        client_id = self.extra_data.get("client_id")
        return client_id if isinstance(client_id, str) else None

    def as_list(self) -> list[Any]:
        """Return the item as /queue and /history show it."""
        return [self.number, self.prompt_id, self.prompt, self.extra_data, self.outputs]


@dataclass(slots=True)
class RunOutcome:
    """What running a prompt left for its history entry."""

    success: bool
    messages: list[list[Any]]
    outputs: dict[str, Any] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)


class PromptQueue:
    """Pending prompts ordered by number, the running one, and the history."""

    def __init__(self, on_update: Callable[[], None]) -> None:
        self.heap: list[tuple[float, int, QueueItem]] = []
        self.running: QueueItem | None = None
        self.history: dict[str, dict[str, Any]] = {}
        self.counter = 0
        self._sequence = itertools.count()
        self._on_update = on_update
        self._changed = asyncio.Event()

    def take_number(self) -> int:
        """Return the next server number (taken before validation, as ComfyUI does)."""
        number = self.counter
        self.counter += 1
        return number

    def info(self) -> dict[str, Any]:
        """Return the `status` payload."""
        remaining = len(self.heap) + (self.running is not None)
        return {"exec_info": {"queue_remaining": remaining}}

    def pending_ids(self) -> list[str]:
        """Return pending prompt ids in the order they will run."""
        return [entry[2].prompt_id for entry in sorted(self.heap, key=lambda e: e[:2])]

    def put(self, item: QueueItem) -> None:
        """Queue a prompt and announce the new length."""
        heapq.heappush(self.heap, (item.number, next(self._sequence), item))
        self._changed_now()

    async def get(self) -> QueueItem:
        """Wait for the next prompt and mark it running."""
        while not self.heap:
            await self.wait_change()
        self.running = heapq.heappop(self.heap)[2]
        self._changed_now()
        return self.running

    def task_done(self, item: QueueItem, outcome: RunOutcome) -> None:
        """Record the finished prompt in the history and announce the new length."""
        self.running = None
        if len(self.history) > MAX_HISTORY:
            self.history.pop(next(iter(self.history)))
        self.history[item.prompt_id] = {
            "prompt": item.as_list(),
            "outputs": outcome.outputs,
            "status": {
                "status_str": "success" if outcome.success else "error",
                "completed": outcome.success,
                "messages": outcome.messages,
            },
            "meta": outcome.meta,
        }
        self._changed_now()

    def delete(self, prompt_id: str) -> bool:
        """Remove a pending prompt (never the running one); announce it if found."""
        for index, entry in enumerate(self.heap):
            if entry[2].prompt_id == prompt_id:
                self.heap.pop(index)
                heapq.heapify(self.heap)
                self._changed_now()
                return True
        return False

    def wipe(self) -> None:
        """Remove every pending prompt and announce it."""
        self.heap.clear()
        self._changed_now()

    def get_history(self, max_items: int | None, offset: int) -> dict[str, Any]:
        """Return history entries oldest first, as GET /history pages them."""
        if offset < 0 and max_items is not None:
            offset = len(self.history) - max_items
        out: dict[str, Any] = {}
        for index, (prompt_id, entry) in enumerate(self.history.items()):
            if index >= offset:
                out[prompt_id] = entry
                if max_items is not None and len(out) >= max_items:
                    break
        return out

    async def wait_change(self) -> None:
        """Wait until the queue, the running prompt or the history changes."""
        await self._changed.wait()

    def wake(self) -> None:
        """Wake everything waiting in `wait_change` without announcing anything."""
        self._changed.set()
        self._changed = asyncio.Event()

    def _changed_now(self) -> None:
        self._on_update()
        self.wake()
