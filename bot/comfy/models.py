"""Typed views of ComfyUI's HTTP answers: submissions, uploads, the queue, history and jobs."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Self

from bot.comfy.errors import ProtocolError
from bot.comfy.events import OutputFile
from bot.comfy.shapes import (
    expect_object,
    expect_str,
    list_at,
    object_at,
    optional_number,
    optional_str,
)

JOB_STATUSES = frozenset({"pending", "in_progress", "completed", "failed", "cancelled"})


@dataclass(frozen=True, slots=True)
class Submitted:
    """A prompt ComfyUI accepted into its queue."""

    prompt_id: str
    number: float

    @classmethod
    def from_data(cls, data: Any) -> Self:
        """Build from a 200 answer of POST /prompt.

        Raises:
            ProtocolError: the answer names no prompt_id.
        """
        answer = expect_object(data, "the answer of POST /prompt")
        prompt_id = expect_str(answer, "prompt_id", "the answer of POST /prompt")
        return cls(prompt_id=prompt_id, number=optional_number(answer, "number") or 0)


@dataclass(frozen=True, slots=True)
class UploadedImage:
    """A file stored in ComfyUI's input folder, as /upload/image named it."""

    name: str
    subfolder: str
    type: str

    @classmethod
    def from_data(cls, data: Any) -> Self:
        """Build from an /upload/image answer (`name`, not `filename`).

        Raises:
            ProtocolError: the answer names no file.
        """
        answer = expect_object(data, "the answer of /upload/image")
        return cls(
            name=expect_str(answer, "name", "the answer of /upload/image"),
            subfolder=optional_str(answer, "subfolder") or "",
            type=optional_str(answer, "type") or "input",
        )

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
        client_id = extra.get("client_id")
        number = item[0] if isinstance(item[0], int | float) else 0
        return cls(number, str(item[1]), client_id if isinstance(client_id, str) else None)


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


def output_files(outputs: Any) -> tuple[OutputFile, ...]:
    """Return the files of a run's `outputs` ({node_id: {kind: [file, ...]}}), in node order."""
    if not isinstance(outputs, dict):
        return ()
    return tuple(
        OutputFile.from_data(item)
        for node_id in sorted(outputs, key=_node_order)
        if isinstance(outputs[node_id], dict)
        for value in outputs[node_id].values()
        if isinstance(value, list)
        for item in value
        if isinstance(item, dict) and isinstance(item.get("filename"), str)
    )


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    """A finished prompt as /history/{id} reports it."""

    prompt_id: str
    status: str
    completed: bool
    files: tuple[OutputFile, ...]
    messages: tuple[tuple[str, Mapping[str, Any]], ...]

    @classmethod
    def from_data(cls, prompt_id: str, data: Any) -> Self:
        """Build from one value of a /history answer.

        Raises:
            ProtocolError: the entry is not an object.
        """
        entry = expect_object(data, f"the /history entry of {prompt_id}")
        status = object_at(entry, "status")
        messages = list_at(status, "messages")
        return cls(
            prompt_id=prompt_id,
            status=optional_str(status, "status_str") or "",
            completed=status.get("completed") is True,
            files=output_files(entry.get("outputs")),
            messages=tuple(
                (str(message[0]), message[1])
                for message in messages
                if isinstance(message, list) and len(message) == 2 and isinstance(message[1], dict)
            ),
        )

    def message(self, kind: str) -> Mapping[str, Any] | None:
        """Return the payload of the status message of that kind, if the run recorded one."""
        for name, payload in self.messages:
            if name == kind:
                return payload
        return None


@dataclass(frozen=True, slots=True)
class JobRecord:
    """One prompt as GET /api/jobs/{id} reports it (ComfyUI 0.38 on)."""

    prompt_id: str
    status: str
    files: tuple[OutputFile, ...] = ()
    execution_error: Mapping[str, Any] | None = None

    @classmethod
    def from_data(cls, prompt_id: str, data: Any) -> Self:
        """Build from the decoded JSON.

        Raises:
            ProtocolError: the answer is not a job, or its status is not one ComfyUI uses.
        """
        what = f"the job record of {prompt_id}"
        job = expect_object(data, what)
        status = expect_str(job, "status", what)
        if status not in JOB_STATUSES:
            raise ProtocolError(f"{what} has an unknown status {status!r}")
        error = job.get("execution_error")
        return cls(
            prompt_id=prompt_id,
            status=status,
            files=output_files(job.get("outputs")),
            execution_error=error if isinstance(error, dict) else None,
        )

    @property
    def is_finished(self) -> bool:
        """Tell whether the prompt has ended (completed, failed or cancelled)."""
        return self.status not in ("pending", "in_progress")


def _node_order(node_id: str) -> tuple[int, str]:
    return (int(node_id), "") if node_id.isdigit() else (1 << 62, node_id)
