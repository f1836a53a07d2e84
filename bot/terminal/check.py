"""`comfycord check`: settings, every ComfyUI server and every workflow, then the problems found.

Exit codes: 0 when everything is fine, 1 when any problem was found.
"""

from __future__ import annotations

import argparse
import asyncio
import re
from collections.abc import Mapping
from typing import Any

from bot.comfy.client import ComfyClient
from bot.comfy.errors import ComfyError, ComfyUnavailable
from bot.comfy.urls import shown_url
from bot.config import Settings
from bot.errors import EXIT_OK
from bot.workflows.hints import tracing_warnings
from bot.workflows.library import (
    UiConverter,
    Workflow,
    WorkflowError,
    WorkflowLibrary,
    WorkflowNotFound,
    validate,
)

EXIT_PROBLEMS = 1
OLDEST_SUPPORTED = (0, 3, 64)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the doctor's arguments."""
    parser.add_argument(
        "--server",
        action="append",
        metavar="URL",
        help="check this ComfyUI instead of COMFYUI_URL / COMFYUI_URLS (repeatable)",
    )


async def main(args: argparse.Namespace, settings: Settings) -> int:
    """Check everything, print what was found, and return 0 only when nothing is wrong."""
    problems: list[str] = []
    _print_settings(settings)
    infos: dict[str, Mapping[str, Any]] = {}
    print("\nComfyUI")
    for url in args.server or settings.backend_urls:
        info = await _check_server(url.rstrip("/"), settings.request_timeout, problems)
        if info is not None:
            infos[shown_url(url.rstrip("/"))] = info
    print(f"\nWorkflows in {settings.workflows_dir}")
    # UI-format files are converted with the first reachable server's node definitions.
    converter = UiConverter(next(iter(infos.values()))) if infos else None
    library = await asyncio.to_thread(_load_library, settings, problems, converter)
    if library is not None:
        if not infos:
            print("  (no server reachable: loaded, but not checked against object_info)")
        _check_workflows(library, infos, problems)
        _check_named(settings, library, problems)
    if not problems:
        print("\nAll good.")
        return EXIT_OK
    print(f"\n{len(problems)} problem{'s' if len(problems) != 1 else ''}:")
    print("\n".join(f"  - {problem}" for problem in problems))
    return EXIT_PROBLEMS


def _print_settings(settings: Settings) -> None:
    def secret(is_set: bool, needed_by: str) -> str:
        return "set (hidden)" if is_set else f"not set (needed by {needed_by})"

    rows = [
        ("COMFYUI_URL(S)", ", ".join(map(shown_url, settings.backend_urls))),
        ("WORKFLOWS_DIR", str(settings.workflows_dir)),
        ("DEFAULT_WORKFLOW", settings.default_workflow),
        ("DEFAULT_IMAGE_WORKFLOW", settings.default_image_workflow),
        ("HTTP_WORKFLOW", settings.http_workflow),
        ("OUTPUT_DIR", str(settings.output_dir)),
        ("PREVIEW_METHOD", settings.preview_method),
        ("DISCORD_TOKEN", secret(bool(settings.discord_token), "comfycord bot")),
        ("HTTP", f"{settings.http_host}:{settings.http_port}"),
        ("HTTP_API_TOKEN", secret(bool(settings.http_api_token), "serve beyond loopback")),
        ("DATABASE_PATH", str(settings.database_path)),
        ("LOG_LEVEL", settings.log_level),
    ]
    print("Settings")
    print("\n".join(f"  {name:<24}{value}" for name, value in rows))


async def _check_server(
    url: str, request_timeout: float, problems: list[str]
) -> Mapping[str, Any] | None:
    """Print the server's version, devices and memory; return its object_info if reachable."""
    async with ComfyClient(url, timeout=request_timeout) as client:
        url = client.shown_url
        try:
            server = await client.server_info()
            info = await client.object_info()
        except ComfyUnavailable as exc:
            problem = f"ComfyUI at {url} is not reachable ({exc.reason})"
        except ComfyError as exc:
            problem = f"{url} answered, but not as ComfyUI does: {exc}"
        else:
            print(f"  ok {url}: {server.stats.describe()}; {len(info)} node types")
            print(f"     path: {server.path}{_support_note(server.version)}")
            return info
    print(f"  !! {problem}")
    problems.append(problem)
    return None


