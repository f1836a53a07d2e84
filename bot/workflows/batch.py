"""Several images from a workflow without a batch size: copies of the graph in one prompt.

Each copy gets its own node ids and the next seed, and its saved files a `_cN` mark, so one
prompt (one job, one Cancel) makes every image and the files can be put back in copy order.
ComfyUI caches nodes by their inputs, so the copies share one model load.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, TypeVar

from bot.workflows.graph import PatchPoint, is_link

T = TypeVar("T")
SAVE_PREFIX = "filename_prefix"
_COPY_MARK = re.compile(r"_c(\d+)_\d+_\.\w+$")
_COPY_ID = re.compile(r"^c(\d+):")


def copy_id(node_id: str, index: int) -> str:
    """Return the id of `node_id` in copy `index` (copy 0 keeps the workflow's ids)."""
    return node_id if index == 0 else f"c{index}:{node_id}"


def repeat_graph(
    graph: Mapping[str, Any],
    count: int,
    seed_points: Sequence[PatchPoint] = (),
    *,
    seed: int | None = None,
) -> dict[str, Any]:
    """Return one graph holding `count` copies of `graph`, copy i seeded with `seed + i`.

    Every copy's saving nodes get a `_c<i+1>` prefix mark so `in_copy_order` can sort files.
    """
    if count < 1:
        raise ValueError(f"count must be at least 1, not {count}")
    merged: dict[str, Any] = {}
    for index in range(count):
        for node_id, node in graph.items():
            node_copy = copy.deepcopy(node)
            inputs = node_copy.get("inputs", {})
            for name, value in inputs.items():
                if is_link(value):
                    inputs[name] = [copy_id(value[0], index), value[1]]
            if count > 1 and isinstance(inputs.get(SAVE_PREFIX), str):
                inputs[SAVE_PREFIX] = f"{inputs[SAVE_PREFIX]}_c{index + 1}"
            merged[copy_id(node_id, index)] = node_copy
        if seed is not None:
            for point in seed_points:
                merged[copy_id(point.node_id, index)]["inputs"][point.input_name] = seed + index
    return merged


def in_copy_order(items: Iterable[T], filename: Callable[[T], str]) -> list[T]:
    """Return items (output files) sorted by the copy that saved them; unmarked ones first.

    `filename` gives an item's file name. The sort is stable: within one copy, ComfyUI's
    order (the batch order) is kept.
    """

    def copy_of(item: T) -> int:
        found = _COPY_MARK.search(filename(item))
        return int(found[1]) if found else 0

    return sorted(items, key=copy_of)


def copy_graph(graph: Mapping[str, Any], index: int) -> dict[str, Any]:
    """Return the copy that made image `index` of a repeated graph, with the workflow's ids.

    A graph that was not repeated (a single image, or a batch) is returned whole.
    """
    if not any(_COPY_ID.match(node_id) for node_id in graph):
        return dict(graph)
    prefix = "" if index == 0 else f"c{index}:"
    picked: dict[str, Any] = {}
    for node_id, node in graph.items():
        found = _COPY_ID.match(node_id)
        if (found is None and index == 0) or (found is not None and node_id.startswith(prefix)):
            node_copy = copy.deepcopy(node)
            for name, value in node_copy.get("inputs", {}).items():
                if is_link(value):
                    node_copy["inputs"][name] = [value[0].removeprefix(prefix), value[1]]
            picked[node_id.removeprefix(prefix)] = node_copy
    return picked
