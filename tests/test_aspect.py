"""Aspect ratios to pixel sizes at a workflow's native pixel count, and the sidecar's setting."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.jobs.aspect import ASPECTS, native_resolution, size_for
from bot.workflows.library import SidecarError, load_workflow

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(
    ("aspect", "base", "size"),
    [
        ("1:1", 1024, (1024, 1024)),
        ("4:3", 1024, (1152, 896)),
        ("3:4", 1024, (896, 1152)),
        ("3:2", 1024, (1280, 832)),
        ("2:3", 1024, (832, 1280)),
        ("16:9", 1024, (1344, 768)),
        ("9:16", 1024, (768, 1344)),
        ("21:9", 1024, (1536, 640)),
        ("1:1", 512, (512, 512)),
        ("16:9", 512, (704, 384)),
        ("21:9", 64, (128, 64)),
    ],
)
def test_size_keeps_the_native_pixel_count(aspect: str, base: int, size: tuple[int, int]) -> None:
    width, height = size_for(aspect, base)
    assert (width, height) == size
    assert width % 64 == 0
    assert height % 64 == 0


@pytest.mark.parametrize("aspect", ASPECTS)
@pytest.mark.parametrize("base", [512, 768, 1024])
def test_every_aspect_stays_near_the_pixel_count_and_ratio(aspect: str, base: int) -> None:
    width, height = size_for(aspect, base)
    across, down = (int(part) for part in aspect.split(":"))
    assert abs(width * height / base**2 - 1) < 0.15
    assert abs((width / height) / (across / down) - 1) < 0.15


def test_unknown_aspect_and_tiny_base_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown aspect ratio '5:4'"):
        size_for("5:4", 1024)
    with pytest.raises(ValueError, match="at least 64"):
        size_for("1:1", 32)


def test_native_resolution_from_the_exported_size() -> None:
    assert native_resolution(1024, 1024) == 1024
    assert native_resolution(512, 768) == 640
    assert native_resolution(None, 512) is None
    assert native_resolution(True, 512) is None


def test_sidecar_base_resolution(tmp_path: Path) -> None:
    graph = (ROOT / "workflows" / "txt2img.json").read_text()
    (tmp_path / "wf.json").write_text(graph)
    (tmp_path / "wf.toml").write_text("base_resolution = 512\n")
    assert load_workflow(tmp_path / "wf.json").base_resolution == 512
    (tmp_path / "wf.toml").write_text("base_resolution = 10\n")
    with pytest.raises(SidecarError, match=r"wf\.toml: base_resolution must be .* not 10"):
        load_workflow(tmp_path / "wf.json")
    (tmp_path / "wf.toml").write_text('base_resolution = "big"\n')
    with pytest.raises(SidecarError, match="base_resolution"):
        load_workflow(tmp_path / "wf.json")
