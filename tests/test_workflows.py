"""Workflows: loading, patch point detection, sidecars, with_inputs, validation (pure)."""

from __future__ import annotations

import copy
import functools
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from bot.errors import BotError
from bot.workflows.detect import detect_points
from bot.workflows.library import (
    KEYS,
    PatchPoint,
    SidecarError,
    UnknownWorkflow,
    Workflow,
    WorkflowError,
    WorkflowFormatError,
    WorkflowInputError,
    WorkflowLibrary,
    WorkflowNotFound,
    load_workflow,
    validate,
)

WORKFLOWS = Path(__file__).resolve().parents[1] / "workflows"
OBJECT_INFO = Path(__file__).resolve().parent / "fixtures" / "object_info.json"


@functools.cache
def object_info() -> dict[str, Any]:
    info: dict[str, Any] = json.loads(OBJECT_INFO.read_text(encoding="utf-8"))
    return info


@functools.cache
def shipped(name: str) -> Workflow:
    return load_workflow(WORKFLOWS / f"{name}.json")


def node(class_type: str, title: str | None = None, **inputs: Any) -> dict[str, Any]:
    built: dict[str, Any] = {"inputs": inputs, "class_type": class_type}
    if title is not None:
        built["_meta"] = {"title": title}
    return built


def write(directory: Path, name: str, graph: Any, sidecar: str | None = None) -> Path:
    path = directory / f"{name}.json"
    path.write_text(graph if isinstance(graph, str) else json.dumps(graph, indent=2))
    if sidecar is not None:
        path.with_suffix(".toml").write_text(sidecar)
    return path


def points(workflow_points: Any) -> dict[str, list[str]]:
    """Patch points as {"key": ["node.input", ...]} for the keys that have any."""
    return {key: [str(p) for p in found] for key, found in workflow_points.items() if found}


def changed_inputs(before: dict[str, Any], after: dict[str, Any]) -> set[tuple[str, str]]:
    """Return the (node, input) pairs whose value differs; nothing else may differ."""
    assert before.keys() == after.keys()
    changed = set()
    for node_id, old in before.items():
        new = after[node_id]
        assert {k: v for k, v in old.items() if k != "inputs"} == {
            k: v for k, v in new.items() if k != "inputs"
        }
        assert old["inputs"].keys() == new["inputs"].keys()
        changed |= {
            (node_id, name) for name, value in old["inputs"].items() if new["inputs"][name] != value
        }
    return changed


def snapshot(workflow: Workflow) -> str:
    return json.dumps(dict(workflow.graph), sort_keys=True)


def targets(workflow: Workflow, *keys: str) -> set[tuple[str, str]]:
    return {(p.node_id, p.input_name) for key in keys for p in workflow.points[key]}


# A Flux-style graph: SamplerCustomAdvanced, a ConditioningCombine and a ControlNetApplyAdvanced
# between the encoders and the guider.
CUSTOM_ADVANCED = {
    "1": node("CheckpointLoaderSimple", ckpt_name="flux.safetensors"),
    "2": node("CLIPTextEncode", "Subject", text="a cat", clip=["1", 1]),
    "3": node("CLIPTextEncode", "Style", text="watercolor", clip=["1", 1]),
    "4": node("ConditioningCombine", conditioning_1=["2", 0], conditioning_2=["3", 0]),
    "5": node("CLIPTextEncode", "Negative", text="blurry", clip=["1", 1]),
    "6": node(
        "ControlNetApplyAdvanced",
        positive=["4", 0],
        negative=["5", 0],
        control_net=["15", 0],
        image=["16", 0],
        strength=0.8,
        start_percent=0.0,
        end_percent=1.0,
    ),
    "7": node("RandomNoise", noise_seed=42),
    "8": node("KSamplerSelect", sampler_name="euler"),
    "9": node("BasicScheduler", scheduler="simple", steps=30, denoise=1.0, model=["1", 0]),
    "10": node("EmptySD3LatentImage", width=1024, height=768, batch_size=1),
    "11": node("CFGGuider", cfg=5.5, model=["1", 0], positive=["6", 0], negative=["6", 1]),
    "12": node(
        "SamplerCustomAdvanced",
        noise=["7", 0],
        guider=["11", 0],
        sampler=["8", 0],
        sigmas=["9", 0],
        latent_image=["10", 0],
    ),
    "13": node("VAEDecode", samples=["12", 0], vae=["1", 2]),
    "14": node("SaveImage", filename_prefix="flux", images=["13", 0]),
    "15": node("ControlNetLoader", control_net_name="canny.safetensors"),
    "16": node("LoadImage", image="pose.png"),
}

