"""`comfycord inspect` on API and UI files, with the fake ComfyUI over real sockets or none."""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from bot.cli import build_parser
from bot.config import Settings
from bot.terminal import inspect
from tests.backend_env import closed_url
from tests.fakes.comfy import FakeComfy
from tests.test_ui import txt2img

ROOT = Path(__file__).resolve().parents[1]
SDXL = "sd_xl_base_1.0.safetensors"


@pytest.fixture
def workflows(tmp_path: Path) -> Path:
    directory = tmp_path / "workflows"
    shutil.copytree(ROOT / "workflows", directory)
    (directory / "fox.json").write_text(json.dumps(txt2img().to_json()))
    return directory


async def run(workflows: Path, *argv: str) -> int:
    settings = Settings.from_env({"WORKFLOWS_DIR": str(workflows), "COMFYUI_URL": closed_url()})
    args = build_parser().parse_args(["inspect", *argv])
    async with asyncio.timeout(20):
        return await inspect.main(args, settings)


def printed(capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    report: dict[str, Any] = json.loads(capsys.readouterr().out)
    return report


async def test_api_file_without_a_server(
    workflows: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert await run(workflows, "txt2img", "--json") == 0
    report = printed(capsys)
    assert report["format"] == "api"
    assert report["points"]["prompt"] == [["6", "text"]]
    assert report["points"]["negative"] == [["7", "text"]]
    assert report["points"]["seed"] == [["3", "seed"]]
    assert report["points"]["image"] == []
    assert report["nodes"]["6"] == {"title": "Positive Prompt", "class_type": "CLIPTextEncode"}
    assert report["outputs"] == [
        {"node_id": "9", "class_type": "SaveImage", "title": "Save Image", "kind": "image"}
    ]
    assert [m["file"] for m in report["models"]] == [SDXL]
    assert report["server"]["reachable"] is False
    assert report["missing"] == []
    assert report["warnings"] == []


async def test_ui_file_is_converted_with_the_server_and_says_what_it_lacks(
    workflows: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    async with FakeComfy() as fake:
        assert await run(workflows, "fox", "--server", fake.url, "--json") == 0
    report = printed(capsys)
    assert report["format"] == "ui"
    assert report["points"]["prompt"] == [["2", "text"]]
    assert report["points"]["width"] == [["4", "width"]]
    assert report["nodes"]["2"]["title"] == "Positive"
    assert report["custom_nodes"] == []
    assert [(m["node_id"], m["kind"]) for m in report["missing"]] == [("1", "model_missing")]


async def test_text_output_names_points_titles_and_classes(
    workflows: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    async with FakeComfy(models={"checkpoints": [SDXL]}) as fake:
        assert await run(workflows, str(workflows / "fox.json"), "--server", fake.url) == 0
    out = capsys.readouterr().out
    assert "Format    UI, converted with the server's node definitions" in out
    assert "  seed       5.seed  KSampler (KSampler)" in out
    assert "  7 Save Image (SaveImage): image" in out
    assert f"Missing on {fake.url}: nothing" in out


async def test_ui_file_without_a_server_exits_3(
    workflows: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert await run(workflows, "fox") == 3
    assert "fox.json is a UI-format workflow" in capsys.readouterr().err


async def test_unknown_name_lists_the_workflows(
    workflows: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert await run(workflows, "nope") == 2
    err = capsys.readouterr().err
    assert "No workflow 'nope'" in err
    assert "txt2img" in err


async def test_warns_of_a_prompt_and_seed_it_cannot_find_with_the_sidecar_line(
    workflows: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    graph = json.loads((workflows / "txt2img.json").read_text())
    graph["6"] = {
        "class_type": "WildcardConditioner",
        "inputs": {"caption": "a {red|blue} fox", "clip": ["4", 1]},
    }
    graph["20"] = {"class_type": "SeedGenerator", "inputs": {"number": 5}}
    graph["3"]["inputs"]["seed"] = ["20", 0]
    (workflows / "odd.json").write_text(json.dumps(graph))
    assert await run(workflows, "odd", "--json") == 0
    assert printed(capsys)["warnings"] == [
        {"message": "no prompt found", "sidecar_line": 'prompt = "6.caption"'},
        {"message": "seed not found", "sidecar_line": 'seed = "20.number"'},
    ]