def _support_note(version: str | None) -> str:
    """Say when a server's version is not one ComfyCord was built and tested against."""
    if version is None:
        return " (the server reports no version)"
    numbers = tuple(int(number) for number in re.findall(r"\d+", version)[:3])
    if numbers and numbers < OLDEST_SUPPORTED:
        return f" (ComfyUI {version} is older than 0.3.64, the oldest version supported)"
    return ""


def _load_library(
    settings: Settings, problems: list[str], converter: UiConverter | None
) -> WorkflowLibrary | None:
    try:
        library = WorkflowLibrary.load(settings.workflows_dir, converter)
    except WorkflowNotFound as exc:
        print(f"  !! {exc.user_message}")
        problems.append(exc.user_message)
        return None
    for name, error in library.errors.items():
        print(f"  !! {name}: {error.user_message}")
        problems.append(f"workflow {name}: {error.user_message}")
    if not len(library) and not library.errors:
        problem = f"{settings.workflows_dir} holds no workflow (*.json)"
        print(f"  !! {problem}")
        problems.append(problem)
    return library


def _check_workflows(
    library: WorkflowLibrary, infos: Mapping[str, Mapping[str, Any]], problems: list[str]
) -> None:
    for workflow in library:
        found = _workflow_problems(workflow, infos)
        nodes = len(workflow.graph)
        takes = ", ".join(key for key, points in workflow.points.items() if points) or "nothing"
        mark = "!!" if found else "ok"
        converted = ", converted from UI format" if workflow.source_format == "ui" else ""
        print(
            f"  {mark} {workflow.name} ({workflow.display_name}): {nodes} nodes{converted}, "
            f"takes {takes}"
        )
        for problem in found:
            print(f"       {problem}")
            problems.append(f"workflow {workflow.name}: {problem}")
        # Warnings do not fail the check: a workflow may mean to take no prompt.
        for hint in tracing_warnings(workflow):
            fix = f"; to fix, add to {workflow.path.with_suffix('.toml').name} under [patch]:"
            print(
                f"       warning: {hint.message}"
                + (f"{fix} {hint.sidecar_line}" if hint.sidecar_line else "")
            )


def _workflow_problems(workflow: Workflow, infos: Mapping[str, Mapping[str, Any]]) -> list[str]:
    try:
        graph = workflow.with_inputs()
    except WorkflowError as exc:
        return [exc.user_message]
    found: list[str] = []
    for url, info in infos.items():
        where = f" (on {url})" if len(infos) > 1 else ""
        found += [f"{problem}{where}" for problem in validate(graph, info)]
    return found


_TAKES_AN_IMAGE = frozenset({"UPSCALE_WORKFLOW", "VARY_WORKFLOW"})


def _check_named(settings: Settings, library: WorkflowLibrary, problems: list[str]) -> None:
    named = {
        "DEFAULT_WORKFLOW": settings.default_workflow,
        "DEFAULT_IMAGE_WORKFLOW": settings.default_image_workflow,
        "HTTP_WORKFLOW": settings.http_workflow,
        "UPSCALE_WORKFLOW": settings.upscale_workflow,
        "VARY_WORKFLOW": settings.vary_workflow,
    }
    for key, name in named.items():
        problem = None
        if name and name not in library and name not in library.errors:
            problem = f"{key} is {name!r}, but there is no {name}.json in {settings.workflows_dir}"
        elif key in _TAKES_AN_IMAGE and name in library and not library.get(name).image_inputs:
            problem = f"{key} is {name!r}, but it takes no input image (the buttons give it one)"
        if problem is not None:
            print(f"  !! {problem}")
            problems.append(problem)
