"""Model choice and LoRA insertion into API graphs (pure): the wiring; the original untouched."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from bot.workflows.graph import PatchPoint
from bot.workflows.library import WorkflowInputError, load_workflow
from bot.workflows.loras import ModelSlot, model_slot, with_lora, with_model
from bot.workflows.validate import validate

ROOT = Path(__file__).resolve().parents[1]
OBJECT_INFO = json.loads((ROOT / "tests" / "fixtures" / "object_info.json").read_text())


def _txt2img() -> dict[str, Any]:
    return json.loads((ROOT / "workflows" / "txt2img.json").read_text())


def _flux() -> dict[str, Any]:
    return {
        "1": {
            "class_type": "UNETLoader",
            "inputs": {"unet_name": "flux1-dev.sft", "weight_dtype": "default"},
        },
        "2": {
            "class_type": "DualCLIPLoader",
            "inputs": {"clip_name1": "t5.sft", "clip_name2": "l.sft", "type": "flux"},
        },
        "3": {"class_type": "CLIPTextEncode", "inputs": {"text": "a fox", "clip": ["2", 0]}},
        "4": {"class_type": "BasicGuider", "inputs": {"model": ["1", 0], "conditioning": ["3", 0]}},
        "5": {
            "class_type": "ModelSamplingFlux",
            "inputs": {
                "model": ["1", 0],
                "max_shift": 1.15,
                "base_shift": 0.5,
                "width": 1024,
                "height": 1024,
            },
        },
    }


def test_the_model_slot_is_the_checkpoint_or_the_unet() -> None:
    assert model_slot(_txt2img()) == ModelSlot(PatchPoint("4", "ckpt_name"), "checkpoint")
    assert model_slot(_flux()) == ModelSlot(PatchPoint("1", "unet_name"), "unet")
    assert model_slot({"1": {"class_type": "EmptyImage", "inputs": {}}}) is None


def test_with_model_changes_only_the_loader_and_leaves_the_original() -> None:
    graph = _txt2img()
    before = copy.deepcopy(graph)
    changed = with_model(graph, "juggernaut.safetensors")
    assert changed["4"]["inputs"]["ckpt_name"] == "juggernaut.safetensors"
    assert graph == before
    assert {k: v for k, v in changed.items() if k != "4"} == {
        k: v for k, v in graph.items() if k != "4"
    }
    with pytest.raises(WorkflowInputError, match="loads no model"):
        with_model({"1": {"class_type": "EmptyImage", "inputs": {}}}, "x")


def test_a_lora_goes_between_the_checkpoint_and_its_consumers() -> None:
    graph = _txt2img()
    before = copy.deepcopy(graph)
    changed = with_lora(graph, "style/ink.safetensors", 0.8)
    assert graph == before
    lora = changed["10"]
    assert lora["class_type"] == "LoraLoader"
    assert lora["inputs"] == {
        "model": ["4", 0],
        "clip": ["4", 1],
        "lora_name": "style/ink.safetensors",
        "strength_model": 0.8,
        "strength_clip": 0.8,
    }
    assert changed["3"]["inputs"]["model"] == ["10", 0]
    assert changed["6"]["inputs"]["clip"] == ["10", 1]
    assert changed["7"]["inputs"]["clip"] == ["10", 1]
    assert changed["8"]["inputs"]["vae"] == ["4", 2]  # the VAE does not pass through a LoRA
    # The result is a graph ComfyUI's own input specs accept (LoRA name lists aside).
    problems = validate(changed, OBJECT_INFO)
    assert [p for p in problems if p.node_id == "10" and p.input_name != "lora_name"] == []
    assert [p.kind for p in problems if p.node_id == "10"] == ["model_missing"]


def test_a_unet_gets_a_model_only_lora() -> None:
    changed = with_lora(_flux(), "flux_style.safetensors", 1.0)
    assert changed["6"] == {
        "class_type": "LoraLoaderModelOnly",
        "inputs": {"model": ["1", 0], "lora_name": "flux_style.safetensors", "strength_model": 1.0},
        "_meta": {"title": "LoRA (ComfyCord)"},
    }
    assert changed["4"]["inputs"]["model"] == ["6", 0]
    assert changed["5"]["inputs"]["model"] == ["6", 0]
    assert changed["3"]["inputs"]["clip"] == ["2", 0]


def test_an_existing_lora_slot_is_filled_instead_of_adding_one() -> None:
    graph = with_lora(_txt2img(), "placeholder.safetensors", 1.0)
    again = with_lora(graph, "style/ink.safetensors", 0.5)
    assert sorted(again) == sorted(graph)
    assert again["10"]["inputs"]["lora_name"] == "style/ink.safetensors"
    assert again["10"]["inputs"]["strength_model"] == 0.5
    assert again["10"]["inputs"]["strength_clip"] == 0.5
    assert again["3"]["inputs"]["model"] == ["10", 0]


def test_a_graph_without_a_model_takes_no_lora() -> None:
    demo = load_workflow(ROOT / "workflows" / "demo.json")
    with pytest.raises(WorkflowInputError, match="cannot take a LoRA"):
        with_lora(dict(demo.graph), "x.safetensors")
