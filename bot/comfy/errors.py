"""Typed errors of the ComfyUI client; every exception in `bot.comfy` derives from ComfyError."""

from __future__ import annotations

from dataclasses import dataclass


class ComfyError(Exception):
    """Base of every error raised by `bot.comfy`."""


class ComfyUnavailable(ComfyError):
    """ComfyUI could not be reached, or did not answer in time; `reason` says why, briefly."""

    def __init__(self, message: str, *, reason: str | None = None) -> None:
        super().__init__(message)
        self.reason = reason or message


class ComfyHTTPError(ComfyError):
    """ComfyUI answered with an unexpected HTTP status."""

    def __init__(self, method: str, path: str, status: int, body: str) -> None:
        super().__init__(f"{method} {path} -> HTTP {status}: {body[:200]}")
        self.method = method
        self.path = path
        self.status = status
        self.body = body


class ProtocolError(ComfyError):
    """ComfyUI answered with something that does not match its protocol."""


@dataclass(frozen=True, slots=True)
class NodeError:
    """One node-level validation error from a rejected prompt."""

    node_id: str | None
    class_type: str | None
    error_type: str
    message: str
    details: str
    input_name: str | None


class PromptRejected(ComfyError):
    """POST /prompt answered 400: the prompt failed validation and nothing was queued."""

    def __init__(self, error_type: str, message: str, node_errors: tuple[NodeError, ...]) -> None:
        summary = "; ".join(
            f"node {e.node_id} ({e.class_type}) {e.input_name or '-'}: {e.message} {e.details}"
            for e in node_errors
        )
        super().__init__(f"{message}" + (f" [{summary}]" if summary else ""))
        self.error_type = error_type
        self.message = message
        self.node_errors = node_errors