# SDXL base + refiner: two KSamplerAdvanced; the base one has the higher id.
BASE_AND_REFINER = {
    "1": node("CheckpointLoaderSimple", ckpt_name="refiner.safetensors"),
    "2": node(
        "KSamplerAdvanced",
        add_noise="disable",
        noise_seed=7,
        steps=30,
        cfg=6.0,
        sampler_name="euler",
        scheduler="normal",
        start_at_step=24,
        end_at_step=10000,
        return_with_leftover_noise="disable",
        model=["1", 0],
        positive=["3", 0],
        negative=["4", 0],
        latent_image=["10", 0],
    ),
    "3": node("CLIPTextEncode", text="refiner positive", clip=["1", 1]),
    "4": node("CLIPTextEncode", text="refiner negative", clip=["1", 1]),
    "5": node("CheckpointLoaderSimple", ckpt_name="base.safetensors"),
    "6": node(
        "CLIPTextEncodeSDXL",
        text_g="base positive g",
        text_l="base positive l",
        width=1024,
        height=1024,
        crop_w=0,
        crop_h=0,
        target_width=1024,
        target_height=1024,
        clip=["5", 1],
    ),
    "7": node("CLIPTextEncode", text="base negative", clip=["5", 1]),
    "8": node("EmptyLatentImage", width=1024, height=1024, batch_size=2),
    "10": node(
        "KSamplerAdvanced",
        add_noise="enable",
        noise_seed=7,
        steps=30,
        cfg=8.0,
        sampler_name="euler",
        scheduler="normal",
        start_at_step=0,
        end_at_step=24,
        return_with_leftover_noise="enable",
        model=["5", 0],
        positive=["6", 0],
        negative=["7", 0],
        latent_image=["8", 0],
    ),
    "11": node("VAEDecode", samples=["2", 0], vae=["1", 2]),
    "12": node("SaveImage", filename_prefix="sdxl", images=["11", 0]),
}


# --- detection -------------------------------------------------------------------------------


def test_detects_txt2img_points() -> None:
    assert points(detect_points(shipped("txt2img").graph)) == {
        "prompt": ["6.text"],
        "negative": ["7.text"],
        "seed": ["3.seed"],
        "steps": ["3.steps"],
        "cfg": ["3.cfg"],
        "denoise": ["3.denoise"],
        "width": ["5.width"],
        "height": ["5.height"],
        "batch_size": ["5.batch_size"],
        "checkpoint": ["4.ckpt_name"],
    }


def test_detects_img2img_points() -> None:
    workflow = shipped("img2img")
    assert points(workflow.points) == {
        "prompt": ["6.text"],
        "negative": ["7.text"],
        "seed": ["3.seed"],
        "steps": ["3.steps"],
        "cfg": ["3.cfg"],
        "denoise": ["3.denoise"],
        "checkpoint": ["4.ckpt_name"],
        "image": ["1.image"],
    }
    assert workflow.graph["3"]["inputs"]["denoise"] == 0.6
    assert workflow.image_inputs == 1
    assert not workflow.has("width")


def test_detects_demo_points_and_has_no_prompt() -> None:
    workflow = shipped("demo")
    assert points(workflow.points) == {"image": ["1.image"]}
    assert set(workflow.points) == set(KEYS)
    assert not workflow.has("prompt")
    assert workflow.has("image")


