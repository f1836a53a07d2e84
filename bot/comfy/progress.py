"""How far things are: the queue's size, the node that runs, its steps, every node's state."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Self

from bot.comfy.fields import number, optional_string, string, whole


@dataclass(frozen=True, slots=True)
class Status:
    """Queue size broadcast to every socket; `sid` only on the first frame after connecting."""

    queue_remaining: int
    sid: str | None

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> Self:
        remaining = whole(data["status"]["exec_info"]["queue_remaining"])
        return cls(remaining, optional_string(data.get("sid")))


@dataclass(frozen=True, slots=True)
class Executing:
    """A node started; `node` None marks the end of the prompt, whatever its outcome."""

    prompt_id: str | None
    node: str | None
    display_node: str | None

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> Self:
        """Build from an `executing` payload; on reconnect it carries only `node`."""
        node = optional_string(data["node"])
        return cls(
            optional_string(data.get("prompt_id")), node, optional_string(data.get("display_node"))
        )


@dataclass(frozen=True, slots=True)
class Progress:
    """Step `value` of `max` for a running node."""

    prompt_id: str | None
    node: str | None
    value: int
    max: int

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> Self:
        value, maximum = whole(data["value"]), whole(data["max"])
        return cls(
            optional_string(data.get("prompt_id")),
            optional_string(data.get("node")),
            value,
            maximum,
        )


@dataclass(frozen=True, slots=True)
class NodeState:
    """One node's entry in `progress_state`."""

    node_id: str
    value: float
    max: float
    state: str
    display_node_id: str | None

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> Self:
        return cls(
            string(data["node_id"]),
            number(data["value"]),
            number(data["max"]),
            string(data["state"]),
            optional_string(data.get("display_node_id")),
        )


@dataclass(frozen=True, slots=True)
class ProgressState:
    """Every started node of a prompt, with its progress and `running`/`finished` state."""

    prompt_id: str
    nodes: tuple[NodeState, ...]

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> Self:
        nodes = tuple([NodeState.from_data(node) for node in data["nodes"].values()])
        return cls(string(data["prompt_id"]), nodes)
