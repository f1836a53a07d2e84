"""Read a workflow's optional TOML sidecar, and check the values a workflow takes."""

from __future__ import annotations

import math
import tomllib
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bot.workflows.errors import SidecarError
from bot.workflows.graph import KEYS, PatchPoint, class_of, inputs_of, title_of

TEXT_KEYS = frozenset({"prompt", "negative", "checkpoint"})
INT_KEYS = frozenset({"seed", "steps", "width", "height", "batch_size"})
FLOAT_KEYS = frozenset({"cfg", "denoise"})
SEED_LIMIT = 2**64 - 1  # ComfyUI's own maximum seed
# Built-in bounds of every numeric key, within what ComfyUI accepts; sidecar ranges narrow them.
LIMITS: Mapping[str, tuple[float, float]] = {
    "seed": (0, SEED_LIMIT),
    "steps": (1, 500),
    "width": (16, 16384),
    "height": (16, 16384),
    "batch_size": (1, 64),
    "cfg": (0.0, 100.0),
    "denoise": (0.0, 1.0),
}
# Latent sizes are in steps of 8 pixels (the VAE's factor); EmptyLatentImage's own step.
MULTIPLE_OF: Mapping[str, int] = {"width": 8, "height": 8}
_TABLES = frozenset(
    {"name", "description", "backends", "defaults", "ranges", "patch", "base_resolution", "allow"}
)
ALLOW_KEYS = ("model", "lora")
"""What `[allow]` restricts: the models and LoRAs members may pick, as glob patterns."""


@dataclass(frozen=True, slots=True)
class Sidecar:
    """What a `NAME.toml` beside `NAME.json` says about the workflow."""

    name: str | None = None
    description: str = ""
    defaults: Mapping[str, Any] = field(default_factory=dict)
    ranges: Mapping[str, tuple[float, float]] = field(default_factory=dict)
    backends: tuple[str, ...] = ()
    patch: Mapping[str, tuple[PatchPoint, ...]] = field(default_factory=dict)
    base_resolution: int | None = None
    allow: Mapping[str, tuple[str, ...]] = field(default_factory=dict)


def check_value(key: str, value: object, ranges: Mapping[str, tuple[float, float]]) -> Any:
    """Return `value` as the JSON value to write for `key`.

    Raises:
        ValueError: with a message for the user (without the file name) on a wrong type,
            a non-finite number or a number outside `ranges` or ComfyUI's own limits.
    """
    if key in TEXT_KEYS:
        if not isinstance(value, str):
            raise ValueError(f"{key} must be text, not {type(value).__name__}")
        return value
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"{key} must be a finite number, not {value!r}")
    number: int | float
    if key in INT_KEYS:
        if isinstance(value, float) and not value.is_integer():
            raise ValueError(f"{key} must be a whole number, not {value!r}")
        number = int(value)
    elif key in FLOAT_KEYS:
        number = float(value)
    else:
        raise ValueError(f"{key!r} is not a value a workflow takes")
    low, high = bounds(key, ranges)
    if not low <= number <= high:
        raise ValueError(f"{key} must be between {_show(low)} and {_show(high)}, not {number!r}")
    step = MULTIPLE_OF.get(key)
    if step is not None and number % step:
        raise ValueError(f"{key} must be a multiple of {step}, not {number!r}")
    return number


def bounds(key: str, ranges: Mapping[str, tuple[float, float]]) -> tuple[float, float]:
    """Return the inclusive bounds of a numeric key: the built-in ones, narrowed by `ranges`."""
    low, high = LIMITS[key]
    narrow_low, narrow_high = ranges.get(key, (low, high))
    return max(low, narrow_low), min(high, narrow_high)


def _show(number: float) -> str:
    return str(int(number)) if float(number).is_integer() else str(number)


def load_sidecar(path: Path, graph: Mapping[str, Any]) -> Sidecar:
    """Read the sidecar at `path` (an absent file gives an empty Sidecar).

    Raises:
        SidecarError: bad TOML, an unknown key, a malformed range, or a patch point naming
            a node, title or input that `graph` lacks.
    """
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return Sidecar()
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise SidecarError(f"{path.name}: invalid TOML: {exc}.") from exc
    where = path.name
    unknown = sorted(set(data) - _TABLES)
    if unknown:
        raise SidecarError(f"{where}: unknown keys {unknown}; known: {sorted(_TABLES)}.")
    ranges = _ranges(data.get("ranges", {}), where)
    return Sidecar(
        name=_optional_text(data.get("name"), where, "name"),
        description=_optional_text(data.get("description"), where, "description") or "",
        defaults=_defaults(data.get("defaults", {}), ranges, where),
        ranges=ranges,
        backends=tuple(_string_list(data.get("backends", []), where, "backends")),
        patch={
            key: tuple(parse_point(spec, graph, where) for spec in _string_list(specs, where, key))
            for key, specs in _table(data.get("patch", {}), KEYS, where, "patch").items()
        },
        base_resolution=_base_resolution(data.get("base_resolution"), where),
        allow={
            key: tuple(_string_list(patterns, where, f"allow.{key}"))
            for key, patterns in _table(data.get("allow", {}), ALLOW_KEYS, where, "allow").items()
        },
    )