def test_detects_sampler_custom_advanced_through_conditioning_nodes() -> None:
    assert points(detect_points(CUSTOM_ADVANCED)) == {
        "prompt": ["2.text", "3.text"],
        "negative": ["5.text"],
        "seed": ["7.noise_seed"],
        "steps": ["9.steps"],
        "cfg": ["11.cfg"],
        "denoise": ["9.denoise"],
        "width": ["10.width"],
        "height": ["10.height"],
        "batch_size": ["10.batch_size"],
        "checkpoint": ["1.ckpt_name"],
        "image": ["16.image"],
    }


def test_detects_ksampler_advanced_base_before_refiner() -> None:
    assert points(detect_points(BASE_AND_REFINER)) == {
        "prompt": ["3.text", "6.text_g", "6.text_l"],
        "negative": ["4.text", "7.text"],
        "seed": ["10.noise_seed"],
        "steps": ["10.steps"],
        "cfg": ["10.cfg"],
        "width": ["8.width"],
        "height": ["8.height"],
        "batch_size": ["8.batch_size"],
        "checkpoint": ["5.ckpt_name"],
    }


def test_detects_sampler_custom_and_values_in_primitive_nodes() -> None:
    graph = {
        "1": node("PrimitiveStringMultiline", value="a fox"),
        "2": node("CLIPTextEncode", text=["1", 0], clip=["9", 1]),
        "3": node("CLIPTextEncode", text="ugly", clip=["9", 1]),
        "4": node("PrimitiveInt", value=123),
        "5": node(
            "SamplerCustom",
            add_noise=True,
            noise_seed=["4", 0],
            cfg=4.0,
            model=["9", 0],
            positive=["2", 0],
            negative=["3", 0],
            sampler=["6", 0],
            sigmas=["7", 0],
            latent_image=["8", 0],
        ),
        "6": node("KSamplerSelect", sampler_name="euler"),
        "7": node("KarrasScheduler", steps=12, sigma_max=14.6, sigma_min=0.03, rho=7.0),
        "8": node("EmptyLatentImage", width=512, height=512, batch_size=1),
        "9": node("CheckpointLoaderSimple", ckpt_name="sd15.safetensors"),
    }
    found = points(detect_points(graph))
    assert found["prompt"] == ["1.value"]
    assert found["seed"] == ["4.value"]
    assert found["steps"] == ["7.steps"]
    assert found["cfg"] == ["5.cfg"]
    assert "denoise" not in found


def test_negative_made_from_the_positive_is_not_a_negative_prompt() -> None:
    graph = copy.deepcopy(CUSTOM_ADVANCED)
    graph["17"] = node("ConditioningZeroOut", conditioning=["4", 0])
    graph["6"]["inputs"]["negative"] = ["17", 0]
    found = points(detect_points(graph))
    assert found["prompt"] == ["2.text", "3.text"]
    assert "negative" not in found


# --- loading errors --------------------------------------------------------------------------


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(WorkflowNotFound, match=r"nope\.json"):
        load_workflow(tmp_path / "nope.json")


def test_invalid_json_names_line_and_column(tmp_path: Path) -> None:
    path = write(tmp_path, "broken", '{\n  "3": {\n    "inputs": {,\n')
    with pytest.raises(WorkflowFormatError, match=r"broken\.json.*line 3, column 16") as info:
        load_workflow(path)
    assert isinstance(info.value, BotError)
    assert "line 3" in info.value.user_message


def test_ui_format_says_to_export_api(tmp_path: Path) -> None:
    path = write(tmp_path, "ui", {"last_node_id": 9, "nodes": [], "links": [], "version": 0.4})
    with pytest.raises(WorkflowFormatError, match=r"ui\.json.*Export \(API\)"):
        load_workflow(path)


