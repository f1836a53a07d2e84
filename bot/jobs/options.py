"""The choices of an iterating request (count, aspect, model, LoRA) applied to a workflow's graph.

Kept apart from the plain patch values: these change the graph's shape (a LoRA node, copies of
the graph) or need the workflow to be known (its native size, its allow patterns).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from bot.jobs.aspect import native_resolution, size_for
from bot.workflows.batch import repeat_graph
from bot.workflows.choices import is_allowed
from bot.workflows.errors import WorkflowInputError
from bot.workflows.graph import inputs_of
from bot.workflows.library import Workflow
from bot.workflows.loras import with_lora, with_model

DEFAULT_BASE = 1024


def base_resolution(workflow: Workflow) -> int:
    """Return the side of the square a workflow draws natively: the sidecar's, else its size's."""
    if workflow.base_resolution is not None:
        return workflow.base_resolution
    width, height = (workflow.points.get(key, ()) for key in ("width", "height"))
    if width and height:
        found = native_resolution(
            workflow.defaults.get("width", _value(workflow.graph, width[0])),
            workflow.defaults.get("height", _value(workflow.graph, height[0])),
        )
        if found is not None:
            return found
    return DEFAULT_BASE


def _value(graph: Mapping[str, Any], point: Any) -> Any:
    return inputs_of(graph, point.node_id).get(point.input_name)


def sized_values(workflow: Workflow, values: dict[str, Any], aspect: str | None) -> dict[str, Any]:
    """Return `values` with width and height of `aspect` where they were not given.

    Raises:
        WorkflowInputError: the workflow has no size to set (it takes the input image's).
    """
    if aspect is None:
        return values
    if not (workflow.has("width") and workflow.has("height")):
        raise WorkflowInputError(
            f"The workflow {workflow.display_name} takes its size from its input; "
            "an aspect ratio does not apply."
        )
    width, height = size_for(aspect, base_resolution(workflow))
    return {"width": width, "height": height, **values}


def shaped(
    workflow: Workflow,
    graph: dict[str, Any],
    *,
    count: int,
    seed: int | None,
    model: str | None = None,
    lora: str | None = None,
    lora_strength: float | None = None,
) -> dict[str, Any]:
    """Return `graph` with the model and LoRA chosen and `count` copies where it has no batch.

    Raises:
        WorkflowInputError: a model or LoRA the sidecar's allow patterns do not allow, or a
            workflow without a place for it.
    """
    if model is not None:
        _check_allowed(workflow, "model", model)
        graph = with_model(graph, model)
    if lora is not None:
        _check_allowed(workflow, "lora", lora)
        graph = with_lora(graph, lora, 1.0 if lora_strength is None else lora_strength)
    if count > 1 and not workflow.has("batch_size"):
        graph = repeat_graph(graph, count, workflow.points.get("seed", ()), seed=seed)
    return graph


def _check_allowed(workflow: Workflow, kind: str, name: str) -> None:
    patterns: Sequence[str] = workflow.allow.get(kind, ())
    if not is_allowed(name, patterns):
        raise WorkflowInputError(
            f"The {kind} {name} may not be picked with {workflow.display_name};"
            f" allowed: {', '.join(patterns)}."
        )
