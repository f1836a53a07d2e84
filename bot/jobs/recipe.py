"""How an image was made, read back from the API graph that ran (not from what was asked).

Reading the graph itself means the recipe is true even for values a sidecar default, a prompt
flag or a button filled in, and the attached JSON reproduces the image in ComfyUI.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from bot.comfy.urls import shown_url
from bot.workflows.graph import class_of, inputs_of, node_id_key
from bot.workflows.library import Workflow
from bot.workflows.loras import LORA_NODES, model_slot

RECIPE_FILENAME = "workflow_api.json"


@dataclass(frozen=True, slots=True)
class Recipe:
    """The settings of one finished job, as the graph that ran holds them."""

    workflow: str
    graph: Mapping[str, Any] = field(repr=False)
    model: str | None = None
    loras: tuple[tuple[str, float], ...] = ()
    seed: int | None = None
    steps: int | None = None
    cfg: float | None = None
    denoise: float | None = None
    size: tuple[int, int] | None = None
    sampler: str | None = None
    prompt: str = ""
    negative: str = ""
    elapsed: float | None = None
    server: str | None = None

    @classmethod
    def from_graph(
        cls,
        workflow: Workflow,
        graph: Mapping[str, Any],
        *,
        elapsed: float | None = None,
        server: str | None = None,
        asked: tuple[str, str] = ("", ""),
    ) -> Recipe:
        """Read the recipe of `graph`, which ran with `workflow`'s patch points.

        `asked` (prompt, negative) stands in where the workflow has no text of its own.
        """

        def value(key: str) -> Any:
            points = workflow.points.get(key, ())
            return inputs_of(graph, points[0].node_id).get(points[0].input_name) if points else None

        width, height = value("width"), value("height")
        slot = model_slot(graph)
        return cls(
            workflow=workflow.display_name,
            graph=graph,
            model=inputs_of(graph, slot.point.node_id).get(slot.point.input_name) if slot else None,
            loras=_loras(graph),
            seed=_number(value("seed"), int),
            steps=_number(value("steps"), int),
            cfg=_number(value("cfg"), float),
            denoise=_number(value("denoise"), float),
            size=(width, height) if isinstance(width, int) and isinstance(height, int) else None,
            sampler=_sampler(graph),
            prompt=_text(value("prompt")) if workflow.has("prompt") else asked[0],
            negative=_text(value("negative")) if workflow.has("negative") else asked[1],
            elapsed=elapsed,
            server=shown_server(server),
        )

    def graph_json(self) -> bytes:
        """Return the graph that ran as `workflow_api.json` bytes (ComfyUI loads it as is)."""
        return json.dumps(self.graph, indent=2, ensure_ascii=False).encode()


def shown_server(url: str | None) -> str | None:
    """Return a server URL fit to show members: never its user or password."""
    return shown_url(url) if url else None


def _number(value: Any, kind: type[int] | type[float]) -> Any:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return kind(value)


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _sampler(graph: Mapping[str, Any]) -> str | None:
    """Return `sampler_name` (with the scheduler) of the first node that names one."""
    for node_id in sorted(graph, key=node_id_key):
        inputs = inputs_of(graph, node_id)
        name = inputs.get("sampler_name")
        if isinstance(name, str):
            scheduler = inputs.get("scheduler")
            return f"{name} · {scheduler}" if isinstance(scheduler, str) else name
    return None


def _loras(graph: Mapping[str, Any]) -> tuple[tuple[str, float], ...]:
    found = []
    for node_id in sorted(graph, key=node_id_key):
        inputs = inputs_of(graph, node_id)
        name, strength = inputs.get("lora_name"), inputs.get("strength_model")
        if class_of(graph, node_id) in LORA_NODES and isinstance(name, str):
            found.append((name, float(strength) if isinstance(strength, int | float) else 1.0))
    return tuple(found)
