"""Workflows: API-format JSON plus an optional TOML sidecar, their patch points, and filling them.

A workflow is `workflows/NAME.json`, as ComfyUI's "Export (API)" wrote it, or a UI-format file
as its "Save" wrote it (converted with a server's /object_info, `bot.workflows.ui`), plus an
optional `NAME.toml`:

    name = "SDXL text to image"           # display name (default: NAME)
    description = "..."
    backends = ["gpu-big"]                # placement hint, parsed and exposed only
    [defaults]                            # applied before the caller's values
    steps = 25
    checkpoint = "sd_xl_base_1.0.safetensors"
    [ranges]                              # inclusive bounds for numeric values
    steps = [1, 60]
    base_resolution = 1024                # native side: aspect ratios keep 1024² pixels
    [allow]                               # glob patterns of models and LoRAs members may pick
    lora = ["style/*"]
    [patch]                               # explicit patch points; replace detection per key
    prompt = "title:Positive Prompt.text" # or "6.text"; a list patches several inputs
    image = ["10.image", "11.image"]

Keys without an explicit patch point are found by tracing the graph (`bot.workflows.detect`).
Loading does blocking file I/O: call it at startup or through `asyncio.to_thread`.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from types import MappingProxyType

from bot.workflows.detect import detect_points
from bot.workflows.errors import (
    SidecarError,
    UnknownWorkflow,
    WorkflowError,
    WorkflowFormatError,
    WorkflowInputError,
    WorkflowNotFound,
)
from bot.workflows.graph import KEYS, ApiNode, PatchPoint, check_api_format, read_json
from bot.workflows.model import OPTIONAL_KEYS, Workflow, WorkflowSummary
from bot.workflows.sidecar import load_sidecar
from bot.workflows.ui import UiConverter, is_ui_format
from bot.workflows.validate import ValidationProblem, validate

__all__ = [
    "KEYS",
    "OPTIONAL_KEYS",
    "PatchPoint",
    "SidecarError",
    "UiConverter",
    "UnknownWorkflow",
    "ValidationProblem",
    "Workflow",
    "WorkflowError",
    "WorkflowFormatError",
    "WorkflowInputError",
    "WorkflowLibrary",
    "WorkflowNotFound",
    "WorkflowSummary",
    "load_workflow",
    "names_a_file",
    "read_workflow_graph",
    "validate",
]


def names_a_file(name_or_path: str) -> bool:
    """Tell whether a workflow reference is a path to a file rather than a name in a library."""
    path = Path(name_or_path)
    return path.suffix == ".json" or len(path.parts) > 1 or path.exists()


def read_workflow_graph(
    path: Path, converter: UiConverter | None
) -> tuple[dict[str, ApiNode], str]:
    """Return the API graph of a workflow file and its format, "api" or "ui" (converted).

    Raises:
        WorkflowNotFound: the file does not exist.
        WorkflowFormatError: invalid JSON, a UI-format file with no converter (no server
            reachable), or not a mapping of node ids to `{class_type, inputs}`.
    """
    data = read_json(path)
    if converter is not None and isinstance(data, dict) and is_ui_format(data):
        return converter.convert(data, path.name), "ui"
    return check_api_format(data, path.name), "api"


def load_workflow(path: Path, converter: UiConverter | None = None) -> Workflow:
    """Load `path` and its sidecar `path.with_suffix(".toml")`, if any.

    A UI-format file is converted with `converter` (a server's /object_info).

    Raises:
        WorkflowNotFound: the file does not exist.
        WorkflowFormatError: invalid JSON (with line and column), a UI-format file and no
            converter, or not a mapping of node ids to `{class_type, inputs}`.
        SidecarError: invalid TOML, a bad patch point, or a default with no place.
    """
    graph, source_format = read_workflow_graph(path, converter)
    sidecar = load_sidecar(path.with_suffix(".toml"), graph)
    # A converted file's custom nodes are read by their input types too; an API file is read
    # by names alone, so that its points never depend on whether a server answered.
    info = converter.object_info if converter is not None and source_format == "ui" else None
    points = {**detect_points(graph, info), **sidecar.patch}
    for key in sidecar.defaults:
        if not points.get(key) and key not in OPTIONAL_KEYS:
            raise SidecarError(
                f"{path.with_suffix('.toml').name}: defaults.{key} has no place in the workflow."
            )
    return Workflow(
        name=path.stem,
        path=path,
        display_name=sidecar.name or path.stem,
        description=sidecar.description,
        graph=MappingProxyType(graph),
        points=MappingProxyType(points),
        defaults=MappingProxyType(dict(sidecar.defaults)),
        ranges=MappingProxyType(dict(sidecar.ranges)),
        backends=sidecar.backends,
        source_format=source_format,
        base_resolution=sidecar.base_resolution,
        allow=MappingProxyType(dict(sidecar.allow)),
    )


class WorkflowLibrary:
    """All workflows of one directory, by name; files that failed to load are in `errors`."""

    def __init__(
        self,
        workflows: Mapping[str, Workflow],
        errors: Mapping[str, WorkflowError] | None = None,
        directory: Path | None = None,
        converter: UiConverter | None = None,
    ) -> None:
        self._workflows = dict(sorted(workflows.items()))
        self.errors: Mapping[str, WorkflowError] = MappingProxyType(dict(errors or {}))
        self.directory = directory
        self.converter = converter

    @classmethod
    def load(cls, directory: Path, converter: UiConverter | None = None) -> WorkflowLibrary:
        """Load every `*.json` of `directory`, keeping each file's error instead of aborting.

        UI-format files are converted with `converter`; without one they are errors.

        Raises:
            WorkflowNotFound: `directory` does not exist.
        """
        if not directory.is_dir():
            raise WorkflowNotFound(f"Workflow directory {directory} does not exist.")
        workflows: dict[str, Workflow] = {}
        errors: dict[str, WorkflowError] = {}
        for path in sorted(directory.glob("*.json")):
            try:
                workflows[path.stem] = load_workflow(path, converter)
            except WorkflowError as exc:
                errors[path.stem] = exc
        for sidecar in sorted(directory.glob("*.toml")):
            if not sidecar.with_suffix(".json").exists():
                errors[sidecar.stem] = SidecarError(
                    f"{sidecar.name}: there is no {sidecar.stem}.json."
                )
        return cls(workflows, errors, directory, converter)

    def get(self, name: str) -> Workflow:
        """Return the workflow called `name`.

        Raises:
            WorkflowError: the file `name` failed to load (its own error).
            UnknownWorkflow: there is no such workflow; the message lists the available ones.
        """
        if name in self._workflows:
            return self._workflows[name]
        if name in self.errors:
            raise self.errors[name]
        where = f" in {self.directory}" if self.directory else ""
        available = ", ".join(self._workflows) or "none"
        raise UnknownWorkflow(f"No workflow {name!r}{where}. Available: {available}.")

    def resolve(self, name_or_path: str) -> Workflow:
        """Return the library's workflow of that name, else load it as a path to a file.

        Raises:
            WorkflowError: as `get` for a name, or as `load_workflow` for a path.
        """
        if name_or_path in self._workflows or name_or_path in self.errors:
            return self.get(name_or_path)
        if names_a_file(name_or_path):
            return load_workflow(Path(name_or_path), self.converter)
        return self.get(name_or_path)

    def names(self) -> list[str]:
        """Return the names of the loaded workflows, sorted."""
        return list(self._workflows)

    def __iter__(self) -> Iterator[Workflow]:
        return iter(self._workflows.values())

    def __len__(self) -> int:
        return len(self._workflows)

    def __contains__(self, name: object) -> bool:
        return name in self._workflows
