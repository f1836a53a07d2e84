"""UI-format workflows become API graphs: hand-made files of each feature, and the templates."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from bot.workflows.detect import detect_points
from bot.workflows.errors import WorkflowFormatError
from bot.workflows.library import WorkflowLibrary, load_workflow
from bot.workflows.ui import UiConverter, convert_ui
from bot.workflows.validate import validate
from tests.graphs import FIXTURES, UiGraph, object_info, template


def convert(data: dict[str, Any]) -> dict[str, Any]:
    return convert_ui(data, object_info(), "test.json")


def txt2img() -> UiGraph:
    """SDXL text to image with a Reroute, a PrimitiveNode, a bypassed LoRA, a note, a muted node."""
    ui = UiGraph()
    ui.add(1, "CheckpointLoaderSimple", ["sd_xl_base_1.0.safetensors"])
    ui.add(2, "CLIPTextEncode", ["a fox"], title="Positive")
    ui.add(3, "CLIPTextEncode", ["blurry"])
    ui.add(4, "EmptyLatentImage", [512, 512, 2])
    ui.add(5, "KSampler", [42, "randomize", 20, 7.5, "euler", "normal", 1.0])
    ui.add(6, "VAEDecode")
    ui.add(7, "SaveImage", ["fox"])
    ui.add(8, "Note", ["remember the fox"], outputs=[])
    ui.add(9, "PrimitiveNode", [768, "fixed"], outputs=["INT"])
    ui.add(10, "Reroute", outputs=["MODEL"])
    ui.add(11, "LoraLoader", ["style.safetensors", 1.0, 1.0], mode=4)
    ui.add(12, "PreviewImage", mode=2)
    ui.add(13, "MarkdownNote", ["# Read me"], outputs=[])
    ui.link(1, 0, 11, "model")
    ui.link(1, 1, 11, "clip")
    ui.link(11, 0, 10, "")
    ui.link(10, 0, 5, "model")
    ui.link(11, 1, 2, "clip")
    ui.link(11, 1, 3, "clip")
    ui.link(2, 0, 5, "positive")
    ui.link(3, 0, 5, "negative")
    ui.link(9, 0, 4, "width", widget=True)
    ui.link(4, 0, 5, "latent_image")
    ui.link(5, 0, 6, "samples")
    ui.link(1, 2, 6, "vae")
    ui.link(6, 0, 7, "images")
    ui.link(6, 0, 12, "images")
    return ui


def test_converts_a_hand_made_ui_graph_as_the_frontend_would() -> None:
    graph = convert(txt2img().to_json())
    assert graph == {
        "1": {
            "inputs": {"ckpt_name": "sd_xl_base_1.0.safetensors"},
            "class_type": "CheckpointLoaderSimple",
            "_meta": {"title": "Load Checkpoint"},
        },
        "2": {
            "inputs": {"text": "a fox", "clip": ["1", 1]},
            "class_type": "CLIPTextEncode",
            "_meta": {"title": "Positive"},
        },
        "3": {
            "inputs": {"text": "blurry", "clip": ["1", 1]},
            "class_type": "CLIPTextEncode",
            "_meta": {"title": "CLIP Text Encode (Prompt)"},
        },
        "4": {
            "inputs": {"width": 768, "height": 512, "batch_size": 2},
            "class_type": "EmptyLatentImage",
            "_meta": {"title": "Empty Latent Image"},
        },
        "5": {
            "inputs": {
                "seed": 42,
                "steps": 20,
                "cfg": 7.5,
                "sampler_name": "euler",
                "scheduler": "normal",
                "denoise": 1.0,
                "model": ["1", 0],
                "positive": ["2", 0],
                "negative": ["3", 0],
                "latent_image": ["4", 0],
            },
            "class_type": "KSampler",
            "_meta": {"title": "KSampler"},
        },
        "6": {
            "inputs": {"samples": ["5", 0], "vae": ["1", 2]},
            "class_type": "VAEDecode",
            "_meta": {"title": "VAE Decode"},
        },
        "7": {
            "inputs": {"filename_prefix": "fox", "images": ["6", 0]},
            "class_type": "SaveImage",
            "_meta": {"title": "Save Image"},
        },
    }
    problems = validate(graph, object_info())
    assert [(p.node_id, p.kind) for p in problems] == [("1", "model_missing")]


def test_old_files_saved_the_seed_control_as_a_boolean() -> None:
    ui = txt2img()
    ui.node(5)["widgets_values"] = [7, True, 30, 8, "euler", "normal", 1]
    assert convert(ui.to_json())["5"]["inputs"]["steps"] == 30


def test_a_widget_with_no_saved_value_takes_its_default() -> None:
    ui = txt2img()
    del ui.node(7)["widgets_values"]
    assert convert(ui.to_json())["7"]["inputs"]["filename_prefix"] == "ComfyUI"


def test_a_bypassed_node_passes_the_input_of_its_output_type() -> None:
    ui = UiGraph()
    ui.add(1, "LoadImage", ["cat.png", "image"])
    ui.add(2, "UpscaleModelLoader", ["4x.pth"])
    ui.add(3, "ImageUpscaleWithModel", mode=4)
    ui.add(4, "SaveImage", ["up"])
    ui.link(2, 0, 3, "upscale_model")
    ui.link(1, 0, 3, "image")
    ui.link(3, 0, 4, "images")
    graph = convert(ui.to_json())
    assert graph["4"]["inputs"]["images"] == ["1", 0]
    assert set(graph) == {"1", "4"}  # the loader fed only the bypassed node
    assert graph["1"]["inputs"] == {"image": "cat.png"}


def prompt_subgraph(sub_id: str, inner: UiGraph) -> dict[str, Any]:
    """A subgraph taking CLIP and a promoted text widget, giving CONDITIONING."""
    return {
        "id": sub_id,
        "name": "Prompt",
        "inputs": [{"name": "clip", "type": "CLIP"}, {"name": "text", "type": "STRING"}],
        "outputs": [{"name": "CONDITIONING", "type": "CONDITIONING"}],
        "nodes": inner.nodes,
        "links": [
            {"id": n, "origin_id": o, "origin_slot": os, "target_id": t, "target_slot": ts}
            for n, o, os, t, ts, _ in inner.links
        ],
    }


def test_subgraphs_expand_with_outer_inner_ids_and_promoted_widgets() -> None:
    ui = txt2img()
    sub_id = "7d1c2a9e-1b8e-4c7e-9d3a-0a8f8d6f2c11"
    inner = UiGraph()
    inner.add(4, "CLIPTextEncode", ["inner text"])
    inner.add(-10, "X", outputs=["CLIP", "STRING"])
    inner.add(-20, "X", outputs=[])
    inner.link(-10, 0, 4, "clip")
    inner.link(-10, 1, 4, "text", widget=True)
    inner.link(4, 0, -20, "CONDITIONING")
    inner.nodes = [n for n in inner.nodes if n["id"] > 0]
    ui.subgraphs.append(prompt_subgraph(sub_id, inner))
    ui.add(20, sub_id, ["from the instance"], outputs=["CONDITIONING"])
    ui.links = [link for link in ui.links if link[3] != 5 or link[4] != 1]
    ui.node(5)["inputs"] = [e for e in ui.node(5)["inputs"] if e["name"] != "positive"]
    ui.link(1, 1, 20, "clip")
    ui.link(20, 0, 5, "positive")
    graph = convert(ui.to_json())
    assert graph["20:4"]["inputs"] == {"text": "from the instance", "clip": ["1", 1]}
    assert graph["5"]["inputs"]["positive"] == ["20:4", 0]
    assert "20" not in graph
    assert [str(p) for p in detect_points(graph)["prompt"]] == ["20:4.text"]


def test_links_in_a_loop_are_an_error() -> None:
    ui = UiGraph()
    ui.add(1, "Reroute", outputs=["IMAGE"])
    ui.add(2, "Reroute", outputs=["IMAGE"])
    ui.add(3, "SaveImage", ["x"])
    ui.link(1, 0, 2, "")
    ui.link(2, 0, 1, "")
    ui.link(2, 0, 3, "images")
    with pytest.raises(WorkflowFormatError, match=r"test\.json: links go round in a loop"):
        convert(ui.to_json())


FAMILIES: dict[str, str] = json.loads((FIXTURES / "templates" / "index.json").read_text())
# Templates that need node classes the recorded 0.3.64 server lacks (audio nodes, custom packs).
NEEDS_MORE_NODES = {"video_humo", "video_wan2_2_14B_animate", "video_wan2_2_14B_s2v"}


def test_official_image_and_video_templates_convert_to_valid_graphs() -> None:
    invalid = {}
    for name in FAMILIES:
        graph = convert_ui(template(name), object_info(), f"{name}.json")
        problems = [p for p in validate(graph, object_info()) if p.kind != "model_missing"]
        if problems:
            invalid[name] = {p.kind for p in problems}
    assert invalid == {name: {"unknown_class"} for name in NEEDS_MORE_NODES}
    assert 1 - len(invalid) / len(FAMILIES) >= 0.9
    assert len(FAMILIES) == 92


def test_refiner_template_pushes_primitive_values_and_keeps_the_refiner_seed() -> None:
    graph = convert_ui(template("sdxl_refiner_prompt_example"), object_info(), "refiner.json")
    base, refiner = graph["10"]["inputs"], graph["11"]["inputs"]
    assert (base["steps"], base["end_at_step"], base["noise_seed"]) == (25, 20, 6767725640732)
    assert (refiner["steps"], refiner["start_at_step"], refiner["add_noise"]) == (25, 20, "disable")
    assert [str(p) for p in detect_points(graph)["seed"]] == ["10.noise_seed"]


def test_template_subgraph_instance_gives_its_promoted_widget() -> None:
    graph = convert_ui(template("flux1_dev_uso_reference_image_gen"), object_info(), "uso.json")
    assert graph["55:52"]["inputs"]["crop"] == "center"
    assert graph["57:35"]["inputs"]["guidance"] == 3.5


def test_converter_caches_by_content_and_hands_out_copies() -> None:
    converter = UiConverter(object_info())
    first = converter.convert(txt2img().to_json(), "a.json")
    first["2"]["inputs"]["text"] = "changed"
    again = converter.convert(copy.deepcopy(txt2img().to_json()), "b.json")
    assert again["2"]["inputs"]["text"] == "a fox"
    assert converter.cache_size == 1


def test_library_converts_ui_files_only_with_a_converter(tmp_path: Path) -> None:
    (tmp_path / "fox.json").write_text(json.dumps(txt2img().to_json()))
    workflow = WorkflowLibrary.load(tmp_path, UiConverter(object_info())).get("fox")
    assert workflow.source_format == "ui"
    assert [str(p) for p in workflow.points["prompt"]] == ["2.text"]
    without = WorkflowLibrary.load(tmp_path)
    assert "reachable ComfyUI server" in without.errors["fox"].user_message
    with pytest.raises(WorkflowFormatError, match="Export"):
        load_workflow(tmp_path / "fox.json")


def test_a_legacy_group_node_is_refused_with_what_to_do() -> None:
    ui = txt2img()
    ui.add(30, "workflow>Upscale group", [2.0], outputs=["IMAGE"])
    ui.link(6, 0, 30, "images")
    ui.link(30, 0, 7, "images")
    with pytest.raises(
        WorkflowFormatError, match=r"node 30 is a group node.*convert it to a subgraph"
    ):
        convert(ui.to_json())


def test_only_converted_files_are_read_by_type(tmp_path: Path) -> None:
    """An API file's points never depend on whether a server answered."""
    api = convert(txt2img().to_json())
    api["2"] = {"class_type": "PackEncoder", "inputs": {"words": "a fox", "clip": ["1", 1]}}
    (tmp_path / "api.json").write_text(json.dumps(api))
    info = {
        **object_info(),
        "PackEncoder": {
            "input": {"required": {"clip": ["CLIP"], "words": ["STRING", {"multiline": True}]}},
            "output": ["CONDITIONING"],
        },
    }
    ui = txt2img()
    ui.node(2)["type"] = "PackEncoder"
    ui.node(2)["widgets_values"] = ["a fox"]
    (tmp_path / "ui.json").write_text(json.dumps(ui.to_json()))
    library = WorkflowLibrary.load(tmp_path, UiConverter(info))
    assert library.get("api").points["prompt"] == ()
    assert [str(p) for p in library.get("ui").points["prompt"]] == ["2.words"]
