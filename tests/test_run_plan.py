"""Tests of bot.terminal.plan: arguments checked into a plan without ComfyUI, summary, saving."""

import argparse
import io
from pathlib import Path

import pytest
from PIL import Image

from bot.config import Settings
from bot.errors import BotError, user_message
from bot.images import ImageFile, check_input_image
from bot.terminal import run as runner
from bot.terminal.plan import REQUESTER, parse_override, prepare, summary_lines
from bot.terminal.save import save_outputs

WORKFLOWS = Path(__file__).parent / "fixtures" / "workflows"


def png(width: int = 8, height: int = 8) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), "red").save(buffer, "PNG")
    return buffer.getvalue()


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    runner.add_arguments(parser)
    return parser.parse_args(argv)


def settings(**env: str) -> Settings:
    return Settings.from_env({"WORKFLOWS_DIR": str(WORKFLOWS), **env})


@pytest.fixture
def image(tmp_path: Path) -> Path:
    path = tmp_path / "cat.png"
    path.write_bytes(png())
    return path


def test_plan_of_a_named_workflow(tmp_path: Path) -> None:
    plan = prepare(parse("slow", "--steps", "7", "--seed", "42", "--width", "40"), settings())
    assert plan.workflow.name == "slow"
    assert plan.request.requester == REQUESTER
    assert (plan.request.seed, plan.request.steps, plan.request.width) == (42, 7, 40)
    assert plan.graph["2"]["inputs"]["steps"] == 7
    assert plan.graph["1"]["inputs"]["width"] == 40
    assert plan.server == "http://127.0.0.1:8188"
    assert plan.out == Path("outputs")


def test_without_prompt_the_exported_text_is_kept(tmp_path: Path) -> None:
    library = Path(__file__).parents[1] / "workflows"
    plan = prepare(parse("txt2img"), settings(WORKFLOWS_DIR=str(library)))
    point = plan.workflow.points["prompt"][0]
    exported = plan.workflow.graph[point.node_id]["inputs"][point.input_name]
    assert exported
    assert plan.request.prompt == exported
    assert plan.graph[point.node_id]["inputs"][point.input_name] == exported
    prompted = prepare(parse("txt2img", "--prompt", "a fox"), settings(WORKFLOWS_DIR=str(library)))
    assert prompted.graph[point.node_id]["inputs"][point.input_name] == "a fox"


def test_a_random_seed_is_chosen_when_the_workflow_has_one() -> None:
    plan = prepare(parse("slow"), settings())
    assert isinstance(plan.request.seed, int)
    assert plan.graph["2"]["inputs"]["seed"] == plan.request.seed
    assert prepare(parse("fail"), settings()).request.seed is None


def test_workflow_given_as_a_path_and_server_and_out_options(tmp_path: Path) -> None:
    args = parse(str(WORKFLOWS / "fail.json"), "--server", "http://h:1/", "--out", str(tmp_path))
    plan = prepare(args, settings(WORKFLOWS_DIR=str(tmp_path / "none")))
    assert (plan.workflow.name, plan.server, plan.out) == ("fail", "http://h:1", tmp_path)


def test_image_goes_to_the_load_image_node(image: Path) -> None:
    plan = prepare(parse("invert", "--image", str(image)), settings())
    data = image.read_bytes()
    assert plan.request.images == (check_input_image(data, "cat.png", max_bytes=len(data)),)
    assert plan.request.images[0].filename == "cat.png"
    assert plan.image_paths == (image,)
    assert plan.graph["1"]["inputs"]["image"] == "pending_0.png"


