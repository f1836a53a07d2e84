"""Built-in ranges of every numeric workflow key, which sidecars may narrow but not widen."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from bot.workflows.library import SidecarError, Workflow, WorkflowInputError, load_workflow

SHIPPED = Path(__file__).resolve().parents[1] / "workflows"


@pytest.fixture
def bare(tmp_path: Path) -> Workflow:
    """The shipped txt2img graph without its sidecar: no [ranges] at all."""
    shutil.copy(SHIPPED / "txt2img.json", tmp_path / "bare.json")
    return load_workflow(tmp_path / "bare.json")


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"steps": 10**300}, "steps must be between 1 and 500, not 1000000"),
        ({"steps": 501}, "steps must be between 1 and 500, not 501"),
        ({"steps": 0}, "steps must be between 1 and 500, not 0"),
        ({"cfg": -5}, r"cfg must be between 0 and 100, not -5\.0"),
        ({"cfg": 100.5}, r"cfg must be between 0 and 100, not 100\.5"),
        ({"width": 16392}, "width must be between 16 and 16384, not 16392"),
        ({"width": 8}, "width must be between 16 and 16384, not 8"),
        ({"height": 1001}, "height must be a multiple of 8, not 1001"),
        ({"batch_size": 65}, "batch_size must be between 1 and 64, not 65"),
        ({"denoise": 1.5}, r"denoise must be between 0 and 1, not 1\.5"),
    ],
)
def test_a_workflow_without_ranges_still_has_bounds(
    bare: Workflow, values: dict[str, object], message: str
) -> None:
    with pytest.raises(WorkflowInputError, match=message):
        bare.with_inputs(values)


def test_values_at_the_built_in_bounds_pass(bare: Workflow) -> None:
    graph = bare.with_inputs(
        {"steps": 500, "cfg": 0, "width": 16384, "height": 16, "batch_size": 64, "denoise": 1}
    )
    [sampler] = [n for n in graph.values() if n["class_type"] == "KSampler"]
    assert (sampler["inputs"]["steps"], sampler["inputs"]["cfg"]) == (500, 0.0)


def test_a_sidecar_narrows_the_built_in_ranges(bare: Workflow, tmp_path: Path) -> None:
    (tmp_path / "bare.toml").write_text("[ranges]\nsteps = [5, 20]\n")
    narrowed = load_workflow(tmp_path / "bare.json")
    with pytest.raises(WorkflowInputError, match="steps must be between 5 and 20, not 21"):
        narrowed.with_inputs({"steps": 21})
    with pytest.raises(WorkflowInputError, match="cfg must be between 0 and 100"):
        narrowed.with_inputs({"cfg": 101})  # keys it does not name keep the built-in range


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("steps = [1, 10000]", r"ranges\.steps \[1, 10000\] goes beyond .* \(1 to 500\)"),
        ("cfg = [-1, 5]", r"ranges\.cfg \[-1, 5\] goes beyond .* \(0 to 100\)"),
        ("batch_size = [1, 100]", r"ranges\.batch_size \[1, 100\] goes beyond"),
    ],
)
def test_a_sidecar_cannot_widen_them(
    bare: Workflow, tmp_path: Path, line: str, message: str
) -> None:
    (tmp_path / "bare.toml").write_text(f"[ranges]\n{line}\n")
    with pytest.raises(SidecarError, match=message):
        load_workflow(tmp_path / "bare.json")