def _base_resolution(value: object, where: str) -> int | None:
    """Check `base_resolution`: the side of the square the model draws natively (1024, 512)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 64 <= value <= 8192:
        raise SidecarError(
            f"{where}: base_resolution must be a whole number of pixels between 64 and 8192"
            f" (1024 for SDXL and Flux, 512 for SD1.5), not {value!r}."
        )
    return value


def parse_point(spec: str, graph: Mapping[str, Any], where: str) -> PatchPoint:
    """Resolve `"NODE_ID.INPUT"` or `"title:TITLE.INPUT"` to a PatchPoint of `graph`.

    Raises:
        SidecarError: the spec is malformed, or names a node, title or input that is not there.
    """
    target, dot, input_name = spec.rpartition(".")
    if not (dot and target and input_name):
        raise SidecarError(
            f"{where}: patch point {spec!r} must look like 'NODE_ID.INPUT' or 'title:TITLE.INPUT'."
        )
    if target.startswith("title:"):
        title = target.removeprefix("title:")
        matches = [node_id for node_id in graph if title_of(graph, node_id) == title]
        if len(matches) != 1:
            problem = "no node is" if not matches else f"{len(matches)} nodes ({matches}) are"
            raise SidecarError(f"{where}: patch point {spec!r}: {problem} titled {title!r}.")
        node_id = matches[0]
    elif target in graph:
        node_id = target
    else:
        raise SidecarError(f"{where}: patch point {spec!r}: the workflow has no node {target!r}.")
    inputs = inputs_of(graph, node_id)
    if input_name not in inputs:
        raise SidecarError(
            f"{where}: patch point {spec!r}: node {node_id} ({class_of(graph, node_id)}) has no "
            f"input {input_name!r}; it has {sorted(inputs)}."
        )
    return PatchPoint(node_id, input_name)


def _table(value: object, allowed: Collection[str], where: str, table: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise SidecarError(f"{where}: [{table}] must be a table.")
    unknown = sorted(key for key in value if key not in allowed)
    if unknown:
        raise SidecarError(
            f"{where}: [{table}] has unknown keys {unknown}; known: {sorted(allowed)}."
        )
    return value


def _optional_text(value: object, where: str, key: str) -> str | None:
    if value is not None and not isinstance(value, str):
        raise SidecarError(f"{where}: {key} must be text.")
    return value


def _string_list(value: object, where: str, key: str) -> list[str]:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not all(isinstance(item, str) for item in items):
        raise SidecarError(f"{where}: {key} must be a string or a list of strings.")
    return items


def _ranges(value: object, where: str) -> dict[str, tuple[float, float]]:
    ranges: dict[str, tuple[float, float]] = {}
    for key, given in _table(value, sorted(INT_KEYS | FLOAT_KEYS), where, "ranges").items():
        if not (
            isinstance(given, list)
            and len(given) == 2
            and all(isinstance(b, int | float) and not isinstance(b, bool) for b in given)
            and given[0] <= given[1]
        ):
            raise SidecarError(f"{where}: ranges.{key} must be [low, high], not {given!r}.")
        low, high = LIMITS[key]
        if given[0] < low or given[1] > high:
            raise SidecarError(
                f"{where}: ranges.{key} {given!r} goes beyond what ComfyCord allows"
                f" ({_show(low)} to {_show(high)}); a sidecar may only narrow it."
            )
        ranges[key] = (given[0], given[1])
    return ranges


def _defaults(
    value: object, ranges: Mapping[str, tuple[float, float]], where: str
) -> dict[str, Any]:
    defaults: dict[str, Any] = {}
    allowed = [key for key in KEYS if key != "image"]
    for key, default in _table(value, allowed, where, "defaults").items():
        try:
            defaults[key] = check_value(key, default, ranges)
        except ValueError as exc:
            raise SidecarError(f"{where}: defaults.{exc}.") from exc
    return defaults
