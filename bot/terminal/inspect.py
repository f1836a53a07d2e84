"""`comfycord inspect WORKFLOW`: what ComfyCord reads in a workflow file, and what it needs.

Exit codes: 0 shown, 2 bad input (no such workflow, not a workflow), 3 a UI-format file and no
reachable ComfyUI to convert it with.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from bot.comfy.client import ComfyClient
from bot.comfy.errors import ComfyError
from bot.config import Settings
from bot.errors import EXIT_OK, EXIT_UNREACHABLE, EXIT_USAGE
from bot.workflows.errors import UnknownWorkflow, WorkflowError
from bot.workflows.graph import KEYS, class_of, node_id_key, read_json, title_of
from bot.workflows.hints import custom_nodes, models, output_nodes, tracing_warnings
from bot.workflows.library import Workflow, load_workflow, names_a_file
from bot.workflows.ui import UiConverter, is_ui_format
from bot.workflows.validate import validate

_LACKS = ("unknown_class", "model_missing")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the inspector's arguments."""
    parser.add_argument("workflow", metavar="WORKFLOW", help="a name in WORKFLOWS_DIR or a file")
    parser.add_argument("--server", metavar="URL", help="ComfyUI to check against (COMFYUI_URL)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")


async def main(args: argparse.Namespace, settings: Settings) -> int:
    """Show the workflow's format, patch points, outputs and needs; return the exit code."""
    url = (args.server or settings.comfy_url).rstrip("/")
    try:
        path = _path(args.workflow, settings.workflows_dir)
        data = await asyncio.to_thread(read_json, path)
    except WorkflowError as exc:
        return _fail(exc.user_message, EXIT_USAGE)
    info = await _object_info(url, settings.request_timeout)
    if is_ui_format(data) and info is None:
        return _fail(
            f"{path.name} is a UI-format workflow; converting it needs the node definitions of "
            f"a reachable ComfyUI, and {url} did not answer. Start ComfyUI or pass --server.",
            EXIT_UNREACHABLE,
        )
    converter = UiConverter(info) if info is not None else None
    try:
        workflow = await asyncio.to_thread(load_workflow, path, converter)
    except WorkflowError as exc:
        return _fail(exc.user_message, EXIT_USAGE)
    report = describe(workflow, info, url)
    print(json.dumps(report, indent=2) if args.json else "\n".join(_text(report)))
    return EXIT_OK


def _path(reference: str, directory: Path) -> Path:
    if names_a_file(reference):
        return Path(reference)
    path = directory / f"{reference}.json"
    if not path.exists():
        names = ", ".join(p.stem for p in sorted(directory.glob("*.json"))) or "none"
        raise UnknownWorkflow(f"No workflow {reference!r} in {directory}. Available: {names}.")
    return path


async def _object_info(url: str, request_timeout: float) -> Mapping[str, Any] | None:
    try:
        async with ComfyClient(url, timeout=request_timeout) as client:
            return await client.object_info()
    except (ComfyError, ValueError):
        return None


def describe(workflow: Workflow, info: Mapping[str, Any] | None, url: str) -> dict[str, Any]:
    """Return the inspection of a loaded workflow as one JSON-ready object."""
    graph = workflow.graph
    points = {
        key: sorted(
            ([p.node_id, p.input_name] for p in workflow.points.get(key, ())),
            key=lambda pair: node_id_key(pair[0]),
        )
        for key in KEYS
    }
    nodes = {node_id for pairs in points.values() for node_id, _ in pairs}
    lacks = [] if info is None else [p for p in validate(graph, info) if p.kind in _LACKS]
    return {
        "workflow": workflow.name,
        "file": str(workflow.path),
        "format": workflow.source_format,
        "points": points,
        "nodes": {
            node_id: {
                "title": title_of(graph, node_id) or "",
                "class_type": class_of(graph, node_id),
            }
            for node_id in sorted(nodes, key=node_id_key)
        },
        "outputs": output_nodes(graph, info),
        "models": models(graph),
        "custom_nodes": custom_nodes(graph, info),
        "missing": [
            {"node_id": p.node_id, "class_type": p.class_type, "kind": p.kind, "message": str(p)}
            for p in lacks
        ],
        "warnings": [
            {"message": w.message, "sidecar_line": w.sidecar_line}
            for w in tracing_warnings(workflow)
        ],
        "server": {"url": url, "reachable": info is not None},
    }


def _text(report: Mapping[str, Any]) -> list[str]:
    converted = "UI, converted with the server's node definitions"
    lines = [
        f"Workflow  {report['workflow']} ({report['file']})",
        f"Format    {'API' if report['format'] == 'api' else converted}",
        "Points",
    ]
    for key, pairs in report["points"].items():
        for node_id, name in pairs:
            node = report["nodes"][node_id]
            lines.append(f"  {key:<11}{node_id}.{name}  {node['title']} ({node['class_type']})")
    lines.append("Outputs")
    lines += [
        f"  {o['node_id']} {o['title']} ({o['class_type']}): {o['kind']}" for o in report["outputs"]
    ]
    lines.append("Models")
    lines += [
        f"  {m['file']}  ({m['node_id']} {m['class_type']}.{m['input']})" for m in report["models"]
    ]
    server = report["server"]
    if not server["reachable"]:
        lines.append(
            f"Server    {server['url']} not reachable: custom nodes and missing files unknown"
        )
    else:
        lines.append(f"Custom    {', '.join(report['custom_nodes']) or 'none'}")
        lines.append(f"Missing on {server['url']}:" + ("" if report["missing"] else " nothing"))
        lines += [f"  - {m['message']}" for m in report["missing"]]
    for warning in report["warnings"]:
        fix = warning["sidecar_line"]
        where = f"; to fix, add to the sidecar under [patch]: {fix}" if fix else ""
        lines.append(f"Warning   {warning['message']}{where}")
    return lines


def _fail(message: str, code: int) -> int:
    print(f"comfycord inspect: {message}", file=sys.stderr)
    return code
