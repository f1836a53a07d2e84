"""Typed ComfyUI WebSocket events, parsed from text and binary frames without I/O.

This is where events are imported from; each kind is defined beside its kin: the progress of
things in `progress`, a prompt's execution in `execution`, binary frames in `frames`.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Final, Self, TypeAlias

from bot.comfy.execution import (
    Executed,
    ExecutionCached,
    ExecutionError,
    ExecutionInterrupted,
    ExecutionStart,
    ExecutionSuccess,
    OutputFile,
)
from bot.comfy.fields import BAD_INPUT
from bot.comfy.frames import Preview, Text
from bot.comfy.progress import Executing, NodeState, Progress, ProgressState, Status

__all__ = [
    "FEATURE_FLAGS_MESSAGE",
    "Event",
    "Executed",
    "Executing",
    "ExecutionCached",
    "ExecutionError",
    "ExecutionInterrupted",
    "ExecutionStart",
    "ExecutionSuccess",
    "FeatureFlags",
    "NodeState",
    "OutputFile",
    "Preview",
    "Progress",
    "ProgressState",
    "Status",
    "Text",
    "Unknown",
    "parse_binary",
    "parse_event",
    "parse_json",
    "prompt_id_of",
]

FEATURE_FLAGS_MESSAGE: Final = '{"type":"feature_flags","data":{"supports_preview_metadata":true}}'


@dataclass(frozen=True, slots=True)
class FeatureFlags:
    """The server's answer to our `FEATURE_FLAGS_MESSAGE`."""

    flags: Mapping[str, Any]

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> Self:
        return cls(MappingProxyType(dict(data)))


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
    except BAD_INPUT:
        return Unknown(kind, data)


def parse_binary(frame: bytes) -> Event:
    """Turn a binary frame into a `Preview`, `Text` or `Unknown`; never raise."""
    if len(frame) < 4:
        return Unknown("binary", frame)
    event = int.from_bytes(frame[:4], "big")
    if parser := _BINARY_EVENTS.get(event):
        try:
            return parser(frame)
        except (*BAD_INPUT, struct.error):
            pass
    return Unknown(f"binary:{event}", frame)


def parse_event(message: str | bytes) -> Event:
    """Turn one WebSocket message, text or binary, into an event; never raise."""
    if isinstance(message, bytes):
        return parse_binary(message)
    try:
        obj = json.loads(message)
    except BAD_INPUT:
        return Unknown("invalid", message)
    return _parse_object(obj) if isinstance(obj, dict) else Unknown("invalid", obj)


def prompt_id_of(event: Event) -> str | None:
    """Return the prompt an event belongs to, if it says."""
    match event:
        case Status() | FeatureFlags() | Text() | Unknown():
            return None
        case _:
            return event.prompt_id