@pytest.mark.parametrize(
    "graph",
    [[1, 2], {}, {"3": {"inputs": {}}}, {"3": {"class_type": "KSampler", "inputs": []}}, {"3": 1}],
)
def test_not_a_mapping_of_nodes(tmp_path: Path, graph: Any) -> None:
    with pytest.raises(WorkflowFormatError, match=r"odd\.json"):
        load_workflow(write(tmp_path, "odd", graph))


# --- sidecars --------------------------------------------------------------------------------


def test_sidecar_title_based_patch_point(tmp_path: Path) -> None:
    graph = dict(shipped("txt2img").graph)
    graph["20"] = node("PrimitiveString", "Style.Suffix", value="oil")
    sidecar = """
name = "Styled"
description = "with a style"
backends = ["big-gpu", "small"]
[patch]
prompt = ["title:Positive Prompt.text", "title:Style.Suffix.value"]
seed = "3.seed"
"""
    workflow = load_workflow(write(tmp_path, "styled", graph, sidecar))
    assert workflow.points["prompt"] == (PatchPoint("6", "text"), PatchPoint("20", "value"))
    assert (workflow.display_name, workflow.description) == ("Styled", "with a style")
    assert workflow.backends == ("big-gpu", "small")
    filled = workflow.with_inputs({"prompt": "dog"})
    assert filled["6"]["inputs"]["text"] == filled["20"]["inputs"]["value"] == "dog"


@pytest.mark.parametrize(
    ("sidecar", "match"),
    [
        ('[patch]\nprompt = "99.text"', "no node '99'"),
        ('[patch]\nprompt = "6.txt"', "has no input 'txt'"),
        ('[patch]\nprompt = "title:Nope.text"', "no node is titled 'Nope'"),
        ('[patch]\nprompt = "sixtext"', "must look like"),
        ('[patch]\nprompts = "6.text"', "unknown keys"),
        ("[defaults]\nsteps = 100\n[ranges]\nsteps = [1, 60]", "between 1 and 60"),
        ('[defaults]\nsteps = "many"', "number"),
        ("[ranges]\nsteps = [60, 1]", "low, high"),
        ('nmae = "typo"', "unknown keys"),
        ("name = [", "invalid TOML"),
    ],
)
def test_sidecar_errors_name_the_file(tmp_path: Path, sidecar: str, match: str) -> None:
    path = write(tmp_path, "wf", dict(shipped("txt2img").graph), sidecar)
    with pytest.raises(SidecarError, match=match) as info:
        load_workflow(path)
    assert "wf.toml" in str(info.value)


def test_sidecar_ambiguous_title(tmp_path: Path) -> None:
    graph = copy.deepcopy(dict(shipped("txt2img").graph))
    graph["7"]["_meta"]["title"] = "Positive Prompt"
    path = write(tmp_path, "wf", graph, '[patch]\nprompt = "title:Positive Prompt.text"')
    with pytest.raises(SidecarError, match="2 nodes"):
        load_workflow(path)


def test_sidecar_default_with_no_place(tmp_path: Path) -> None:
    path = write(tmp_path, "wf", dict(shipped("demo").graph), "[defaults]\nsteps = 20")
    with pytest.raises(SidecarError, match=r"wf\.toml.*steps has no place"):
        load_workflow(path)


def test_sidecar_empty_patch_list_disables_a_key(tmp_path: Path) -> None:
    path = write(tmp_path, "wf", dict(shipped("txt2img").graph), "[patch]\nnegative = []")
    workflow = load_workflow(path)
    assert not workflow.has("negative")
    with pytest.raises(WorkflowInputError, match="no place for negative"):
        workflow.with_inputs({"negative": "x"})


# --- with_inputs -----------------------------------------------------------------------------


def test_with_inputs_applies_defaults_then_values() -> None:
    workflow = shipped("txt2img")
    graph = workflow.with_inputs({"prompt": "a cat", "seed": 9, "cfg": 3, "negative": None})
    assert graph["6"]["inputs"]["text"] == "a cat"
    assert graph["3"]["inputs"]["seed"] == 9
    assert graph["3"]["inputs"]["cfg"] == 3.0
    assert graph["3"]["inputs"]["steps"] == 25
    assert graph["7"]["inputs"]["text"] == workflow.defaults["negative"]
    assert graph["4"]["inputs"]["ckpt_name"] == "sd_xl_base_1.0.safetensors"


