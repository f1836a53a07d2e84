"""A prompt's execution: its start, cached nodes, outputs (the files they wrote) and its end."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Final, Self

from bot.comfy.fields import optional_string, optional_whole, string, strings

_FILE_KEYS: Final = ("filename", "subfolder", "type")


@dataclass(frozen=True, slots=True)
class _Stamped:
    """A message that names a prompt and when it was sent; nothing more."""

    prompt_id: str
    timestamp: int | None

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> Self:
        return cls(string(data["prompt_id"]), optional_whole(data.get("timestamp")))


@dataclass(frozen=True, slots=True)
class ExecutionStart(_Stamped):
    """The worker took the prompt."""


@dataclass(frozen=True, slots=True)
class ExecutionCached:
    """Nodes whose outputs were reused; they get no `executing`."""

    prompt_id: str
    nodes: tuple[str, ...]
    timestamp: int | None

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> Self:
        return cls(
            string(data["prompt_id"]), strings(data["nodes"]), optional_whole(data.get("timestamp"))
        )


@dataclass(frozen=True, slots=True)
class OutputFile:
    """A file a node wrote, addressable through `GET /view`."""

    filename: str
    subfolder: str
    type: str

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> Self:
        """Build from a `{filename, subfolder, type}` entry of a node output."""
        return cls(string(data["filename"]), string(data["subfolder"]), string(data["type"]))


@dataclass(frozen=True, slots=True)
class Executed:
    """An output node finished (or was cached) with its UI `output`."""

    prompt_id: str
    node: str
    display_node: str | None
    output: Mapping[str, Any]

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> Self:
        output = data["output"]
        if not isinstance(output, Mapping):
            raise TypeError("executed output is not an object")
        node, display_node = string(data["node"]), optional_string(data.get("display_node"))
        return cls(string(data["prompt_id"]), node, display_node, MappingProxyType(dict(output)))

    @property
    def files(self) -> tuple[OutputFile, ...]:
        """List every file entry of the output: images, gifs, videos, audio…."""
        return tuple(
            OutputFile.from_data(item)
            for value in self.output.values()
            if isinstance(value, list)
            for item in value
            if isinstance(item, Mapping) and all(isinstance(item.get(k), str) for k in _FILE_KEYS)
        )


@dataclass(frozen=True, slots=True)
class ExecutionSuccess(_Stamped):
    """The prompt ran to the end."""


@dataclass(frozen=True, slots=True)
class ExecutionError:
    """A node raised; the server's own report, not one of our exceptions."""

    prompt_id: str
    node_id: str | None
    node_type: str | None
    exception_type: str
    exception_message: str
    traceback: tuple[str, ...]
    executed: tuple[str, ...]
    timestamp: int | None

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> Self:
        return cls(
            string(data["prompt_id"]),
            optional_string(data.get("node_id")),
            optional_string(data.get("node_type")),
            string(data["exception_type"]),
            string(data["exception_message"]),
            strings(data.get("traceback", ())),
            strings(data.get("executed", ())),
            optional_whole(data.get("timestamp")),
        )


@dataclass(frozen=True, slots=True)
class ExecutionInterrupted:
    """The prompt was stopped by `/interrupt`."""

    prompt_id: str
    node_id: str | None
    node_type: str | None
    executed: tuple[str, ...]
    timestamp: int | None

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> Self:
        return cls(
            string(data["prompt_id"]),
            optional_string(data.get("node_id")),
            optional_string(data.get("node_type")),
            strings(data.get("executed", ())),
            optional_whole(data.get("timestamp")),
        )
