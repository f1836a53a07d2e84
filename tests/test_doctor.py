"""Tests of `comfycord check` (bot.terminal.check) against the fake ComfyUI over real sockets."""

from __future__ import annotations

import asyncio
import json
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.cli import build_parser
from bot.config import Settings
from bot.terminal import check as doctor
from tests.backend_env import closed_url
from tests.fakes.comfy import FakeComfy
from tests.test_ui import txt2img

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures" / "workflows"
SDXL = "sd_xl_base_1.0.safetensors"


@pytest.fixture
def library(tmp_path: Path) -> Path:
    """A workflows directory with the test workflows and the shipped ones."""
    directory = tmp_path / "workflows"
    directory.mkdir()
    for name in ("slow.json", "slow.toml", "invert.json"):
        shutil.copy(FIXTURES / name, directory / name)
    for path in (ROOT / "workflows").iterdir():
        shutil.copy(path, directory / path.name)
    return directory


def settings_for(urls: str, library: Path, **env: str) -> Settings:
    return Settings.from_env({"COMFYUI_URLS": urls, "WORKFLOWS_DIR": str(library), **env})


async def check(settings: Settings, *argv: str) -> int:
    args = build_parser().parse_args(["check", *argv])
    async with asyncio.timeout(20):
        return await doctor.main(args, settings)


@pytest.fixture
async def comfy_with_models() -> AsyncIterator[FakeComfy]:
    async with FakeComfy(models={"checkpoints": [SDXL]}) as fake:
        yield fake
    assert not fake.errors


