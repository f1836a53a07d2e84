"""Graph helpers of the fake runner: ComfyUI's node pick order, cache keys and progress state."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import Any

from tests.fakes.comfy_validate import is_link


class ExecutionOrder:
    """ComfyUI's ExecutionList: pending nodes, blockers, and its "UX friendly" pick."""

    def __init__(
        self,
        prompt: dict[str, Any],
        is_output: Callable[[str], bool],
        is_cached: Callable[[str], bool],
    ) -> None:
        self._prompt = prompt
        self._is_output = is_output
        self._is_cached = is_cached
        self._pending: dict[str, None] = {}
        self._block_count: dict[str, int] = {}
        self._blocking: dict[str, dict[str, None]] = {}

    def add(self, node_id: str) -> None:
        """Add a node and its uncached upstream nodes, depth first as ComfyUI does."""
        stack = [node_id]
        links: list[tuple[str, str]] = []
        while stack:
            current = stack.pop()
            if current in self._pending:
                continue
            self._pending[current] = None
            self._block_count[current] = 0
            self._blocking[current] = {}
            for value in self._prompt[current]["inputs"].values():
                if is_link(value):
                    if not self._is_cached(value[0]):
                        stack.append(value[0])
                    links.append((value[0], current))
        for source, target in links:
            if not self._is_cached(source) and target not in self._blocking[source]:
                self._blocking[source][target] = None
                self._block_count[target] += 1

    def is_empty(self) -> bool:
        """Tell whether every node has run."""
        return not self._pending

    def pick(self) -> str | None:
        """Return the next node to run: outputs first, then nodes feeding outputs."""
        ready = [node for node in self._pending if self._block_count[node] == 0]
        for node in ready:
            if self._is_output(node):
                return node
        for node in ready:
            if any(self._is_output(blocked) for blocked in self._blocking[node]):
                return node
        for node in ready:
            for blocked in self._blocking[node]:
                if any(self._is_output(after) for after in self._blocking[blocked]):
                    return node
        return ready[0] if ready else None

    def complete(self, node_id: str) -> None:
        """Mark a node done and unblock what waited for it."""
        del self._pending[node_id]
        for blocked in self._blocking.pop(node_id):
            self._block_count[blocked] -= 1


def signatures(prompt: dict[str, Any], is_changed: Callable[[str], str]) -> dict[str, str]:
    """Return a cache key per node: class, inputs and the keys of everything upstream."""
    keys: dict[str, str] = {}

    def key(node_id: str) -> str:
        if node_id not in keys:
            keys[node_id] = ""  # a cycle never validates; this only stops the recursion
            node = prompt[node_id]
            inputs = [
                [name, ["link", key(value[0]), value[1]] if _linked(prompt, value) else value]
                for name, value in sorted(node["inputs"].items())
            ]
            text = json.dumps([node["class_type"], is_changed(node_id), inputs], default=str)
            keys[node_id] = hashlib.sha256(text.encode()).hexdigest()
        return keys[node_id]

    for node_id in prompt:
        key(node_id)
    return keys


def _linked(prompt: dict[str, Any], value: Any) -> bool:
    return is_link(value) and value[0] in prompt


class ProgressState:
    """The `progress_state` registry of one prompt run."""

    def __init__(self, prompt_id: str) -> None:
        self.prompt_id = prompt_id
        self._nodes: dict[str, dict[str, Any]] = {}

    def _entry(self, node_id: str) -> dict[str, Any]:
        return self._nodes.setdefault(
            node_id,
            {
                "value": 0,
                "max": 1,
                "state": "pending",
                "node_id": node_id,
                "prompt_id": self.prompt_id,
                "display_node_id": node_id,
                "parent_node_id": None,
                "real_node_id": node_id,
            },
        )

    def start(self, node_id: str) -> dict[str, Any]:
        """Mark a node running at 0.0/1.0; return the message payload."""
        self._entry(node_id).update(value=0.0, max=1.0, state="running")
        return self.payload()

    def update(self, node_id: str, value: int, total: int) -> dict[str, Any]:
        """Record a progress step; return the message payload."""
        self._entry(node_id).update(value=value, max=total, state="running")
        return self.payload()

    def finish(self, node_id: str) -> dict[str, Any]:
        """Mark a node finished (value = max); return the message payload."""
        entry = self._entry(node_id)
        entry.update(value=entry["max"], state="finished")
        return self.payload()

    def payload(self) -> dict[str, Any]:
        """Return `{prompt_id, nodes}` listing every node that is not pending."""
        nodes = {k: dict(v) for k, v in self._nodes.items() if v["state"] != "pending"}
        return {"prompt_id": self.prompt_id, "nodes": nodes}