def test_set_parses_json_values_but_keeps_text_inputs_as_text() -> None:
    graph = {"3": {"class_type": "X", "inputs": {"cfg": 7, "text": "a", "link": ["1", 0]}}}
    assert parse_override("3.cfg=7.5", graph) == (("3", "cfg"), 7.5)
    assert parse_override("3.text=123", graph) == (("3", "text"), "123")
    assert parse_override("3.text=a=b", graph) == (("3", "text"), "a=b")
    assert parse_override("3.cfg=true", graph) == (("3", "cfg"), True)
    assert parse_override("3.cfg=euler", graph) == (("3", "cfg"), "euler")
    assert parse_override("12:5.seed=1", graph) == (("12:5", "seed"), 1)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["nope"], "No workflow 'nope' in "),
        (["nope"], "Available: fail, "),
        (["slow", "--set", "2.steps"], "--set '2.steps' is not NODE.INPUT=VALUE"),
        (["slow", "--set", "steps=3"], "--set 'steps=3' is not NODE.INPUT=VALUE"),
        (["slow", "--set", "9.steps=3"], "no node '9'"),
        (["slow", "--set", "2.nothing=3"], "node 2 (SlowProgress) has no input 'nothing'"),
        (["slow", "--steps", "0"], "steps must be between 1 and 500, not 0"),
        (["slow", "--steps", "501"], "steps must be between 1 and 500, not 501"),
        (["slow", "--negative", "ugly"], "has no place for negative"),
        (["slow", "--image", "{image}"], "'slow' has no LoadImage node, so it takes no --image"),
        (["invert"], "'invert' takes 1 input image: pass --image PATH"),
        (["invert", "--image", "{image}", "--image", "{image}"], "takes 1 input image; 2 --image"),
        (["invert", "--image", "{missing}"], "missing.png does not exist"),
        (["invert", "--image", "{text}"], "notes.png is not an image ComfyUI can read"),
        (["invert", "--image", "{dir}"], "is a directory, not a file"),
        (["slow", "--server", "localhost:8188"], "--server 'localhost:8188' is not an http://"),
    ],
)
def test_bad_input_is_refused_with_a_clear_message(
    tmp_path: Path, image: Path, argv: list[str], message: str
) -> None:
    text = tmp_path / "notes.png"
    text.write_text("not a picture")
    paths = {"image": image, "missing": tmp_path / "missing.png", "text": text, "dir": tmp_path}
    args = parse(*(arg.format(**paths) for arg in argv))
    with pytest.raises(BotError) as caught:
        prepare(args, settings())
    assert message in user_message(caught.value)


def test_an_image_set_by_name_needs_no_upload() -> None:
    plan = prepare(parse("invert", "--set", "1.image=already_there.png"), settings())
    assert plan.graph["1"]["inputs"]["image"] == "already_there.png"


def test_too_large_image_is_refused(image: Path) -> None:
    with pytest.raises(BotError, match="the limit is"):
        prepare(parse("invert", "--image", str(image)), settings(MAX_INPUT_IMAGE_BYTES="10"))


def test_summary_names_everything_that_will_be_patched(image: Path) -> None:
    long_prompt = "a very long prompt " * 10
    args = parse("invert", "--image", str(image), "--prompt", long_prompt, "--set", "3.x=1")
    del args.overrides[:]  # 3.x does not exist; the summary is about what does
    plan = prepare(args, settings())
    text = "\n".join(summary_lines(plan, "http://127.0.0.1:8188 (ComfyUI 0.3.64)"))
    assert "Workflow  invert" in text
    assert f"File      {WORKFLOWS / 'invert.json'}" in text
    assert "Nodes     3: ImageInvert, LoadImage, SaveImage" in text
    assert f"prompt = {long_prompt[:60]!r}".replace("'", "") in text.replace("'", "")
    assert "...' -> not used (this workflow has no place for it)" in text
    assert f"image = {image} (0.1 KiB) -> node 1.image (LoadImage)" in text
    assert "Server    http://127.0.0.1:8188 (ComfyUI 0.3.64)" in text
    assert "Outputs   outputs" in text


def test_summary_shows_seed_and_overrides() -> None:
    plan = prepare(parse("slow", "--seed", "5", "--set", "2.delay=0.5"), settings())
    lines = summary_lines(plan, "S")
    assert "Seed      5 -> node 2.seed (SlowProgress)" in lines
    assert "Patches   2.delay = 0.5 (--set)" in lines
    assert "Workflow  slow (Slow steps (test))" in lines


def test_save_outputs_never_overwrites(tmp_path: Path) -> None:
    out = tmp_path / "new" / "dir"
    files = [ImageFile("a_00001_.png", b"1"), ImageFile("sub/../b.gif", b"2")]
    first = save_outputs(files, out)
    second = save_outputs(files, out)
    third = save_outputs(files[:1], out)
    assert first == [out / "a_00001_.png", out / "b.gif"]
    assert second == [out / "a_00001_-1.png", out / "b-1.gif"]
    assert third == [out / "a_00001_-2.png"]
    assert (out / "a_00001_.png").read_bytes() == b"1"
    assert (out / "b-1.gif").read_bytes() == b"2"