def test_with_inputs_sets_images_and_overrides() -> None:
    graph = shipped("img2img").with_inputs(
        {"denoise": 0.4},
        images=["upload (1).png"],
        overrides={("9", "filename_prefix"): "mine", ("2", "megapixels"): 0.5},
    )
    assert graph["1"]["inputs"]["image"] == "upload (1).png"
    assert graph["3"]["inputs"]["denoise"] == 0.4
    assert graph["9"]["inputs"]["filename_prefix"] == "mine"
    assert graph["2"]["inputs"]["megapixels"] == 0.5


def test_demo_ignores_prompt_but_refuses_what_it_cannot_use() -> None:
    workflow = shipped("demo")
    graph = workflow.with_inputs({"prompt": "ignored"}, images=["in.png"])
    assert changed_inputs(dict(workflow.graph), graph) == {("1", "image")}
    with pytest.raises(WorkflowInputError, match=r"demo\.json.*no place for seed"):
        workflow.with_inputs({"prompt": "x", "seed": 1})


@pytest.mark.parametrize(
    ("name", "kwargs", "match"),
    [
        ("txt2img", {"images": ["a.png"]}, "takes 0 input images, got 1"),
        ("img2img", {"images": ["a.png", "b.png"]}, "takes 1 input image, got 2"),
        ("img2img", {"images": "a.png"}, "list of file names"),
        ("img2img", {"images": [""]}, "bad image file name"),
        ("img2img", {"values": {"width": 512}}, "no place for width"),
        ("txt2img", {"values": {"image": "a.png"}}, "images="),
        ("txt2img", {"values": {"sampler": "euler"}}, "not a workflow input"),
        ("txt2img", {"values": {"steps": 61}}, "between 1 and 60"),
        ("txt2img", {"values": {"cfg": 0.5}}, "between 1 and 20"),
        ("txt2img", {"values": {"cfg": float("nan")}}, "finite number"),
        ("txt2img", {"values": {"steps": 2.5}}, "whole number"),
        ("txt2img", {"values": {"steps": True}}, "number"),
        ("txt2img", {"values": {"seed": -1}}, "between 0 and 18446744073709551615"),
        ("txt2img", {"values": {"prompt": 5}}, "must be text"),
        ("img2img", {"values": {"denoise": 0.0}}, "between 0.05 and 1"),
        ("txt2img", {"overrides": {("99", "text"): "x"}}, "no node '99'"),
        ("txt2img", {"overrides": {("6", "txt"): "x"}}, "has no input 'txt'"),
        ("txt2img", {"overrides": {("6", "text"): object()}}, "not a JSON value"),
    ],
)
def test_with_inputs_refuses(name: str, kwargs: dict[str, Any], match: str) -> None:
    workflow = shipped(name)
    before = snapshot(workflow)
    with pytest.raises(WorkflowInputError, match=match) as info:
        workflow.with_inputs(**kwargs)
    assert f"{name}.json" in info.value.user_message
    assert snapshot(workflow) == before


def test_with_inputs_fills_every_image_point_in_order(tmp_path: Path) -> None:
    graph = dict(shipped("demo").graph)
    graph["10"] = node("LoadImage", image="b.png")
    graph["5"] = node("ImageCompositeMasked", destination=["1", 0], source=["10", 0], x=0, y=0)
    workflow = load_workflow(write(tmp_path, "two", graph))
    assert workflow.image_inputs == 2
    filled = workflow.with_inputs(images=["first.png", "second.png"])
    assert (filled["1"]["inputs"]["image"], filled["10"]["inputs"]["image"]) == (
        "first.png",
        "second.png",
    )


