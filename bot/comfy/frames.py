"""Binary WebSocket frames: preview images (events 1 and 4) and a node's text (event 3)."""

from __future__ import annotations

import json
import struct
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final, Self

from bot.comfy.fields import optional_string, string

_HEADER: Final = struct.Struct(">II")
_LEGACY_IMAGE_TYPES: Final = {1: "image/jpeg", 2: "image/png"}


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
        node_id = optional_string(meta.get("node_id"))
        prompt_id = optional_string(meta.get("prompt_id"))
        return cls(prompt_id, node_id, string(meta["image_type"]), bytes(view[end:]))

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
