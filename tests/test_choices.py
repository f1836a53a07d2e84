"""Autocomplete of models and LoRAs: combo lists, allow patterns and fuzzy order (pure)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bot.workflows.choices import combo_options, files_of, fuzzy_choices, is_allowed
from bot.workflows.library import SidecarError, load_workflow

FIXTURES = Path(__file__).resolve().parent / "fixtures"
NAMES = [
    "sd_xl_base_1.0.safetensors",
    "sd_xl_refiner_1.0.safetensors",
    "v1-5-pruned-emaonly.safetensors",
    "flux1-dev.safetensors",
    "style/watercolor_xl.safetensors",
    "style/ink.safetensors",
    "nsfw/thing.safetensors",
]


def test_empty_text_lists_allowed_names_up_to_the_limit() -> None:
    many = [f"lora_{i:02d}.safetensors" for i in range(40)]
    assert fuzzy_choices(many, "") == many[:25]
    assert len(fuzzy_choices(many, "", limit=5)) == 5


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ("sd_xl", ["sd_xl_base_1.0.safetensors", "sd_xl_refiner_1.0.safetensors"]),
        ("SDXL", ["sd_xl_base_1.0.safetensors", "sd_xl_refiner_1.0.safetensors"]),
        ("xlbase", ["sd_xl_base_1.0.safetensors"]),
        ("water", ["style/watercolor_xl.safetensors"]),
        ("ink", ["style/ink.safetensors"]),
        ("flux dev", ["flux1-dev.safetensors"]),
        ("zzz", []),
    ],
)
def test_fuzzy_matching(typed: str, expected: list[str]) -> None:
    assert fuzzy_choices(NAMES, typed) == expected


def test_prefix_beats_substring_beats_scattered_letters() -> None:
    names = ["my_ink_pen.safetensors", "ink.safetensors", "i_n_k.safetensors"]
    assert fuzzy_choices(names, "ink") == [
        "ink.safetensors",
        "my_ink_pen.safetensors",
        "i_n_k.safetensors",
    ]


def test_allow_patterns_decide_what_members_may_pick() -> None:
    allow = ["style/*", "sd_xl_base*"]
    assert fuzzy_choices(NAMES, "", allow=allow) == [
        "sd_xl_base_1.0.safetensors",
        "style/ink.safetensors",
        "style/watercolor_xl.safetensors",
    ]
    assert fuzzy_choices(NAMES, "thing", allow=allow) == []
    assert is_allowed("STYLE\\Ink.safetensors", ["style/*"])
    assert not is_allowed("nsfw/thing.safetensors", ["style/*"])
    assert is_allowed("anything", [])


def test_combo_lists_in_both_shapes() -> None:
    old = {"LoraLoader": {"input": {"required": {"lora_name": [["a.safetensors", "b"], {}]}}}}
    new = {
        "LoraLoaderModelOnly": {
            "input": {"required": {"lora_name": ["COMBO", {"options": ["b", "c"]}]}}
        }
    }
    assert combo_options(old, "LoraLoader", "lora_name") == ["a.safetensors", "b"]
    assert combo_options(new, "LoraLoaderModelOnly", "lora_name") == ["b", "c"]
    assert files_of({**old, **new}, "lora") == ["a.safetensors", "b", "c"]
    assert combo_options(old, "Missing", "lora_name") == []
    assert combo_options({"X": {"input": {"required": {"y": ["INT", {}]}}}}, "X", "y") == []


def test_recorded_object_info_has_the_loader_inputs() -> None:
    info = json.loads((FIXTURES / "object_info.json").read_text())
    # The recorded server had no models: the lists are there, and empty.
    assert files_of(info, "checkpoint") == []
    assert files_of(info, "unet") == []
    assert files_of(info, "lora") == []
    assert "LoraLoader" in info


def test_the_sidecar_allow_table(tmp_path: Path) -> None:
    root = Path(__file__).resolve().parents[1]
    (tmp_path / "wf.json").write_text((root / "workflows" / "txt2img.json").read_text())
    (tmp_path / "wf.toml").write_text('[allow]\nlora = ["style/*"]\nmodel = "sd_xl_*"\n')
    workflow = load_workflow(tmp_path / "wf.json")
    assert workflow.allow == {"lora": ("style/*",), "model": ("sd_xl_*",)}
    (tmp_path / "wf.toml").write_text('[allow]\nvae = ["*"]\n')
    with pytest.raises(SidecarError, match=r"\[allow\] has unknown keys \['vae'\]"):
        load_workflow(tmp_path / "wf.json")
    (tmp_path / "wf.toml").write_text("[allow]\nlora = [1]\n")
    with pytest.raises(SidecarError, match=r"allow\.lora must be a string or a list of strings"):
        load_workflow(tmp_path / "wf.json")
