"""Benchmark of the workflow tracer on ComfyUI's official templates (UI format, converted).

Run `python bench/bench_workflows.py [--templates DIR] [--verbose]`. Each template is converted
with the recorded /object_info, validated (model files aside), and its detected points are
compared with an answer worked out independently from the node types in object_info: the
multiline STRING widgets whose CONDITIONING reaches a sampler's positive or negative side,
every seed widget (control_after_generate) of a node that makes LATENT or NOISE, and every
LoadImage. A template is right when prompt, negative, every seed and the images all match.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bot.workflows.detect import detect_points  # noqa: E402
from bot.workflows.errors import WorkflowError  # noqa: E402
from bot.workflows.graph import PatchPoint, is_link  # noqa: E402
from bot.workflows.ui import convert_ui  # noqa: E402
from bot.workflows.validate import validate  # noqa: E402

FIXTURES = REPO / "tests" / "fixtures"
TARGET_VALID = 0.90
TARGET_RIGHT = 0.96
KEYS = ("prompt", "negative", "seed", "image")


def _spec(info: Mapping[str, Any], graph: Mapping[str, Any], node_id: str) -> Mapping[str, Any]:
    spec = info.get(graph[node_id]["class_type"])
    return spec if isinstance(spec, Mapping) else {}


def _input_spec(spec: Mapping[str, Any], name: str) -> list[Any]:
    for section in ("required", "optional"):
        entry = (spec.get("input", {}).get(section) or {}).get(name)
        if isinstance(entry, list) and entry:
            return entry
    return []


def _value_point(graph: Mapping[str, Any], info: Mapping[str, Any], node_id: str, name: str) -> Any:
    """Return the point holding an input's value: the input itself, or the widget it links to."""
    value = graph[node_id]["inputs"].get(name)
    if not is_link(value):
        return PatchPoint(node_id, name)
    source = value[0]
    for other, other_value in graph[source]["inputs"].items():
        kind = _input_spec(_spec(info, graph, source), other)[:1]
        if not is_link(other_value) and kind in (["STRING"], ["INT"]):
            return PatchPoint(source, other)
    return _value_point(graph, info, source, next(iter(graph[source]["inputs"]), name))


def expected(graph: Mapping[str, Any], info: Mapping[str, Any]) -> dict[str, set[PatchPoint]]:
    """Work out prompt, negative, seed and image points from the node types alone."""
    answer: dict[str, set[PatchPoint]] = {"prompt": set(), "negative": set(), "seed": set()}
    for node_id, node in graph.items():
        spec = _spec(info, graph, node_id)
        outputs = spec.get("output") or []
        if not {"LATENT", "NOISE"} & set(outputs):
            continue
        for name in node["inputs"]:
            entry = _input_spec(spec, name)
            options = entry[1] if len(entry) > 1 and isinstance(entry[1], Mapping) else {}
            noise = node["inputs"].get("add_noise", "enable") not in ("disable", False)
            if entry[:1] == ["INT"] and options.get("control_after_generate") and noise:
                answer["seed"].add(_value_point(graph, info, node_id, name))
            if entry[:1] in (["CONDITIONING"], ["GUIDER"]) and is_link(node["inputs"][name]):
                side = "negative" if name.startswith("neg") else "prompt"
                _trace(graph, info, tuple(node["inputs"][name]), side, answer)
    answer["negative"] -= answer["prompt"]
    answer["image"] = {
        PatchPoint(node_id, "image")
        for node_id, node in graph.items()
        if node["class_type"] in ("LoadImage", "LoadImageMask")
    }
    return answer


