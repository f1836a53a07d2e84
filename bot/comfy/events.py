"""Typed ComfyUI WebSocket events, parsed from text and binary frames without I/O."""

from __future__ import annotations

import json
import struct
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Final, Self, TypeAlias

FEATURE_FLAGS_MESSAGE: Final = '{"type":"feature_flags","data":{"supports_preview_metadata":true}}'

_HEADER: Final = struct.Struct(">II")
_LEGACY_IMAGE_TYPES: Final = {1: "image/jpeg", 2: "image/png"}
_FILE_KEYS: Final = ("filename", "subfolder", "type")
# What hostile or truncated JSON can raise on the way to a dataclass: a missing key, a
# wrong type, inf or NaN where an int is due, or nesting deep enough to hit the recursion limit.
_BAD_INPUT: Final = (
    LookupError,
    TypeError,
    ValueError,
    AttributeError,
    ArithmeticError,
    RecursionError,
)


def _str(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(f"expected str, got {type(value).__name__}")
    return value


def _opt_str(value: Any) -> str | None:
    return None if value is None else _str(value)


def _float(value: Any) -> float:
    if type(value) is float:  # the common case, first: progress values are floats
        return value
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"expected a number, got {type(value).__name__}")
    return float(value)


def _int(value: Any) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    return int(_float(value))


def _opt_int(value: Any) -> int | None:
    return None if value is None else _int(value)


def _strs(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list | tuple):
        raise TypeError(f"expected a list, got {type(value).__name__}")
    return tuple(_str(item) for item in value)


@dataclass(frozen=True, slots=True)
class Status:
    """Queue size broadcast to every socket; `sid` only on the first frame after connecting."""

    queue_remaining: int
    sid: str | None

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> Self:
        remaining = _int(data["status"]["exec_info"]["queue_remaining"])
        return cls(remaining, _opt_str(data.get("sid")))


@dataclass(frozen=True, slots=True)
class ExecutionStart:
    """The worker took the prompt."""

    prompt_id: str
    timestamp: int | None

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> Self:
        return cls(_str(data["prompt_id"]), _opt_int(data.get("timestamp")))


@dataclass(frozen=True, slots=True)
class ExecutionCached:
    """Nodes whose outputs were reused; they get no `executing`."""

    prompt_id: str
    nodes: tuple[str, ...]
    timestamp: int | None

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> Self:
        return cls(_str(data["prompt_id"]), _strs(data["nodes"]), _opt_int(data.get("timestamp")))


@dataclass(frozen=True, slots=True)
class Executing:
    """A node started; `node` None marks the end of the prompt, whatever its outcome."""

    prompt_id: str | None
    node: str | None
    display_node: str | None

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> Self:
        """Build from an `executing` payload; on reconnect it carries only `node`."""
        node = _opt_str(data["node"])
        return cls(_opt_str(data.get("prompt_id")), node, _opt_str(data.get("display_node")))


@dataclass(frozen=True, slots=True)
class Progress:
    """Step `value` of `max` for a running node."""

    prompt_id: str | None
    node: str | None
    value: int
    max: int

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> Self:
        value, maximum = _int(data["value"]), _int(data["max"])
        return cls(_opt_str(data.get("prompt_id")), _opt_str(data.get("node")), value, maximum)


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
            _str(data["node_id"]),
            _float(data["value"]),
            _float(data["max"]),
            _str(data["state"]),
            _opt_str(data.get("display_node_id")),
        )


@dataclass(frozen=True, slots=True)
class ProgressState:
    """Every started node of a prompt, with its progress and `running`/`finished` state."""

    prompt_id: str
    nodes: tuple[NodeState, ...]

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> Self:
        nodes = tuple([NodeState.from_data(node) for node in data["nodes"].values()])
        return cls(_str(data["prompt_id"]), nodes)


@dataclass(frozen=True, slots=True)
class OutputFile:
    """A file a node wrote, addressable through `GET /view`."""

    filename: str
    subfolder: str
    type: str

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> Self:
        """Build from a `{filename, subfolder, type}` entry of a node output."""
        return cls(_str(data["filename"]), _str(data["subfolder"]), _str(data["type"]))


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
        node, display_node = _str(data["node"]), _opt_str(data.get("display_node"))
        return cls(_str(data["prompt_id"]), node, display_node, MappingProxyType(dict(output)))

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
class ExecutionSuccess:
    """The prompt ran to the end."""

    prompt_id: str
    timestamp: int | None

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> Self:
        return cls(_str(data["prompt_id"]), _opt_int(data.get("timestamp")))


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
            _str(data["prompt_id"]),
            _opt_str(data.get("node_id")),
            _opt_str(data.get("node_type")),
            _str(data["exception_type"]),
            _str(data["exception_message"]),
            _strs(data.get("traceback", ())),
            _strs(data.get("executed", ())),
            _opt_int(data.get("timestamp")),
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
            _str(data["prompt_id"]),
            _opt_str(data.get("node_id")),
            _opt_str(data.get("node_type")),
            _strs(data.get("executed", ())),
            _opt_int(data.get("timestamp")),
        )


@dataclass(frozen=True, slots=True)
class FeatureFlags:
    """The server's answer to our `FEATURE_FLAGS_MESSAGE`."""

    flags: Mapping[str, Any]

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> Self:
        return cls(MappingProxyType(dict(data)))


