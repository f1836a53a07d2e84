"""Tests of `comfycord run` (bot.terminal.run) against the fake ComfyUI over real sockets."""

from __future__ import annotations

import asyncio
import io
import json
import os
import pty
import re
import resource
import signal
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from bot.cli import build_parser
from bot.comfy.client import ComfyClient
from bot.comfy.ids import is_canonical
from bot.config import Settings
from bot.terminal import run as runner
from tests.backend_env import closed_url
from tests.fakes.comfy import FakeComfy
from tests.test_ui import txt2img

ROOT = Path(__file__).resolve().parents[1]
WORKFLOWS = ROOT / "tests" / "fixtures" / "workflows"
OTHER_CLIENT = "another-client"


def png(width: int = 12, height: int = 10) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (10, 200, 30)).save(buffer, "PNG")
    return buffer.getvalue()


def settings_for(url: str, out: Path, **env: str) -> Settings:
    return Settings.from_env(
        {"COMFYUI_URL": url, "WORKFLOWS_DIR": str(WORKFLOWS), "OUTPUT_DIR": str(out), **env}
    )


async def run(settings: Settings, *argv: str) -> int:
    args = build_parser().parse_args(["run", *argv])
    async with asyncio.timeout(20):
        return await runner.main(args, settings)


def sent(fake: FakeComfy) -> set[tuple[str, str]]:
    """Return the requests that would have changed anything in ComfyUI."""
    return {r for r in fake.requests if r[0] == "POST"}


@pytest.fixture
def out(tmp_path: Path) -> Path:
    return tmp_path / "outputs"


@pytest.fixture
def settings(fake_comfy: FakeComfy, out: Path) -> Settings:
    return settings_for(fake_comfy.url, out)


@pytest.fixture
def image(tmp_path: Path) -> Path:
    path = tmp_path / "input.png"
    path.write_bytes(png())
    return path


async def test_success_saves_outputs_without_overwriting(
    settings: Settings, fake_comfy: FakeComfy, out: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Snapshots are latest-wins: give each step time to be seen rather than coalesced away.
    fake_comfy.step_delay = 0.05
    assert await run(settings, "slow", "--yes", "--seed", "7", "--steps", "3") == 0
    first = capsys.readouterr()
    assert "Workflow  slow (Slow steps (test))" in first.out
    assert "Seed      7 -> node 2.seed (SlowProgress)" in first.out
    assert f"Server    {fake_comfy.url} (ComfyUI " in first.out
    assert "running [2/3] Slow Steps (SlowProgress)" in first.out
    assert re.search(r"step [123]/3", first.out), first.out
    assert "Done in " in first.out
    saved = sorted(out.iterdir())
    assert len(saved) == 1
    assert saved[0].read_bytes().startswith(b"\x89PNG")
    assert f"Saved {saved[0]}" in first.out

    assert await run(settings, "slow", "--yes", "--seed", "7", "--steps", "3") == 0
    second = capsys.readouterr()
    again = out / f"{saved[0].stem}-1.png"
    assert set(out.iterdir()) == {saved[0], again}
    assert f"Saved {again}" in second.out
    assert "1 cached" in second.out or "2 cached" in second.out or "3 cached" in second.out


async def test_image_is_uploaded_and_the_result_saved(
    settings: Settings, fake_comfy: FakeComfy, out: Path, image: Path
) -> None:
    assert await run(settings, "invert", "--image", str(image), "--yes") == 0
    [uploaded] = fake_comfy.uploads.values()
    with Image.open(io.BytesIO(uploaded)) as sent, Image.open(image) as given:
        assert sent.format == "PNG"
        assert sent.tobytes() == given.convert(sent.mode).tobytes()
    [saved] = out.iterdir()
    with Image.open(saved) as result:
        assert result.size == (12, 10)


async def test_a_workflow_file_given_by_path(settings: Settings, out: Path) -> None:
    assert await run(settings, str(WORKFLOWS / "slow.json"), "--yes", "--steps", "1") == 0
    assert len(list(out.iterdir())) == 1


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["nope"], "No workflow 'nope' in"),
        (["slow", "--set", "2.steps"], "is not NODE.INPUT=VALUE"),
        (["slow", "--set", "7.steps=3"], "no node '7'"),
        (["slow", "--set", "2.speed=3"], "node 2 (SlowProgress) has no input 'speed'"),
        (["invert", "--image", "{missing}"], "does not exist"),
        (["invert", "--image", "{not_image}"], "is not an image ComfyUI can read"),
        (["invert"], "takes 1 input image: pass --image PATH"),
        (["slow", "--steps", "900"], "steps must be between 1 and 500, not 900"),
        (["slow", "--image", "{image}"], "has no LoadImage node, so it takes no --image"),
        # Ranges the server's object_info sets are checked before submitting too.
        (["slow", "--set", "2.steps=5000"], "node 2 (SlowProgress) steps: 5000 is above the max"),
    ],
)
async def test_bad_input_exits_2_and_sends_nothing(
    settings: Settings,
    fake_comfy: FakeComfy,
    tmp_path: Path,
    image: Path,
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
    message: str,
) -> None:
    not_image = tmp_path / "notes.png"
    not_image.write_text("hello")
    paths = {"missing": tmp_path / "missing.png", "not_image": not_image, "image": image}
    code = await run(settings, *(arg.format(**paths) for arg in argv), "--yes")
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("comfycord run: ")
    assert message in err
    assert sent(fake_comfy) == set()
    assert fake_comfy.uploads == {}


