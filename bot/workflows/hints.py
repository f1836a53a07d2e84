"""What a workflow needs and what the tracer missed: outputs, models, custom nodes, warnings."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from bot.workflows.detect import find_samplers
from bot.workflows.graph import class_of, inputs_of, is_link, node_id_key, title_of, upstream
from bot.workflows.model import Workflow

_MODEL_SUFFIXES = (".safetensors", ".ckpt", ".pt", ".pth", ".bin", ".gguf", ".sft", ".onnx")
_MODEL_INPUT = re.compile(r"(ckpt|unet|vae|clip|lora|control_net|model|style_model|upscale_model)")
_OUTPUT_KINDS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"^(SaveImageWebsocket)$"), "websocket"),
    (re.compile(r"^(SaveAnimatedWEBP|SaveAnimatedPNG)$"), "animation"),
    (re.compile(r"^(SaveWEBM|SaveVideo|VHS_VideoCombine)$|Video"), "video"),
    (re.compile(r"Audio"), "audio"),
    (re.compile(r"^(SaveImage|PreviewImage|MaskPreview)$|Image"), "image"),
)
_OUTPUT_CLASS = re.compile(r"^(Save|Preview)|VideoCombine|Output$")
_SEED_INPUT = re.compile(r"seed", re.IGNORECASE)
_TEXT_INPUT = re.compile(r"(text|prompt|string|value)", re.IGNORECASE)
# Nodes upstream of a sampler whose text is never the prompt.
_NOT_TEXT = re.compile(r"Loader|Sampler|Scheduler|Select|Latent|Save|Load")


@dataclass(frozen=True, slots=True)
class Hint:
    """Something the tracer could not find, with the sidecar line that would fix it."""

    message: str
    sidecar_line: str | None = None

    def __str__(self) -> str:
        fix = (
            f"; add to the sidecar under [patch]: {self.sidecar_line}" if self.sidecar_line else ""
        )
        return f"{self.message}{fix}"


def output_nodes(
    graph: Mapping[str, Any], object_info: Mapping[str, Any] | None
) -> list[dict[str, str]]:
    """Return the nodes that produce files or previews, with the kind of what they produce."""
    found = []
    for node_id in sorted(graph, key=node_id_key):
        class_type = class_of(graph, node_id)
        spec = (object_info or {}).get(class_type)
        is_output = (
            spec.get("output_node")
            if isinstance(spec, Mapping)
            else bool(_OUTPUT_CLASS.search(class_type))
        )
        if is_output:
            kind = next((k for pattern, k in _OUTPUT_KINDS if pattern.search(class_type)), "other")
            found.append(
                {
                    "node_id": node_id,
                    "class_type": class_type,
                    "title": title_of(graph, node_id) or class_type,
                    "kind": kind,
                }
            )
    return found


def models(graph: Mapping[str, Any]) -> list[dict[str, str]]:
    """Return the model files the graph loads: file-like values of loader inputs."""
    found = []
    for node_id in sorted(graph, key=node_id_key):
        for name, value in inputs_of(graph, node_id).items():
            if not isinstance(value, str):
                continue
            is_file = value.lower().endswith(_MODEL_SUFFIXES)
            if is_file or (
                "Loader" in class_of(graph, node_id) and _MODEL_INPUT.search(name) and value
            ):
                found.append(
                    {
                        "node_id": node_id,
                        "class_type": class_of(graph, node_id),
                        "input": name,
                        "file": value,
                    }
                )
    return found


def custom_nodes(graph: Mapping[str, Any], object_info: Mapping[str, Any] | None) -> list[str]:
    """Return the node classes from custom packs: unknown to the server, or served by one."""
    if object_info is None:
        return []
    classes = sorted({class_of(graph, node_id) for node_id in graph})
    return [
        name
        for name in classes
        if not isinstance(object_info.get(name), Mapping)
        or str(object_info[name].get("python_module", "")).startswith("custom_nodes")
    ]


def tracing_warnings(workflow: Workflow) -> list[Hint]:
    """Say which of prompt and seed the tracer missed in a graph that samples or holds text."""
    graph = workflow.graph
    samplers = find_samplers(graph)
    hints = []
    if not workflow.has("prompt"):
        feeding = [
            node_id
            for sampler in samplers
            for node_id in upstream(graph, sampler)
            if not _NOT_TEXT.search(class_of(graph, node_id))
        ]
        candidate = _candidate(graph, feeding, None, str) or _candidate(
            graph, graph, _TEXT_INPUT, str
        )
        if samplers or candidate:
            hints.append(Hint("no prompt found", f'prompt = "{candidate}"' if candidate else None))
    if not workflow.has("seed") and samplers:
        linked = [
            value[0]
            for sampler in samplers
            for name, value in inputs_of(graph, sampler).items()
            if _SEED_INPUT.search(name) and is_link(value)
        ]
        candidate = _candidate(graph, linked, None, int) or _candidate(
            graph, graph, _SEED_INPUT, int
        )
        hints.append(Hint("seed not found", f'seed = "{candidate}"' if candidate else None))
    return hints


def _candidate(
    graph: Mapping[str, Any], nodes: Iterable[str], pattern: re.Pattern[str] | None, kind: type
) -> str | None:
    """Return `NODE.INPUT` of the first literal of type `kind` (named to fit `pattern`)."""
    for node_id in sorted(nodes, key=node_id_key):
        for name, value in inputs_of(graph, node_id).items():
            if pattern is not None and not pattern.search(name):
                continue
            if isinstance(value, kind) and not isinstance(value, bool):
                if isinstance(value, str) and value.lower().endswith(_MODEL_SUFFIXES):
                    continue
                return f"{node_id}.{name}"
    return None
