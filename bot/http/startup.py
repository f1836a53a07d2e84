"""What `comfycord serve` checks before it listens: the served workflow, and servers that run it."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

from bot.comfy.client import ComfyClient
from bot.comfy.errors import ComfyError, ComfyUnavailable
from bot.config import Settings
from bot.errors import EXIT_OK, EXIT_UNREACHABLE, EXIT_USAGE
from bot.workflows.library import (
    UiConverter,
    Workflow,
    WorkflowLibrary,
    WorkflowNotFound,
    load_workflow,
    names_a_file,
    validate,
)

log = logging.getLogger(__name__)


def load_served(
    settings: Settings, converter: UiConverter | None = None
) -> tuple[WorkflowLibrary, Workflow]:
    """Return the library with the served workflow in it (a file outside it is added)."""
    name = settings.http_workflow
    is_path = names_a_file(name)
    try:
        library = WorkflowLibrary.load(settings.workflows_dir, converter)
    except WorkflowNotFound:
        if not is_path:
            raise
        library = WorkflowLibrary({}, converter=converter)
    if name in library:
        return library, library.get(name)
    if not is_path:
        library.get(name)  # raises UnknownWorkflow (or the file's own error), listing names
    workflow = load_workflow(Path(name), converter)
    workflows = {w.name: w for w in library if w.name != workflow.name}
    return WorkflowLibrary({**workflows, workflow.name: workflow}, library.errors), workflow


async def check_servers(clients: Sequence[ComfyClient], workflow: Workflow) -> int:
    """Check every server answers and can run the workflow; log what is wrong; exit code."""
    for client in clients:
        try:
            await client.system_stats()
            problems = validate(workflow.with_inputs(), await client.object_info())
        except ComfyUnavailable as exc:
            log.error(
                "%s Start ComfyUI, or point COMFYUI_URL (COMFYUI_URLS) at it.",
                str(exc) or f"ComfyUI at {client.shown_url} is not reachable.",
            )
            return EXIT_UNREACHABLE
        except ComfyError as exc:
            log.error("ComfyUI at %s answered unexpectedly: %s", client.shown_url, exc)
            return EXIT_UNREACHABLE
        if problems:
            log.error(
                "ComfyUI at %s cannot run %s:\n%s",
                client.shown_url,
                workflow.path.name,
                "\n".join(f"  - {problem}" for problem in problems),
            )
            return EXIT_USAGE
    return EXIT_OK