@dataclass(frozen=True, slots=True)
class Preview:
    """A preview or SaveImageWebsocket image; `prompt_id` is known only for event 4."""

    prompt_id: str | None
    node_id: str | None
    image_type: str
    data: bytes

    @classmethod
    def from_data(cls, data: bytes | memoryview) -> Self:
        """Build from a whole binary frame of event 1 or 4."""
        view = memoryview(data)
        event, second = _HEADER.unpack_from(view)
        if event == 1:
            return cls(None, None, _LEGACY_IMAGE_TYPES[second], bytes(view[_HEADER.size :]))
        end = _HEADER.size + second
        if event != 4 or len(view) < end:
            raise ValueError(f"not a preview frame (event {event})")
        meta = json.loads(bytes(view[_HEADER.size : end]))
        if not isinstance(meta, Mapping):
            raise TypeError("preview metadata is not an object")
        node_id, prompt_id = _opt_str(meta.get("node_id")), _opt_str(meta.get("prompt_id"))
        return cls(prompt_id, node_id, _str(meta["image_type"]), bytes(view[end:]))

    def __repr__(self) -> str:
        return (
            f"Preview(prompt_id={self.prompt_id!r}, node_id={self.node_id!r}, "
            f"image_type={self.image_type!r}, data=<{len(self.data)} bytes>)"
        )


@dataclass(frozen=True, slots=True)
class Text:
    """Text a node sent as binary event 3; broadcast to every socket."""

    node_id: str
    text: str

    @classmethod
    def from_data(cls, data: bytes | memoryview) -> Self:
        """Build from a whole binary frame of event 3."""
        view = memoryview(data)
        event, length = _HEADER.unpack_from(view)
        end = _HEADER.size + length
        if event != 3 or len(view) < end:
            raise ValueError(f"not a text frame (event {event})")
        return cls(str(view[_HEADER.size : end], "utf-8"), str(view[end:], "utf-8"))


@dataclass(frozen=True, slots=True)
class Unknown:
    """A message of an unknown type (`binary:<n>` for binary), or one that did not parse."""

    type: str
    data: Any

    def __repr__(self) -> str:
        data = f"<{len(self.data)} bytes>" if isinstance(self.data, bytes) else repr(self.data)
        return f"Unknown(type={self.type!r}, data={data})"


Event: TypeAlias = (
    Status
    | ExecutionStart
    | ExecutionCached
    | Executing
    | Progress
    | ProgressState
    | Executed
    | ExecutionSuccess
    | ExecutionError
    | ExecutionInterrupted
    | FeatureFlags
    | Preview
    | Text
    | Unknown
)

_TEXT_EVENTS: Final[Mapping[str, Callable[[Mapping[str, Any]], Event]]] = {
    "status": Status.from_data,
    "execution_start": ExecutionStart.from_data,
    "execution_cached": ExecutionCached.from_data,
    "executing": Executing.from_data,
    "progress": Progress.from_data,
    "progress_state": ProgressState.from_data,
    "executed": Executed.from_data,
    "execution_success": ExecutionSuccess.from_data,
    "execution_error": ExecutionError.from_data,
    "execution_interrupted": ExecutionInterrupted.from_data,
    "feature_flags": FeatureFlags.from_data,
}

_BINARY_EVENTS: Final[Mapping[int, Callable[[bytes], Event]]] = {
    1: Preview.from_data,
    3: Text.from_data,
    4: Preview.from_data,
}


def parse_json(obj: Mapping[str, Any]) -> Event:
    """Turn a decoded `{"type", "data"}` text message into an event; never raise."""
    return _parse_object(obj) if isinstance(obj, Mapping) else Unknown("invalid", obj)


def _parse_object(obj: Mapping[str, Any]) -> Event:
    # Plain lookups rather than a mapping pattern: this runs for every message, and a
    # pattern checks `Mapping` (an ABC, slow) once more for a dict json.loads just built.
    kind = obj.get("type")
    if not isinstance(kind, str):
        return Unknown("invalid", obj)
    data = obj.get("data")
    parser = _TEXT_EVENTS.get(kind)
    if parser is None or not (type(data) is dict or isinstance(data, Mapping)):
        return Unknown(kind, data)
    try:
        return parser(data)
    except _BAD_INPUT:
        return Unknown(kind, data)


def parse_binary(frame: bytes) -> Event:
    """Turn a binary frame into a `Preview`, `Text` or `Unknown`; never raise."""
    if len(frame) < 4:
        return Unknown("binary", frame)
    event = int.from_bytes(frame[:4], "big")
    if parser := _BINARY_EVENTS.get(event):
        try:
            return parser(frame)
        except (*_BAD_INPUT, struct.error):
            pass
    return Unknown(f"binary:{event}", frame)


def parse_event(message: str | bytes) -> Event:
    """Turn one WebSocket message, text or binary, into an event; never raise."""
    if isinstance(message, bytes):
        return parse_binary(message)
    try:
        obj = json.loads(message)
    except _BAD_INPUT:
        return Unknown("invalid", message)
    return _parse_object(obj) if isinstance(obj, dict) else Unknown("invalid", obj)


def prompt_id_of(event: Event) -> str | None:
    """Return the prompt an event belongs to, if it says."""
    match event:
        case Status() | FeatureFlags() | Text() | Unknown():
            return None
        case _:
            return event.prompt_id