def test_results_are_independent_copies() -> None:
    workflow = shipped("txt2img")
    first = workflow.with_inputs({"prompt": "one"})
    first["6"]["inputs"]["clip"].append("mutated")
    first["3"]["inputs"]["seed"] = -5
    assert workflow.with_inputs({"prompt": "one"}) != first
    assert workflow.graph["6"]["inputs"]["clip"] == ["4", 1]
    with pytest.raises(TypeError):
        workflow.graph["3"] = {}  # type: ignore[index]


def test_summary() -> None:
    summary = shipped("img2img").summary()
    assert summary.nodes["CLIPTextEncode"] == 2
    assert summary.nodes["LoadImage"] == 1
    assert summary.image_inputs == 1
    assert "width" not in summary.points
    assert summary.points["seed"] == (PatchPoint("3", "seed"),)
    assert summary.display_name == "SDXL image to image"


# --- library ---------------------------------------------------------------------------------


def test_library_keeps_errors_per_file(tmp_path: Path) -> None:
    write(tmp_path, "good", dict(shipped("demo").graph))
    write(tmp_path, "bad", "{")
    (tmp_path / "orphan.toml").write_text('name = "alone"')
    library = WorkflowLibrary.load(tmp_path)
    assert library.names() == ["good"]
    assert len(library) == 1
    assert [w.name for w in library] == ["good"]
    assert "good" in library
    assert isinstance(library.errors["bad"], WorkflowFormatError)
    assert isinstance(library.errors["orphan"], SidecarError)
    with pytest.raises(WorkflowFormatError, match=r"bad\.json"):
        library.get("bad")
    with pytest.raises(UnknownWorkflow, match="Available: good") as info:
        library.get("nope")
    assert isinstance(info.value, WorkflowError)


def test_library_resolve_name_or_path(tmp_path: Path) -> None:
    library = WorkflowLibrary.load(WORKFLOWS)
    assert library.resolve("demo") is library.get("demo")
    path = write(tmp_path, "elsewhere", dict(shipped("demo").graph))
    assert library.resolve(str(path)).name == "elsewhere"
    with pytest.raises(WorkflowNotFound):
        library.resolve(str(tmp_path / "missing.json"))
    with pytest.raises(UnknownWorkflow, match="demo, img2img, txt2img"):
        library.resolve("missing")


def test_library_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(WorkflowNotFound, match="nowhere"):
        WorkflowLibrary.load(tmp_path / "nowhere")


# --- validate --------------------------------------------------------------------------------


def test_validate_reports_every_problem_at_once() -> None:
    graph = copy.deepcopy(dict(shipped("txt2img").graph))
    graph["3"]["inputs"]["steps"] = 0
    graph["3"]["inputs"]["cfg"] = 101.0
    graph["3"]["inputs"]["sampler_name"] = "warp_drive"
    graph["8"]["inputs"]["vae"] = ["42", 2]
    graph["20"] = node("FancyUpscaler", image=["8", 0])
    del graph["9"]["inputs"]["filename_prefix"]
    problems = validate(graph, object_info())
    found = {(p.node_id, p.input_name, p.kind) for p in problems}
    assert found == {
        ("3", "steps", "out_of_range"),
        ("3", "cfg", "out_of_range"),
        ("3", "sampler_name", "not_in_list"),
        ("4", "ckpt_name", "model_missing"),
        ("8", "vae", "bad_link"),
        ("9", "filename_prefix", "missing_input"),
        ("20", None, "unknown_class"),
    }
    by_kind = {p.kind: p for p in problems}
    assert by_kind["unknown_class"].class_type == "FancyUpscaler"
    assert "not installed" in by_kind["unknown_class"].message
    assert "sd_xl_base_1.0.safetensors" in by_kind["model_missing"].message
    assert "minimum 1" in str(by_kind["out_of_range"]) or "maximum" in str(by_kind["out_of_range"])
    assert "node 8 (VAEDecode) vae: links to node 42" in str(by_kind["bad_link"])


