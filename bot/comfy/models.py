"""Typed views of ComfyUI's HTTP answers: submissions, uploads, the queue and history entries."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Self

from bot.comfy.errors import NodeError, ProtocolError
from bot.comfy.events import OutputFile


@dataclass(frozen=True, slots=True)
class Submitted:
    """A prompt ComfyUI accepted into its queue."""

    prompt_id: str
    number: float


@dataclass(frozen=True, slots=True)
class UploadedImage:
    """A file stored in ComfyUI's input folder, as /upload/image named it."""

    name: str
    subfolder: str
    type: str

    @property
    def reference(self) -> str:
        """Return the value a LoadImage input takes for this file."""
        return f"{self.subfolder}/{self.name}" if self.subfolder else self.name


@dataclass(frozen=True, slots=True)
class QueueItem:
    """One prompt in ComfyUI's queue."""

    number: float
    prompt_id: str
    client_id: str | None

    @classmethod
    def from_data(cls, item: list[Any]) -> Self:
        """Build from `[number, prompt_id, prompt, extra_data, outputs]`."""
        extra = item[3] if len(item) > 3 and isinstance(item[3], dict) else {}
        return cls(number=item[0], prompt_id=str(item[1]), client_id=extra.get("client_id"))


@dataclass(frozen=True, slots=True)
class QueueSnapshot:
    """ComfyUI's queue at one moment; pending items sorted in the order they will run."""

    running: tuple[QueueItem, ...]
    pending: tuple[QueueItem, ...]

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> Self:
        """Build from a GET /queue answer (whose pending list is in heap order, not sorted)."""
        try:
            running = tuple(QueueItem.from_data(i) for i in data["queue_running"])
            pending = tuple(QueueItem.from_data(i) for i in data["queue_pending"])
        except (KeyError, IndexError, TypeError) as exc:
            raise ProtocolError(f"unexpected /queue answer: {exc!r}") from exc
        return cls(running, tuple(sorted(pending, key=lambda item: item.number)))

    def is_running(self, prompt_id: str) -> bool:
        """Tell whether the prompt is executing now."""
        return any(item.prompt_id == prompt_id for item in self.running)

    def is_pending(self, prompt_id: str) -> bool:
        """Tell whether the prompt waits in the queue."""
        return any(item.prompt_id == prompt_id for item in self.pending)

    def position(self, prompt_id: str) -> int | None:
        """Return how many prompts run before this one (0 = running now), or None if absent."""
        if self.is_running(prompt_id):
            return 0
        for index, item in enumerate(self.pending):
            if item.prompt_id == prompt_id:
                return len(self.running) + index
        return None


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    """A finished prompt as /history/{id} reports it."""

    prompt_id: str
    status: str
    completed: bool
    files: tuple[OutputFile, ...]
    messages: tuple[tuple[str, Mapping[str, Any]], ...]

    @classmethod
    def from_data(cls, prompt_id: str, data: Mapping[str, Any]) -> Self:
        """Build from one value of a /history answer."""
        status = data.get("status") or {}
        outputs = data.get("outputs") or {}
        files = tuple(
            OutputFile.from_data(item)
            for node_id in sorted(outputs, key=_node_order)
            for value in outputs[node_id].values()
            if isinstance(value, list)
            for item in value
            if isinstance(item, dict) and "filename" in item
        )
        messages = tuple(
            (str(message[0]), message[1])
            for message in status.get("messages", [])
            if isinstance(message, list) and len(message) == 2 and isinstance(message[1], dict)
        )
        return cls(
            prompt_id=prompt_id,
            status=str(status.get("status_str", "")),
            completed=bool(status.get("completed", False)),
            files=files,
            messages=messages,
        )

    def message(self, kind: str) -> Mapping[str, Any] | None:
        """Return the payload of the status message of that kind, if the run recorded one."""
        for name, payload in self.messages:
            if name == kind:
                return payload
        return None


def _node_order(node_id: str) -> tuple[int, str]:
    return (int(node_id), "") if node_id.isdigit() else (1 << 62, node_id)


def node_errors_from(data: Mapping[str, Any]) -> tuple[NodeError, ...]:
    """Turn a 400 answer's `error` and `node_errors` into one NodeError per bad input."""
    errors: list[NodeError] = []
    for node_id, entry in (data.get("node_errors") or {}).items():
        for error in entry.get("errors", []):
            extra = error.get("extra_info") or {}
            errors.append(
                NodeError(
                    node_id=str(node_id),
                    class_type=entry.get("class_type"),
                    error_type=str(error.get("type", "")),
                    message=str(error.get("message", "")),
                    details=str(error.get("details", "")),
                    input_name=extra.get("input_name"),
                )
            )
    if not errors:
        # invalid_prompt and prompt_no_outputs carry no node_errors, only a top-level error.
        top = data.get("error") or {}
        details = str(top.get("details", ""))
        node_id = details.removeprefix("Node ID '#").removesuffix("'") if "#" in details else None
        errors.append(
            NodeError(
                node_id=node_id,
                class_type=None,
                error_type=str(top.get("type", "")),
                message=str(top.get("message", "")),
                details=details,
                input_name=None,
            )
        )
    return tuple(errors)