async def test_unreachable_server_exits_3_naming_the_url(
    out: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = closed_url()
    assert await run(settings_for(url, out), "slow", "--yes") == 3
    err = capsys.readouterr().err
    assert f"ComfyUI at {url} is not reachable" in err
    assert "COMFYUI_URL" in err


async def test_server_option_overrides_the_setting(
    fake_comfy: FakeComfy, out: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = settings_for("http://127.0.0.1:9", out)
    assert await run(settings, "slow", "--yes", "--steps", "1", "--server", fake_comfy.url) == 0
    assert ("POST", "/prompt") in sent(fake_comfy)


async def test_execution_error_exits_1_with_the_node(
    settings: Settings, fake_comfy: FakeComfy, out: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert await run(settings, "fail", "--yes") == 1
    err = capsys.readouterr().err
    assert "Failed at node 2 (FailNode): RuntimeError: the test asked this node to fail" in err
    assert not out.exists()


async def test_a_prompt_comfyui_refuses_exits_1_with_its_reasons(
    settings: Settings, fake_comfy: FakeComfy, capsys: pytest.CaptureFixture[str]
) -> None:
    # LoadImage choices are not checked before submitting (uploads are not listed yet).
    assert await run(settings, "invert", "--set", "1.image=not_uploaded.png", "--yes") == 1
    err = capsys.readouterr().err
    assert "ComfyUI refused the workflow" in err
    assert "node 1 (LoadImage), input image" in err
    assert fake_comfy.history == {}


async def test_a_strange_answer_exits_1_and_says_what_was_strange(
    settings: Settings, fake_comfy: FakeComfy, capsys: pytest.CaptureFixture[str]
) -> None:
    fake_comfy.script.answer("POST", "/prompt", json_body={})  # a 200 naming no prompt_id
    assert await run(settings, "slow", "--yes", "--steps", "1") == 1
    err = capsys.readouterr().err
    assert "ComfyUI answered unlike ComfyUI: the answer of POST /prompt has no 'prompt_id'" in err


async def test_without_a_terminal_and_without_yes_it_stops(
    settings: Settings,
    fake_comfy: FakeComfy,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO("y\n"))  # piped input: not a terminal
    assert await run(settings, "slow") == 2
    captured = capsys.readouterr()
    assert "Workflow  slow" in captured.out  # the summary is still shown
    assert "standard input is not a terminal. Pass --yes" in captured.err
    assert sent(fake_comfy) == set()


async def test_a_prompt_stopped_by_someone_else_exits_1(
    settings: Settings, fake_comfy: FakeComfy, capsys: pytest.CaptureFixture[str]
) -> None:
    fake_comfy.hold()
    task = asyncio.create_task(run(settings, "slow", "--yes", "--steps", "2"))
    async with asyncio.timeout(10):
        while fake_comfy.running is None:
            await fake_comfy.queue.wait_change()
    async with ComfyClient(fake_comfy.url, client_id=OTHER_CLIENT) as other:
        await other.interrupt(fake_comfy.running)
    fake_comfy.release()
    assert await task == 1
    assert "interrupted in ComfyUI (not by us)" in capsys.readouterr().err


# -- as a separate process, with Ctrl+C ------------------------------------------------------


class Runner:
    """`python -m bot run ...` in a subprocess, read line by line."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.lines: list[str] = []

    async def wait_for_line(self, text: str) -> str:
        assert self.process.stdout is not None
        async with asyncio.timeout(15):
            while True:
                raw = await self.process.stdout.readline()
                if not raw:
                    raise AssertionError(f"no line with {text!r} in:\n" + "".join(self.lines))
                self.lines.append(raw.decode())
                if text in self.lines[-1]:
                    return self.lines[-1]

    async def finish(self) -> tuple[int, str, str]:
        async with asyncio.timeout(15):
            out, err = await self.process.communicate()
        assert self.process.returncode is not None
        return self.process.returncode, "".join(self.lines) + out.decode(), err.decode()

    def interrupt(self) -> None:
        self.process.send_signal(signal.SIGINT)


@pytest.fixture
async def spawn(tmp_path: Path, fake_comfy: FakeComfy) -> AsyncIterator[Any]:
    started: list[asyncio.subprocess.Process] = []

    async def start(*argv: str, max_file_bytes: int | None = None) -> Runner:
        env = {
            **os.environ,
            "COMFYUI_URL": fake_comfy.url,
            "WORKFLOWS_DIR": str(WORKFLOWS),
            "OUTPUT_DIR": str(tmp_path / "outputs"),
        }
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bot",
            "--env-file",
            str(tmp_path / "no.env"),
            "run",
            *argv,
            cwd=ROOT,
            env=env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            preexec_fn=None if max_file_bytes is None else _file_size_limit(max_file_bytes),
        )
        started.append(process)
        return Runner(process)

    yield start
    for process in started:
        if process.returncode is None:
            process.kill()
            await process.wait()


def _file_size_limit(limit: int) -> Callable[[], None]:
    """Return a pre-exec hook: writes past `limit` bytes fail, as on a full disk."""

    def apply() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG from write(), not a kill
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return apply


async def test_a_full_disk_exits_4_and_leaves_no_partial_file(
    spawn: Any, fake_comfy: FakeComfy, tmp_path: Path
) -> None:
    runner = await spawn("slow", "--yes", "--steps", "1", max_file_bytes=20)
    code, out, err = await runner.finish()
    assert code == 4, (out, err)
    assert "comfycord run: Could not save the outputs. Cannot save " in err
    assert "File too large" in err
    assert "Traceback" not in err
    outputs = tmp_path / "outputs"
    assert outputs.is_dir()
    assert list(outputs.iterdir()) == []
    assert fake_comfy.history  # the prompt did run: only saving failed


async def submit_other(fake: FakeComfy, steps: int = 2) -> str:
    """Queue a prompt of another client, as a second ComfyUI user would."""
    graph: dict[str, Any] = {
        "1": {"class_type": "EmptyImage", "inputs": {"width": 8, "height": 8, "batch_size": 1}},
        "2": {"class_type": "SlowProgress", "inputs": {"image": ["1", 0], "steps": steps}},
        "3": {"class_type": "SaveImage", "inputs": {"images": ["2", 0], "filename_prefix": "x"}},
    }
    graph["1"]["inputs"]["color"] = 0
    graph["2"]["inputs"].update(delay=0.0, preview="none", seed=1)
    async with ComfyClient(fake.url, client_id=OTHER_CLIENT) as other:
        return (await other.submit(graph)).prompt_id


async def test_ctrl_c_interrupts_only_our_running_prompt(spawn: Any, fake_comfy: FakeComfy) -> None:
    fake_comfy.step_delay = 0.05  # 400 steps: 20 s unless interrupted
    proc = await spawn("slow", "--yes", "--steps", "400")
    await proc.wait_for_line("step ")
    ours = fake_comfy.running
    assert ours is not None
    assert is_canonical(ours)
    theirs = await submit_other(fake_comfy)
    assert fake_comfy.pending == [theirs]

    proc.interrupt()
    code, out, err = await proc.finish()

    assert code == 130, (out, err)
    assert "Interrupted: ComfyUI was asked to stop your running prompt" in out
    assert fake_comfy.interrupts == [{"prompt_id": ours}]  # targeted, never global
    await fake_comfy.wait_for_prompt(theirs, "done")
    assert fake_comfy.history[theirs]["status"]["status_str"] == "success"
    assert fake_comfy.history[ours]["status"]["status_str"] == "error"


async def test_ctrl_c_removes_our_pending_prompt_from_the_queue(
    spawn: Any, fake_comfy: FakeComfy
) -> None:
    fake_comfy.hold()
    theirs = await submit_other(fake_comfy)
    await fake_comfy.wait_for_prompt(theirs, "running")
    proc = await spawn("slow", "--yes", "--steps", "2")
    await proc.wait_for_line("queued in ComfyUI, 1 prompt ahead")
    [ours] = fake_comfy.pending

    proc.interrupt()
    code, out, err = await proc.finish()

    assert code == 130, (out, err)
    assert "Interrupted: your prompt was removed from the queue before it started" in out
    assert fake_comfy.pending == []
    assert fake_comfy.interrupts == []
    fake_comfy.release()
    await fake_comfy.wait_for_prompt(theirs, "done")
    assert fake_comfy.history[theirs]["status"]["status_str"] == "success"
    assert ours not in fake_comfy.history


async def test_a_second_ctrl_c_quits_at_once(spawn: Any, fake_comfy: FakeComfy) -> None:
    fake_comfy.hold()  # the prompt starts but never reaches a step: the interrupt cannot land
    proc = await spawn("slow", "--yes", "--steps", "2")
    await proc.wait_for_line("starting")
    proc.interrupt()
    await proc.wait_for_line("Interrupted: ComfyUI was asked to stop your running prompt")
    proc.interrupt()
    code, _, err = await proc.finish()
    assert code == 130
    assert "Interrupted again: quitting now." in err
    fake_comfy.release()


class Terminal:
    """The master side of a pseudo-terminal: what the program shows, and typing into it."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.text = ""
        self._changed = asyncio.Event()
        self.is_closed = False
        asyncio.get_running_loop().add_reader(fd, self._read)

    def _read(self) -> None:
        try:
            data = os.read(self.fd, 65536)
        except OSError:  # EIO: the program closed its side
            data = b""
        if not data:
            self.close()
        self.text += data.decode(errors="replace")
        self._changed.set()

    async def wait_for(self, text: str) -> None:
        async with asyncio.timeout(15):
            while text not in self.text:
                assert not self.is_closed, self.text
                self._changed.clear()
                await self._changed.wait()

    async def wait_closed(self) -> None:
        """Read everything the program wrote, up to its end."""
        while not self.is_closed:
            self._changed.clear()
            await self._changed.wait()

    def type(self, text: str) -> None:
        os.write(self.fd, text.encode())

    def close(self) -> None:
        if not self.is_closed:
            self.is_closed = True
            asyncio.get_running_loop().remove_reader(self.fd)


async def run_on_terminal(tmp_path: Path, url: str, answer: str) -> tuple[int, str]:
    """Run `comfycord run slow` on a pseudo-terminal and answer; return the code and screen."""
    master, slave = pty.openpty()
    env = {**os.environ, "COMFYUI_URL": url, "WORKFLOWS_DIR": str(WORKFLOWS)}
    env["OUTPUT_DIR"] = str(tmp_path / "outputs")
    process = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "bot", "--env-file", str(tmp_path / "no.env")),
        *("run", "slow", "--steps", "5"),
        cwd=ROOT,
        env=env,
        stdin=slave,
        stdout=slave,
        stderr=slave,
    )
    os.close(slave)
    terminal = Terminal(master)
    try:
        await terminal.wait_for("Run it? [y/N] ")
        terminal.type(answer)
        async with asyncio.timeout(15):
            code = await process.wait()
            await terminal.wait_closed()
    finally:
        terminal.close()
        os.close(master)
        if process.returncode is None:
            process.kill()
            await process.wait()
    return code, terminal.text


async def test_on_a_terminal_it_asks_then_draws_the_bar_in_place(
    tmp_path: Path, fake_comfy: FakeComfy
) -> None:
    code, screen = await run_on_terminal(tmp_path, fake_comfy.url, "y\n")
    assert code == 0, screen
    assert "\r\x1b[Krunning [2/3] Slow Steps (SlowProgress) █" in screen
    assert "\r\x1b[Kdone" in screen
    assert "Saved " in screen


async def test_answering_no_sends_nothing(tmp_path: Path, fake_comfy: FakeComfy) -> None:
    code, screen = await run_on_terminal(tmp_path, fake_comfy.url, "n\n")
    assert code == 0, screen
    assert "Not run; nothing was sent to ComfyUI." in screen
    assert sent(fake_comfy) == set()


async def test_a_ui_format_file_is_converted_with_the_server_and_run(
    tmp_path: Path, out: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "fox.json"
    path.write_text(json.dumps(txt2img().to_json()))
    async with FakeComfy(models={"checkpoints": ["sd_xl_base_1.0.safetensors"]}) as fake:
        settings = settings_for(fake.url, out)
        assert await run(settings, str(path), "--yes", "--prompt", "a red fox", "--seed", "5") == 0
        [entry] = fake.history.values()
    graph = entry["prompt"][2]
    assert graph["2"]["inputs"]["text"] == "a red fox"
    assert graph["5"]["inputs"]["seed"] == 5
    assert graph["4"]["inputs"]["width"] == 768  # the PrimitiveNode's value
    assert "11" not in graph  # the bypassed LoRA
    assert "Seed      5 -> node 5.seed (KSampler)" in capsys.readouterr().out
    assert len(list(out.iterdir())) == 2  # SaveImage's batch of two
