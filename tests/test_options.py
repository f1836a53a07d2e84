"""Count, aspect, model and LoRA applied to workflows through GenerationRequest.graph_for (pure)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.jobs.model import GenerationRequest
from bot.jobs.options import base_resolution
from bot.workflows.batch import copy_graph, in_copy_order, repeat_graph
from bot.workflows.library import Workflow, WorkflowInputError, load_workflow

ROOT = Path(__file__).resolve().parents[1]


def _workflow(name: str, sidecar: str | None = None, tmp_path: Path | None = None) -> Workflow:
    source = ROOT / "workflows" / f"{name}.json"
    if name == "slow":
        source = ROOT / "tests" / "fixtures" / "workflows" / "slow.json"
    if sidecar is None or tmp_path is None:
        return load_workflow(source)
    (tmp_path / f"{name}.json").write_text(source.read_text())
    (tmp_path / f"{name}.toml").write_text(sidecar)
    return load_workflow(tmp_path / f"{name}.json")


def test_count_uses_the_batch_size_where_the_workflow_has_one() -> None:
    workflow = _workflow("txt2img")
    graph = GenerationRequest("u", "txt2img", prompt="a fox", seed=5, count=4).graph_for(workflow)
    assert graph["5"]["inputs"]["batch_size"] == 4
    assert sorted(graph) == sorted(workflow.graph)


def test_count_copies_the_graph_with_consecutive_seeds_where_there_is_no_batch() -> None:
    workflow = _workflow("slow")
    graph = GenerationRequest("u", "slow", seed=10, count=3).graph_for(workflow)
    assert sorted(graph) == sorted(["1", "2", "3", "c1:1", "c1:2", "c1:3", "c2:1", "c2:2", "c2:3"])
    assert [graph[n]["inputs"]["seed"] for n in ("2", "c1:2", "c2:2")] == [10, 11, 12]
    assert graph["c1:2"]["inputs"]["image"] == ["c1:1", 0]
    assert graph["c2:3"]["inputs"]["images"] == ["c2:2", 0]
    prefixes = [graph[n]["inputs"]["filename_prefix"] for n in ("3", "c1:3", "c2:3")]
    assert prefixes == ["runner/slow_c1", "runner/slow_c2", "runner/slow_c3"]
    single = GenerationRequest("u", "slow", seed=10).graph_for(workflow)
    assert single["3"]["inputs"]["filename_prefix"] == "runner/slow"


def test_each_copy_can_be_taken_back_out() -> None:
    workflow = _workflow("slow")
    graph = GenerationRequest("u", "slow", seed=10, count=3).graph_for(workflow)
    third = copy_graph(graph, 2)
    assert sorted(third) == ["1", "2", "3"]
    assert third["2"]["inputs"]["seed"] == 12
    assert third["2"]["inputs"]["image"] == ["1", 0]
    assert third["3"]["inputs"]["filename_prefix"] == "runner/slow_c3"
    assert copy_graph(graph, 0)["2"]["inputs"]["seed"] == 10
    single = GenerationRequest("u", "slow", seed=10).graph_for(workflow)
    assert copy_graph(single, 0) == single


def test_outputs_go_back_in_copy_order() -> None:
    names = ["slow_c2_00004_.png", "slow_c1_00005_.png", "slow_c3_00003_.png", "x_00001_.png"]
    assert in_copy_order(names, str) == [
        "x_00001_.png",
        "slow_c1_00005_.png",
        "slow_c2_00004_.png",
        "slow_c3_00003_.png",
    ]
    with pytest.raises(ValueError, match="at least 1"):
        repeat_graph({}, 0)


@pytest.mark.parametrize(("aspect", "size"), [("16:9", (1344, 768)), ("2:3", (832, 1280))])
def test_aspect_sets_the_size_at_the_native_pixel_count(aspect: str, size: tuple[int, int]) -> None:
    workflow = _workflow("txt2img")
    graph = GenerationRequest("u", "txt2img", aspect=aspect).graph_for(workflow)
    assert (graph["5"]["inputs"]["width"], graph["5"]["inputs"]["height"]) == size


def test_base_resolution_comes_from_the_sidecar_else_the_exported_size(tmp_path: Path) -> None:
    assert base_resolution(_workflow("txt2img")) == 1024
    sd15 = _workflow("txt2img", "base_resolution = 512\n", tmp_path)
    assert base_resolution(sd15) == 512
    graph = GenerationRequest("u", "txt2img", aspect="16:9").graph_for(sd15)
    assert (graph["5"]["inputs"]["width"], graph["5"]["inputs"]["height"]) == (704, 384)
    explicit = GenerationRequest("u", "txt2img", aspect="16:9", width=640).graph_for(sd15)
    assert (explicit["5"]["inputs"]["width"], explicit["5"]["inputs"]["height"]) == (640, 384)


def test_aspect_is_refused_where_the_size_comes_from_the_input() -> None:
    with pytest.raises(WorkflowInputError, match="takes its size from its input"):
        GenerationRequest("u", "img2img", aspect="16:9").graph_for(_workflow("img2img"), ["a.png"])


def test_model_and_lora_within_the_allow_patterns(tmp_path: Path) -> None:
    sidecar = '[allow]\nmodel = ["sd_xl_*"]\nlora = ["style/*"]\n'
    workflow = _workflow("txt2img", sidecar, tmp_path)
    request = GenerationRequest(
        "u", "txt2img", model="sd_xl_turbo.safetensors", lora="style/ink.safetensors",
        lora_strength=0.6,
    )  # fmt: skip
    graph = request.graph_for(workflow)
    assert graph["4"]["inputs"]["ckpt_name"] == "sd_xl_turbo.safetensors"
    assert graph["10"]["inputs"]["lora_name"] == "style/ink.safetensors"
    assert graph["10"]["inputs"]["strength_model"] == 0.6
    with pytest.raises(WorkflowInputError, match=r"The lora nsfw/x may not be picked .* style/\*"):
        GenerationRequest("u", "txt2img", lora="nsfw/x").graph_for(workflow)
    with pytest.raises(WorkflowInputError, match=r"The model v1-5\.ckpt may not be picked"):
        GenerationRequest("u", "txt2img", model="v1-5.ckpt").graph_for(workflow)
