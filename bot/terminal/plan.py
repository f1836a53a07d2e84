"""What `comfycord run` will do: arguments checked into a Plan, its summary, and saving outputs.

Everything here runs before anything is sent to ComfyUI and does blocking file I/O: call
`prepare` through `asyncio.to_thread`.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bot.comfy.urls import shown_url
from bot.config import Settings, http_url
from bot.errors import BotError, InvalidImage
from bot.images import ImageFile, check_input_image
from bot.jobs.model import GenerationRequest
from bot.terminal.save import check_folder
from bot.workflows.library import (
    KEYS,
    PatchPoint,
    UiConverter,
    Workflow,
    WorkflowInputError,
    WorkflowLibrary,
    WorkflowNotFound,
)
from bot.workflows.server import converter_if_needed

REQUESTER = "terminal"
_SHOWN_TEXT = 60


class UsageError(BotError):
    """A command-line argument is malformed."""


@dataclass(frozen=True, slots=True)
class Plan:
    """A checked run: the workflow, the request for the queue, and where things go."""

    workflow: Workflow
    request: GenerationRequest
    graph: dict[str, Any] = field(repr=False)  # patched, with placeholder image names
    image_paths: tuple[Path, ...]
    server: str
    out: Path


def prepare(
    args: argparse.Namespace, settings: Settings, converter: UiConverter | None = None
) -> Plan:
    """Check every argument against the workflow, without contacting ComfyUI.

    UI-format files are converted with `converter`, fetched beforehand when one is needed.

    Raises:
        BotError: an unknown workflow (listing the available ones), a bad --set, an image
            that is missing or not an image, a value out of range or with no place, an output
            folder that can never be written.
    """
    server = _server(args.server or settings.comfy_url)
    workflow = _library(settings.workflows_dir, converter).resolve(args.workflow)
    overrides = dict(parse_override(text, workflow.graph) for text in args.overrides)
    paths = tuple(Path(p) for p in args.image)
    _check_image_count(workflow, len(paths), overrides)
    images = tuple(_read_image(p, settings.max_input_image_bytes) for p in paths)
    request = GenerationRequest(
        requester=REQUESTER,
        workflow=workflow.name,
        prompt=_exported_prompt(workflow) if args.prompt is None else args.prompt,
        negative=args.negative,
        seed=args.seed,
        steps=args.steps,
        width=args.width,
        height=args.height,
        images=images,
        overrides=overrides,
    ).seeded(workflow)
    graph = request.graph_for(workflow)
    out = Path(args.out) if args.out else settings.output_dir
    check_folder(out)
    return Plan(workflow, request, graph, paths, server, out)


async def converter_for(args: argparse.Namespace, settings: Settings) -> UiConverter | None:
    """Return a converter with the run's server node definitions if a UI-format file is used."""
    return await converter_if_needed(
        [settings.workflows_dir, Path(args.workflow)],
        [args.server or settings.comfy_url],
        request_timeout=settings.request_timeout,
    )


def parse_override(text: str, graph: Mapping[str, Any]) -> tuple[tuple[str, str], Any]:
    """Parse `NODE.INPUT=VALUE`; the value is JSON (7.5, true, [1,2]) unless the input is text.

    Raises:
        UsageError: no `=`, or no `NODE.INPUT` before it.
    """
    target, equals, raw = text.partition("=")
    node_id, dot, input_name = target.strip().rpartition(".")
    if not equals or not dot or not node_id or not input_name:
        raise UsageError(
            f"--set {text!r} is not NODE.INPUT=VALUE; for example --set 3.cfg=7.5"
            " (node ids are the keys of the workflow's JSON)."
        )
    node = graph.get(node_id)
    current = node.get("inputs", {}).get(input_name) if isinstance(node, Mapping) else None
    if isinstance(current, str):
        return (node_id, input_name), raw
    try:
        value = json.loads(raw)
    except ValueError:
        value = raw
    return (node_id, input_name), value


def _exported_prompt(workflow: Workflow) -> str:
    """Return the prompt text as exported, so that running without --prompt keeps it."""
    for point in workflow.points.get("prompt", ()):
        text = workflow.graph[point.node_id]["inputs"].get(point.input_name)
        if isinstance(text, str):
            return text
    return ""


