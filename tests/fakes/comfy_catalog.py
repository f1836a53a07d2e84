"""The fake ComfyUI's node catalog: recorded /object_info plus injected model names and uploads."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from tests.fakes.comfy_media import VHS_VIDEO_COMBINE

DEFAULT_OBJECT_INFO = Path(__file__).resolve().parent.parent / "fixtures" / "object_info.json"
# Loader inputs whose choices are files of a model folder (empty in the recorded catalog).
_MODEL_INPUTS = {
    "ckpt_name": "checkpoints",
    "lora_name": "loras",
    "vae_name": "vae",
    "control_net_name": "controlnet",
    "unet_name": "diffusion_models",
    "clip_name": "text_encoders",
    "clip_name1": "text_encoders",
    "clip_name2": "text_encoders",
    "clip_name3": "text_encoders",
    "clip_name4": "text_encoders",
    "style_model_name": "style_models",
    "gligen_name": "gligen",
    "hypernetwork_name": "hypernetworks",
    "photomaker_model_name": "photomaker",
    "model_path": "diffusers",
    "config_name": "configs",
}
_MODEL_INPUTS_BY_CLASS = {
    ("CLIPVisionLoader", "clip_name"): "clip_vision",
    ("UpscaleModelLoader", "model_name"): "upscale_models",
}
MODEL_FOLDERS = (
    "checkpoints", "configs", "loras", "vae", "text_encoders", "diffusion_models", "clip_vision",
    "style_models", "embeddings", "diffusers", "vae_approx", "controlnet", "gligen",
    "upscale_models", "custom_nodes", "hypernetworks", "photomaker", "classifiers",
    "model_patches", "audio_encoders",
)  # fmt: skip
_IMAGE_UPLOAD_CLASSES = ("LoadImage", "LoadImageMask")
_TEST_NODES: dict[str, dict[str, Any]] = {
    "VHS_VideoCombine": VHS_VIDEO_COMBINE,
    "SlowProgress": {
        "required": {
            "image": ["IMAGE"],
            "steps": ["INT", {"default": 5, "min": 1, "max": 1000}],
            "delay": ["FLOAT", {"default": 0.2, "min": 0.0, "max": 60.0, "step": 0.01}],
            "preview": [["JPEG", "PNG", "none"], {"default": "JPEG"}],
            "seed": ["INT", {"default": 0, "min": 0, "max": 4294967295}],
        },
        "output": ["IMAGE"],
    },
    "FailNode": {
        "required": {
            "image": ["IMAGE"],
            "message": ["STRING", {"default": "FailNode was asked to fail"}],
        },
        "output": ["IMAGE"],
    },
    "ProgressTextNode": {
        "required": {
            "image": ["IMAGE"],
            "text": ["STRING", {"default": "hello from ProgressTextNode"}],
        },
        "output": ["IMAGE"],
    },
    "TextOutput": {
        "required": {"image": ["IMAGE"], "text": ["STRING", {"default": "done"}]},
        "output": [],
        "output_node": True,
    },
}


class Catalog:
    """Node class specs as /object_info serves them, with this fake's models and uploads."""

    def __init__(self, path: Path | None, models: Mapping[str, Sequence[str]]) -> None:
        with (path or DEFAULT_OBJECT_INFO).open(encoding="utf-8") as file:
            self.classes: dict[str, dict[str, Any]] = json.load(file)
        self.models = {folder: sorted(names) for folder, names in models.items()}
        for name, spec in _TEST_NODES.items():
            self.classes.setdefault(name, _test_node(name, spec))
        for spec in self.classes.values():
            spec.setdefault("description", "")
            self._inject_models(spec)

    def _inject_models(self, spec: dict[str, Any]) -> None:
        for section in ("required", "optional"):
            for input_name, config in spec["input"].get(section, {}).items():
                folder = _MODEL_INPUTS_BY_CLASS.get((spec["name"], input_name))
                folder = folder or _MODEL_INPUTS.get(input_name)
                if folder in self.models:
                    _extend_choices(config, self.models[folder])

    def is_output(self, class_type: str) -> bool:
        """Tell whether the class is an output node."""
        return bool(self.classes[class_type].get("output_node"))

    def outputs(self, class_type: str) -> list[Any]:
        """Return the output types of a class."""
        return list(self.classes[class_type]["output"])

    def served(self, class_type: str, input_images: Iterable[str]) -> dict[str, Any]:
        """Return one class's spec as served (LoadImage lists the current uploads)."""
        spec = self.classes[class_type]
        if class_type not in _IMAGE_UPLOAD_CLASSES:
            return spec
        spec = copy.deepcopy(spec)
        spec["input"]["required"]["image"][0] = sorted(input_images)
        return spec

    def served_all(self, input_images: Iterable[str]) -> dict[str, Any]:
        """Return the whole catalog as served by GET /object_info."""
        images = list(input_images)
        return {name: self.served(name, images) for name in self.classes}


def _extend_choices(config: list[Any], names: Sequence[str]) -> None:
    if isinstance(config[0], list):
        config[0] = sorted({*config[0], *names})
    elif config[0] == "COMBO" and len(config) > 1:
        config[1]["options"] = sorted({*config[1].get("options", []), *names})


def _test_node(name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "input": {"required": spec["required"]},
        "input_order": {"required": list(spec["required"])},
        "output": spec["output"],
        "output_is_list": [False] * len(spec["output"]),
        "output_name": list(spec["output"]),
        "name": name,
        "display_name": name,
        "description": "",
        "python_module": "custom_nodes.progress_test_nodes",
        "category": "testing",
        "output_node": bool(spec.get("output_node")),
    }