async def test_all_fine_exits_0(
    comfy_with_models: FakeComfy, library: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = settings_for(comfy_with_models.url, library, DISCORD_TOKEN="abc.def.secret")
    assert await check(settings) == 0
    out = capsys.readouterr().out
    assert f"ok {comfy_with_models.url}: ComfyUI 0.3.64" in out
    assert "path: /queue + /history\n" in out
    assert "VRAM" in out
    assert "node types" in out
    for name in ("demo", "img2img", "txt2img", "slow", "invert"):
        assert f"ok {name} (" in out
    assert "DISCORD_TOKEN           set (hidden)" in out
    assert "secret" not in out
    assert out.rstrip().endswith("All good.")


async def test_each_server_shows_its_version_and_path(
    library: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    models = {"checkpoints": [SDXL]}
    async with FakeComfy(models=models) as old, FakeComfy(models=models, version="0.38") as new:
        assert await check(settings_for(f"{old.url},{new.url}", library)) == 0
    out = capsys.readouterr().out
    assert f"ok {old.url}: ComfyUI 0.3.64, PyTorch" in out
    assert f"ok {new.url}: ComfyUI 0.38.1, PyTorch" in out
    servers = out.split("\nWorkflows", 1)[0]
    assert servers.count("path: /queue + /history\n") == 1
    assert servers.count("path: /api/jobs\n") == 1


async def test_unreachable_server_is_a_problem(
    library: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = closed_url()
    assert await check(settings_for(url, library)) == 1
    out = capsys.readouterr().out
    assert f"!! ComfyUI at {url} is not reachable" in out
    assert "not checked against object_info" in out
    assert f"1 problem:\n  - ComfyUI at {url} is not reachable" in out


async def test_unknown_class_missing_model_and_broken_files_are_listed(
    fake_comfy: FakeComfy, library: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    custom = json.loads((FIXTURES / "slow.json").read_text())
    custom["2"]["class_type"] = "FancyUpscaler"
    (library / "custom.json").write_text(json.dumps(custom))
    (library / "broken.json").write_text("{ not json")
    (library / "orphan.toml").write_text('name = "no graph"\n')

    assert await check(settings_for(fake_comfy.url, library)) == 1
    out = capsys.readouterr().out
    problems = out.split("problems:\n", 1)[1]
    assert "workflow custom: node 2 (FancyUpscaler): node type FancyUpscaler is not installed" in (
        problems
    )
    assert f"workflow txt2img: node 4 (CheckpointLoaderSimple) ckpt_name: model file '{SDXL}'" in (
        problems
    )
    assert "workflow img2img: node" in problems
    assert "workflow broken: broken.json" in problems
    assert "workflow orphan: orphan.toml: there is no orphan.json." in problems
    assert "slow" not in problems
    assert "demo" not in problems
    assert "  !! custom (custom): 3 nodes" in out


async def test_several_servers_each_checked(
    comfy_with_models: FakeComfy, library: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    down = closed_url()
    settings = settings_for(f"{comfy_with_models.url},{down}", library)
    assert await check(settings) == 1
    out = capsys.readouterr().out
    assert f"ok {comfy_with_models.url}" in out
    assert f"!! ComfyUI at {down} is not reachable" in out
    assert "workflow " not in out.split("problem:", 1)[1]


async def test_server_option_and_named_workflows(
    comfy_with_models: FakeComfy, library: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = settings_for(closed_url(), library, DEFAULT_WORKFLOW="nope", HTTP_WORKFLOW="")
    assert await check(settings, "--server", comfy_with_models.url) == 1
    out = capsys.readouterr().out
    assert f"ok {comfy_with_models.url}" in out
    assert "1 problem:\n  - DEFAULT_WORKFLOW is 'nope', but there is no nope.json in" in out


async def test_missing_workflow_directory(
    fake_comfy: FakeComfy, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert await check(settings_for(fake_comfy.url, tmp_path / "nowhere")) == 1
    assert "nowhere does not exist" in capsys.readouterr().out


async def test_an_older_comfyui_than_supported_is_pointed_out(
    library: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    async with FakeComfy(models={"checkpoints": [SDXL]}) as fake:
        stats = {"system": {"comfyui_version": "0.3.10"}, "devices": []}
        fake.script.answer("GET", "/system_stats", json_body=stats)
        await check(settings_for(fake.url, library))
    out = capsys.readouterr().out
    assert "path: /queue + /history (ComfyUI 0.3.10 is older than 0.3.64" in out


async def test_ui_files_are_converted_and_tracing_gaps_warned(
    comfy_with_models: FakeComfy, library: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (library / "fox.json").write_text(json.dumps(txt2img().to_json()))
    graph = json.loads((library / "txt2img.json").read_text())
    graph["3"]["inputs"]["seed"] = ["20", 0]
    graph["20"] = {"class_type": "PrimitiveInt", "inputs": {"value": 5}}
    graph["6"] = {"class_type": "StringToConditioning", "inputs": {"words": "a fox"}}
    (library / "odd.json").write_text(json.dumps(graph))
    code = await check(settings_for(comfy_with_models.url, library))
    out = capsys.readouterr().out
    assert "  ok fox (fox): 7 nodes, converted from UI format, takes prompt, negative, seed" in out
    assert "warning: no prompt found; to fix, add to odd.toml under [patch]: prompt = " in out
    assert "seed not found" not in out  # a PrimitiveInt's value is followed
    assert code == 1  # StringToConditioning is not installed: a problem, not a warning
    assert "1 problem:\n  - workflow odd: node 6 (StringToConditioning)" in out


async def test_ui_file_without_a_server_is_named_with_the_reason(
    library: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (library / "fox.json").write_text(json.dumps(txt2img().to_json()))
    assert await check(settings_for(closed_url(), library)) == 1
    out = capsys.readouterr().out
    assert "workflow fox: fox.json: this is a UI-format workflow" in out
    assert "needs a reachable ComfyUI server" in out


async def test_the_button_workflows_are_checked(
    comfy_with_models: FakeComfy, library: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = settings_for(
        comfy_with_models.url, library, VARY_WORKFLOW="txt2img", UPSCALE_WORKFLOW="gone"
    )
    assert await check(settings) == 1
    out = capsys.readouterr().out
    assert "VARY_WORKFLOW is 'txt2img', but it takes no input image" in out
    assert "UPSCALE_WORKFLOW is 'gone', but there is no gone.json in" in out