def test_validate_model_in_list_and_bad_output_index() -> None:
    info = copy.deepcopy(object_info())
    info["CheckpointLoaderSimple"]["input"]["required"]["ckpt_name"] = [
        ["sd_xl_base_1.0.safetensors"]
    ]
    assert validate(shipped("txt2img").graph, info) == []
    graph = copy.deepcopy(dict(shipped("txt2img").graph))
    graph["8"]["inputs"]["vae"] = ["4", 3]
    graph["4"]["inputs"]["ckpt_name"] = "other.ckpt"
    kinds = [(p.node_id, p.kind) for p in validate(graph, info)]
    assert kinds == [("4", "model_missing"), ("8", "bad_link")]


def test_validate_accepts_uploaded_image_names_and_new_style_combos() -> None:
    graph = shipped("img2img").with_inputs(images=["just uploaded.png"])
    assert [p.kind for p in validate(graph, object_info())] == ["model_missing"]
    graph["2"]["inputs"]["upscale_method"] = "magic"
    problems = validate(graph, object_info())
    assert [(p.node_id, p.kind) for p in problems] == [("2", "not_in_list"), ("4", "model_missing")]


@pytest.mark.parametrize(
    ("entry", "input_name", "kind"),
    [
        ({"inputs": {}}, None, "malformed"),
        (node("SamplerCustom", add_noise="yes"), "add_noise", "wrong_type"),
        (node("SaveImage", filename_prefix=5, images=["8", 0]), "filename_prefix", "wrong_type"),
        (node("SaveImage", filename_prefix="x", images=["8"]), "images", "bad_link"),
        (node("EmptyLatentImage", width="wide", height=512, batch_size=1), "width", "wrong_type"),
        (node("EmptyLatentImage", width=512.5, height=512, batch_size=1), "width", "wrong_type"),
    ],
)
def test_validate_value_types(entry: dict[str, Any], input_name: str | None, kind: str) -> None:
    graph = {**shipped("txt2img").graph, "30": entry}
    found = {(p.input_name, p.kind) for p in validate(graph, object_info()) if p.node_id == "30"}
    assert (input_name, kind) in found


# --- invariants over the shipped workflows ----------------------------------------------------


@pytest.mark.parametrize("path", sorted(WORKFLOWS.glob("*.json")), ids=lambda p: p.name)
def test_every_shipped_workflow_loads_and_is_api_format(path: Path) -> None:
    workflow = load_workflow(path)
    raw = json.loads(path.read_text(encoding="utf-8"))
    assert raw == dict(workflow.graph)
    for node_id, entry in raw.items():
        assert node_id.isdigit()
        assert isinstance(entry["class_type"], str)
        assert isinstance(entry["inputs"], dict)
        assert isinstance(entry["_meta"]["title"], str)
    problems = validate(workflow.graph, object_info())
    assert all(p.kind == "model_missing" for p in problems), problems
    filled = workflow.with_inputs({"prompt": "a test"}, images=["x.png"] * workflow.image_inputs)
    assert all(p.kind == "model_missing" for p in validate(filled, object_info()))


def test_shipped_library_is_complete() -> None:
    library = WorkflowLibrary.load(WORKFLOWS)
    assert library.names() == ["demo", "img2img", "txt2img", "upscale"]
    assert dict(library.errors) == {}
    assert sorted(p.stem for p in WORKFLOWS.glob("*.toml")) == library.names()


def test_demo_needs_no_model() -> None:
    assert validate(shipped("demo").graph, object_info()) == []
    assert not any("Loader" in node["class_type"] for node in shipped("demo").graph.values())


def test_upscale_is_a_model_free_2x_of_one_image() -> None:
    upscale = shipped("upscale")
    assert validate(upscale.graph, object_info()) == []
    assert upscale.image_inputs == 1
    classes = sorted(node["class_type"] for node in upscale.graph.values())
    assert classes == ["ImageScaleBy", "LoadImage", "SaveImage"]
    assert upscale.graph["2"]["inputs"]["scale_by"] == 2.0


# --- properties ------------------------------------------------------------------------------

