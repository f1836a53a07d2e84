"""One workflow as a value: its graph, patch points and sidecar settings; filling copies of it."""

from __future__ import annotations

import copy
import json
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bot.workflows.errors import WorkflowInputError
from bot.workflows.graph import KEYS, PatchPoint
from bot.workflows.sidecar import check_value

OPTIONAL_KEYS = frozenset({"prompt"})
"""Keys accepted and ignored by a workflow with no place for them: every front end sends a
prompt, and a model-free workflow (demo) simply has no text encoder."""


@dataclass(frozen=True)
class WorkflowSummary:
    """What a workflow contains, for `check`, the terminal runner and admin commands."""

    name: str
    display_name: str
    description: str
    nodes: Counter[str]
    points: Mapping[str, tuple[PatchPoint, ...]]
    defaults: Mapping[str, Any]
    ranges: Mapping[str, tuple[float, float]]
    backends: tuple[str, ...]

    @property
    def image_inputs(self) -> int:
        """Return how many input images the workflow takes."""
        return len(self.points.get("image", ()))


@dataclass(frozen=True)
class Workflow:
    """One loaded workflow; `graph` is never mutated, `with_inputs` returns filled copies."""

    name: str
    path: Path
    display_name: str
    description: str
    graph: Mapping[str, Any] = field(repr=False)
    points: Mapping[str, tuple[PatchPoint, ...]]
    defaults: Mapping[str, Any] = field(default_factory=dict)
    ranges: Mapping[str, tuple[float, float]] = field(default_factory=dict)
    backends: tuple[str, ...] = ()
    source_format: str = "api"
    """"api" for an API-format file, "ui" for a UI-format file converted at load."""
    base_resolution: int | None = None  # the sidecar's; else guessed from the exported size
    allow: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    @property
    def image_inputs(self) -> int:
        """Return how many input images the workflow takes (its LoadImage points)."""
        return len(self.points.get("image", ()))

    def has(self, key: str) -> bool:
        """Return whether the workflow has a place for `key` (one of `KEYS`)."""
        return bool(self.points.get(key))

    def with_inputs(
        self,
        values: Mapping[str, Any] | None = None,
        *,
        images: Sequence[str] = (),
        overrides: Mapping[tuple[str, str], Any] | None = None,
    ) -> dict[str, Any]:
        """Return a new, deep-copied graph filled with the given inputs, as JSON values.

        Sidecar defaults are applied first, then `values` (keys of `KEYS` except "image";
        a None value counts as not given), then `images` (uploaded file names, one per
        LoadImage point in order; fewer images leave the rest as exported), then
        `overrides` ((node_id, input_name) -> value, as from `--set NODE.INPUT=VALUE`).
        A key in `OPTIONAL_KEYS` is ignored when the workflow has no place for it.

        Raises:
            WorkflowInputError: a value the workflow has no place for (an unknown key,
                a key with no patch point, more images than image inputs, an override
                of a node or input that does not exist), of the wrong type, or outside
                the sidecar's ranges.
        """
        graph = {node_id: copy.deepcopy(node) for node_id, node in self.graph.items()}
        given = {key: value for key, value in (values or {}).items() if value is not None}
        for key, value in {**self.defaults, **given}.items():
            points, checked = self._points_for(key), self._checked(key, value)
            for point in points:
                graph[point.node_id]["inputs"][point.input_name] = checked
        self._put_images(graph, images)
        for (node_id, input_name), value in (overrides or {}).items():
            inputs = graph[node_id]["inputs"] if node_id in graph else None
            if inputs is None or input_name not in inputs:
                raise WorkflowInputError(self._no_input_message(node_id, input_name))
            inputs[input_name] = self._json_value(f"{node_id}.{input_name}", value)
        return graph

    def summary(self) -> WorkflowSummary:
        """Return the node classes, patch points and sidecar settings of this workflow."""
        return WorkflowSummary(
            name=self.name,
            display_name=self.display_name,
            description=self.description,
            nodes=Counter(node["class_type"] for node in self.graph.values()),
            points={key: points for key, points in self.points.items() if points},
            defaults=self.defaults,
            ranges=self.ranges,
            backends=self.backends,
        )

    def _points_for(self, key: str) -> tuple[PatchPoint, ...]:
        if key == "image":
            raise WorkflowInputError(
                f"{self.path.name}: pass input images with images=, not values."
            )
        if key not in KEYS:
            raise WorkflowInputError(
                f"{self.path.name}: {key!r} is not a workflow input; known: {', '.join(KEYS)}."
            )
        points = self.points.get(key, ())
        if not points and key not in OPTIONAL_KEYS:
            raise WorkflowInputError(
                f"{self.path.name}: workflow {self.name!r} has no place for {key}."
            )
        return points

    def _checked(self, key: str, value: object) -> Any:
        try:
            return check_value(key, value, self.ranges)
        except ValueError as exc:
            raise WorkflowInputError(f"{self.path.name}: {exc}.") from exc

    def _json_value(self, where: str, value: object) -> Any:
        try:
            return json.loads(json.dumps(value, allow_nan=False))
        except (TypeError, ValueError) as exc:
            raise WorkflowInputError(
                f"{self.path.name}: {where} = {value!r} is not a JSON value."
            ) from exc

    def _put_images(self, graph: dict[str, Any], images: Sequence[str]) -> None:
        points = self.points.get("image", ())
        if isinstance(images, str):
            raise WorkflowInputError(f"{self.path.name}: images must be a list of file names.")
        if len(images) > len(points):
            takes = f"{len(points)} input image{'' if len(points) == 1 else 's'}"
            raise WorkflowInputError(
                f"{self.path.name}: workflow {self.name!r} takes {takes}, got {len(images)}."
            )
        for point, image in zip(points, images, strict=False):
            if not isinstance(image, str) or not image:
                raise WorkflowInputError(f"{self.path.name}: bad image file name {image!r}.")
            graph[point.node_id]["inputs"][point.input_name] = image

    def _no_input_message(self, node_id: str, input_name: str) -> str:
        if node_id not in self.graph:
            return f"{self.path.name}: no node {node_id!r} to set {node_id}.{input_name}."
        node = self.graph[node_id]
        return (
            f"{self.path.name}: node {node_id} ({node['class_type']}) has no input "
            f"{input_name!r}; it has {', '.join(sorted(node['inputs']))}."
        )