def _trace(graph: Any, info: Any, link: tuple[str, int], side: str, answer: Any) -> None:
    pending, seen = [(link, side)], set()
    while pending:
        (node_id, slot), where = pending.pop()
        if (node_id, slot, where) in seen or node_id not in graph:
            continue
        seen.add((node_id, slot, where))
        node, spec = graph[node_id], _spec(info, graph, node_id)
        if node["class_type"] == "ConditioningZeroOut" and where == "negative":
            continue
        texts = [n for n in node["inputs"] if _is_text(_input_spec(spec, n))]
        has_clip = any(_input_spec(spec, n)[:1] == ["CLIP"] for n in node["inputs"])
        if texts and has_clip and "CONDITIONING" in (spec.get("output") or []):
            answer[where].update(_value_point(graph, info, node_id, n) for n in texts)
            continue
        names = spec.get("output_name") or []
        out = str(names[slot]).lower() if slot < len(names) else ""
        for name, value in node["inputs"].items():
            kind = _input_spec(spec, name)[:1]
            if kind not in (["CONDITIONING"], ["GUIDER"]) or not is_link(value):
                continue
            if out in ("positive", "negative") and not name.startswith(out[:3]):
                continue
            next_side = "negative" if name.startswith("neg") else where
            pending.append(((value[0], value[1]), next_side if where == "prompt" else where))


def _is_text(entry: list[Any]) -> bool:
    options = entry[1] if len(entry) > 1 and isinstance(entry[1], Mapping) else {}
    return entry[:1] == ["STRING"] and bool(
        options.get("multiline") or options.get("dynamicPrompts")
    )


def score(name: str, data: Mapping[str, Any], info: Mapping[str, Any]) -> dict[str, Any]:
    """Convert, validate and trace one template; return what was right."""
    try:
        graph = convert_ui(data, info, name)
    except WorkflowError as exc:
        return {"converted": False, "problems": [str(exc)]}
    problems = [str(p) for p in validate(graph, info) if p.kind != "model_missing"]
    found = {key: set(points) for key, points in detect_points(graph).items()}
    truth = expected(graph, info)
    checks = {key: found.get(key, set()) == truth[key] for key in truth}
    checks["seed"] = truth["seed"] <= found["seed"]
    return {
        "converted": True,
        "valid": not problems,
        "problems": problems,
        **checks,
        "found": found,
        "truth": truth,
    }


def main(argv: Sequence[str] | None = None) -> int:
    """Print how many templates convert, validate and are traced right."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--templates", type=Path, default=FIXTURES / "templates")
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args(argv)
    info = json.loads((FIXTURES / "object_info.json").read_text(encoding="utf-8"))
    families = json.loads((args.templates / "index.json").read_text(encoding="utf-8"))
    results = {}
    seconds = 0.0
    for name in sorted(families):
        data = json.loads((args.templates / f"{name}.json").read_text(encoding="utf-8"))
        started = time.perf_counter()
        results[name] = score(name, data, info)
        seconds += time.perf_counter() - started
    _report(results)
    per = seconds / len(results) * 1000
    print(f"time:      {per:.1f} ms per template to convert, validate, trace and check")
    if args.verbose:
        _details(results)
    return 0


def _report(results: Mapping[str, Mapping[str, Any]]) -> None:
    total = len(results)

    def count(key: str) -> int:
        return sum(1 for r in results.values() if r.get(key))

    right = sum(1 for r in results.values() if all(r.get(k) for k in KEYS))
    valid = count("valid")
    print(f"templates: {total} (image and video families of comfyui-workflow-templates 0.1.95)")
    print(f"converted: {count('converted')}/{total}")
    print(f"valid:     {valid}/{total} = {valid / total:.1%} (target {TARGET_VALID:.0%})")
    for key in KEYS:
        print(f"{key + ':':<10} {count(key)}/{total} right")
    print(f"right:     {right}/{total} = {right / total:.1%} (target {TARGET_RIGHT:.0%})")


def _details(results: Mapping[str, Mapping[str, Any]]) -> None:
    for name, result in results.items():
        wrong = [k for k in ("valid", *KEYS) if not result.get(k)]
        if wrong:
            print(f"  {name}: {', '.join(wrong)}")
        for key in wrong:
            if key == "valid":
                print(f"     {result['problems'][:2]}")
            elif key in result.get("truth", {}):
                found = sorted(map(str, result["found"][key]))
                print(
                    f"     {key}: found {found}, expected {sorted(map(str, result['truth'][key]))}"
                )


if __name__ == "__main__":
    raise SystemExit(main())