NASTY_TEXTS = [
    "",
    "\"quoted\" and 'single' {braces} {{prompt}} ${x} %s \\",
    '", "seed": 0, "x": "',
    "line one\nline two\r\n\ttabbed\x00nul",
    "🎨 émoji 👩‍🎨 café 日本語 \u202e",
    "\ud800 lone surrogate",
    "x" * 10_000,
]


def _check_prompt_round_trip(name: str, text: str) -> None:
    workflow = shipped(name)
    before = snapshot(workflow)
    graph = workflow.with_inputs({"prompt": text})
    assert json.loads(json.dumps(graph)) == graph
    assert json.loads(json.dumps(graph, ensure_ascii=False)) == graph
    assert changed_inputs(dict(workflow.graph), graph) <= targets(
        workflow, "prompt", *workflow.defaults
    )
    for point in workflow.points["prompt"]:
        assert graph[point.node_id]["inputs"][point.input_name] == text
    assert snapshot(workflow) == before


@settings(max_examples=150, deadline=None)
@given(text=st.text(), name=st.sampled_from(["txt2img", "img2img", "demo"]))
def test_any_prompt_text_round_trips(text: str, name: str) -> None:
    _check_prompt_round_trip(name, text)


@pytest.mark.parametrize("text", NASTY_TEXTS, ids=range(len(NASTY_TEXTS)))
@pytest.mark.parametrize("name", ["txt2img", "img2img", "demo"])
def test_nasty_prompt_texts_round_trip(text: str, name: str) -> None:
    _check_prompt_round_trip(name, text)


@settings(max_examples=100, deadline=None)
@given(
    prompt=st.text(),
    negative=st.text(),
    seed=st.integers(0, 2**64 - 1),
    steps=st.integers(1, 60),
    cfg=st.floats(1.0, 20.0),
    width=st.integers(64, 256).map(lambda n: n * 8),
    batch_size=st.integers(1, 4),
)
@example(prompt="{", negative="}", seed=2**64 - 1, steps=60, cfg=20.0, width=2048, batch_size=4)
def test_only_targeted_inputs_change(
    prompt: str, negative: str, seed: int, steps: int, cfg: float, width: int, batch_size: int
) -> None:
    workflow = shipped("txt2img")
    before = snapshot(workflow)
    values = {
        "prompt": prompt,
        "negative": negative,
        "seed": seed,
        "steps": steps,
        "cfg": cfg,
        "width": width,
        "batch_size": batch_size,
    }
    graph = workflow.with_inputs(values)
    assert json.loads(json.dumps(graph)) == graph
    assert changed_inputs(dict(workflow.graph), graph) <= targets(
        workflow, *values, *workflow.defaults
    )
    for key, value in values.items():
        for point in workflow.points[key]:
            assert graph[point.node_id]["inputs"][point.input_name] == value
    assert snapshot(workflow) == before


@settings(max_examples=100, deadline=None)
@given(data=st.data())
def test_overrides_change_only_their_input(data: st.DataObject) -> None:
    workflow = shipped("img2img")
    before = snapshot(workflow)
    where = data.draw(
        st.sampled_from(
            sorted((node_id, name) for node_id, n in workflow.graph.items() for name in n["inputs"])
        )
    )
    value = data.draw(
        st.one_of(st.text(), st.integers(), st.floats(allow_nan=False, allow_infinity=False))
    )
    graph = workflow.with_inputs(overrides={where: value})
    assert changed_inputs(dict(workflow.graph), graph) <= {where}
    assert graph[where[0]]["inputs"][where[1]] == value
    assert snapshot(workflow) == before


@settings(max_examples=50, deadline=None)
@given(steps=st.integers().filter(lambda n: not 1 <= n <= 60))
def test_out_of_range_values_raise_and_leave_the_workflow_alone(steps: int) -> None:
    workflow = shipped("txt2img")
    before = snapshot(workflow)
    with pytest.raises(WorkflowInputError):
        workflow.with_inputs({"steps": steps})
    assert snapshot(workflow) == before