def _server(url: str) -> str:
    try:
        return http_url(url)
    except ValueError:
        raise UsageError(f"--server {url!r} is not an http:// or https:// URL.") from None


def _library(directory: Path, converter: UiConverter | None) -> WorkflowLibrary:
    try:
        return WorkflowLibrary.load(directory, converter)
    except WorkflowNotFound:
        return WorkflowLibrary({}, directory=directory, converter=converter)


def _check_image_count(workflow: Workflow, given: int, overrides: Mapping[Any, Any]) -> None:
    points = workflow.points.get("image", ())
    if given > len(points) == 0:
        raise WorkflowInputError(
            f"Workflow {workflow.name!r} has no LoadImage node, so it takes no --image."
        )
    if given > len(points):
        raise WorkflowInputError(
            f"Workflow {workflow.name!r} takes {_images(len(points))}; {given} --image given."
        )
    unfilled = [p for p in points[given:] if (p.node_id, p.input_name) not in overrides]
    if unfilled:
        raise WorkflowInputError(
            f"Workflow {workflow.name!r} takes {_images(len(points))}: pass --image PATH"
            f" for each (or --set {unfilled[0]}=NAME for a file already in ComfyUI's input"
            " folder)."
        )


def _images(count: int) -> str:
    return f"{count} input image{'' if count == 1 else 's'}"


def _read_image(path: Path, max_bytes: int) -> ImageFile:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise InvalidImage(f"Input image {path} does not exist.") from None
    except IsADirectoryError:
        raise InvalidImage(f"Input image {path} is a directory, not a file.") from None
    except OSError as exc:
        raise InvalidImage(f"Input image {path} cannot be read ({exc.strerror}).") from None
    return check_input_image(data, path.name, max_bytes=max_bytes)


def summary_lines(plan: Plan, server: str) -> list[str]:
    """Return what the run will do, for the user to confirm."""
    workflow, request = plan.workflow, plan.request
    nodes = workflow.summary().nodes
    classes = ", ".join(f"{c} x{n}" if n > 1 else c for c, n in sorted(nodes.items()))
    title = f" ({workflow.display_name})" if workflow.display_name != workflow.name else ""
    lines = [f"Workflow  {workflow.name}{title}"]
    lines += [f"          {workflow.description}"] if workflow.description else []
    lines += [f"File      {workflow.path}", f"Nodes     {sum(nodes.values())}: {classes}"]
    patches = [
        f"{key} = {_shown(value)} -> {_where(workflow, key)}"
        for key, value in sorted(
            {**workflow.defaults, **request.values()}.items(), key=lambda kv: KEYS.index(kv[0])
        )
        if key != "seed" and (value or key != "prompt")
    ]
    patches += [f"{n}.{i} = {_shown(v)} (--set)" for (n, i), v in request.overrides.items()]
    points = workflow.points.get("image", ())
    patches += [
        f"image = {path} ({len(image.data) / 1024:.1f} KiB) -> {_point(workflow, point)}"
        for path, image, point in zip(plan.image_paths, request.images, points, strict=False)
    ]
    lines += [f"{'Patches' if i == 0 else '':<10}{text}" for i, text in enumerate(patches)]
    if request.seed is not None:
        lines.append(f"Seed      {request.seed} -> {_where(workflow, 'seed')}")
    return [*lines, f"Server    {shown_url(server)}", f"Outputs   {plan.out}"]


def _shown(value: object) -> str:
    if not isinstance(value, str):
        return json.dumps(value)
    return repr(value[:_SHOWN_TEXT] + "...") if len(value) > _SHOWN_TEXT else repr(value)


def _where(workflow: Workflow, key: str) -> str:
    points = workflow.points.get(key, ())
    if not points:
        return "not used (this workflow has no place for it)"
    return ", ".join(_point(workflow, point) for point in points)


def _point(workflow: Workflow, point: PatchPoint) -> str:
    node = workflow.graph.get(point.node_id, {})
    return f"node {point} ({node.get('class_type', '?')})"
