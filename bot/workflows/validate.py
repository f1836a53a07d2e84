"""Check an API-format graph against a server's /object_info before submitting it."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from bot.workflows.graph import node_id_key

_MODEL_SUFFIXES = (".safetensors", ".ckpt", ".pt", ".pth", ".bin", ".gguf", ".sft", ".onnx")
_SHOWN_CHOICES = 8
_UPLOADS = ("image_upload", "video_upload", "audio_upload")


@dataclass(frozen=True, slots=True)
class ValidationProblem:
    """One thing in a graph that the server would reject or could not run.

    `kind` is one of: "malformed", "unknown_class", "missing_input", "bad_link",
    "model_missing", "not_in_list", "wrong_type", "out_of_range" ("invalid" if not given).
    """

    node_id: str
    class_type: str
    input_name: str | None
    message: str
    kind: str = "invalid"

    def __str__(self) -> str:
        where = f"node {self.node_id} ({self.class_type})"
        return (
            f"{where} {self.input_name}: {self.message}"
            if self.input_name
            else (f"{where}: {self.message}")
        )


def validate(
    workflow_graph: Mapping[str, Any], object_info: Mapping[str, Any]
) -> list[ValidationProblem]:
    """Return every problem of `workflow_graph` on a server that sent `object_info`.

    Pure: reports unknown node classes (custom nodes not installed), model files a loader
    does not list, combo values not in their list, numbers outside min/max, wrong value
    types, missing required inputs and links to nodes or outputs that do not exist.
    Upload inputs (LoadImage's `image_upload`, and video and audio ones) are not checked
    against their list, since uploads made just before submitting are not in it yet.
    """
    return [
        problem
        for node_id in sorted(workflow_graph, key=node_id_key)
        for problem in _check_node(workflow_graph, object_info, node_id)
    ]


def _check_node(
    graph: Mapping[str, Any], info: Mapping[str, Any], node_id: str
) -> Iterator[ValidationProblem]:
    node = graph[node_id]
    class_type = node.get("class_type") if isinstance(node, Mapping) else None
    inputs = node.get("inputs") if isinstance(node, Mapping) else None
    if not isinstance(class_type, str) or not isinstance(inputs, Mapping):
        yield ValidationProblem(
            node_id, "", None, "not a node with 'class_type' and 'inputs'", "malformed"
        )
        return
    spec = info.get(class_type)
    if not isinstance(spec, Mapping):
        message = f"node type {class_type} is not installed on this server (a custom node?)"
        yield ValidationProblem(node_id, class_type, None, message, "unknown_class")
        return
    specs = spec.get("input", {})
    required = specs.get("required", {})
    optional = specs.get("optional", {})
    for name in required:
        if name not in inputs:
            message = "required input is missing"
            yield ValidationProblem(node_id, class_type, name, message, "missing_input")
    for name, value in inputs.items():
        if isinstance(value, list):
            found = _check_link(graph, info, value)
        else:
            input_spec = required.get(name) or optional.get(name)
            found = _check_value(class_type, value, input_spec) if input_spec else None
        if found is not None:
            yield ValidationProblem(node_id, class_type, name, found[1], found[0])


def _check_link(
    graph: Mapping[str, Any], info: Mapping[str, Any], link: list[Any]
) -> tuple[str, str] | None:
    if len(link) != 2 or not isinstance(link[1], int) or not isinstance(link[0], str):
        return "bad_link", f"malformed link {link!r}; expected [node_id, output_index]"
    source, index = link
    if source not in graph:
        return "bad_link", f"links to node {source}, which does not exist"
    source_node = graph[source]
    source_class = source_node.get("class_type") if isinstance(source_node, Mapping) else None
    outputs = info.get(source_class, {}).get("output") if isinstance(source_class, str) else None
    if isinstance(outputs, list) and not 0 <= index < len(outputs):
        return "bad_link", (
            f"links to output {index} of node {source} ({source_class}), "
            f"which has {len(outputs)} outputs"
        )
    return None


def _check_value(class_type: str, value: object, input_spec: Any) -> tuple[str, str] | None:
    kind = input_spec[0] if isinstance(input_spec, list) and input_spec else None
    options = input_spec[1] if isinstance(input_spec, list) and len(input_spec) > 1 else {}
    options = options if isinstance(options, Mapping) else {}
    if kind == "COMBO":
        kind = options.get("options")
    if isinstance(kind, list):
        is_upload = any(options.get(key) for key in _UPLOADS)
        return None if is_upload else _check_choice(class_type, value, kind)
    if kind in ("INT", "FLOAT"):
        return _check_number(value, kind, options)
    if kind == "BOOLEAN" and not isinstance(value, bool):
        return "wrong_type", f"expected true or false, got {value!r}"
    if kind == "STRING" and not isinstance(value, str):
        return "wrong_type", f"expected text, got {value!r}"
    return None


def _check_choice(class_type: str, value: object, choices: list[Any]) -> tuple[str, str] | None:
    if value in choices:
        return None
    shown = ", ".join(map(str, choices[:_SHOWN_CHOICES])) + (
        ", ..." if len(choices) > _SHOWN_CHOICES else ""
    )
    is_model = "Loader" in class_type or str(value).lower().endswith(_MODEL_SUFFIXES)
    if is_model:
        there = f"available: {shown}" if choices else "the server lists no files for this input"
        return "model_missing", f"model file {value!r} is not installed on this server ({there})"
    return "not_in_list", f"{value!r} is not one of the choices ({shown})"


def _check_number(value: object, kind: str, options: Mapping[str, Any]) -> tuple[str, str] | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return "wrong_type", f"expected a number, got {value!r}"
    if kind == "INT" and isinstance(value, float) and not value.is_integer():
        return "wrong_type", f"expected a whole number, got {value!r}"
    low, high = options.get("min"), options.get("max")
    if isinstance(low, int | float) and value < low:
        return "out_of_range", f"{value!r} is below the minimum {low!r}"
    if isinstance(high, int | float) and value > high:
        return "out_of_range", f"{value!r} is above the maximum {high!r}"
    return None
