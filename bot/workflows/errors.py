"""Typed failures of loading, describing and filling a workflow; each message names the file."""

from __future__ import annotations

from bot.errors import BotError


class WorkflowError(BotError):
    """Base of every workflow failure."""


class WorkflowNotFound(WorkflowError):
    """A workflow file or directory does not exist."""


class WorkflowFormatError(WorkflowError):
    """A workflow file is not valid API-format JSON."""


class SidecarError(WorkflowError):
    """A workflow's TOML sidecar is invalid or names something the graph lacks."""


class WorkflowInputError(WorkflowError):
    """A value given for a workflow has no place in it or is out of range."""


class UnknownWorkflow(WorkflowError):
    """No workflow of that name is in the library."""
