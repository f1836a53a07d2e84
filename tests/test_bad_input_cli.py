"""Bad input to `comfycord run` and to the settings: exit 2, a message on stderr, nothing sent.

Runner flags go through the real argument parser and `bot.terminal.run.main` against FakeComfy;
bad settings go through the `comfycord` console script (and a few in a subprocess, the way users
meet them).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot import cli
from bot.cli import build_parser
from bot.config import Settings
from bot.terminal import run as runner
from tests.bad_input import (
    REFUSED_FORMATS,
    Sent,
    bad_input,
    eps,
    huge_canvas_png,
    in_format,
    not_an_image,
    png,
    truncated_png,
)
from tests.fakes.comfy import FakeComfy

pytestmark = bad_input

ROOT = Path(__file__).resolve().parents[1]
WORKFLOWS = ROOT / "tests" / "fixtures" / "workflows"
FILES = {
    "image": png(),
    "text": not_an_image(),
    "eps": eps(),
    "truncated": truncated_png(),
    "huge": huge_canvas_png(),
    "empty": b"",
    **{kind.lower(): in_format(kind) for kind in REFUSED_FORMATS},
}

FLAGS = [
    (["nope"], "No workflow 'nope' in"),
    # A relative path that exists on no machine (../../etc/passwd did in some checkouts).
    (["../../no-such-comfycord-dir/passwd"], "no-such-comfycord-dir/passwd does not exist"),
    (["slow", "--set", "2.steps"], "is not NODE.INPUT=VALUE"),
    (["slow", "--set", "=3"], "is not NODE.INPUT=VALUE"),
    (["slow", "--set", "7.steps=3"], "no node '7'"),
    (["slow", "--set", "2.speed=3"], "has no input 'speed'"),
    (["slow", "--set", "2.steps=5000"], "steps: 5000 is above the max"),
    (["slow", "--steps", "0"], "steps must be between 1 and 500"),
    (["slow", "--steps", str(10**300)], "steps must be between 1 and 500"),
    (["slow", "--steps", "-3"], "steps must be between 1 and 500"),
    (["slow", "--width", "100"], "width"),
    (["slow", "--height", "99999"], "height"),
    (["slow", "--image", "{image}"], "takes no --image"),
    (["invert"], "takes 1 input image: pass --image PATH"),
    (["invert", "--image", "{missing}"], "does not exist"),
    (["invert", "--image", "{folder}"], "folder"),
    (["invert", "--image", "{text}"], "text.png"),
    (["invert", "--image", "{empty}"], "empty.png"),
    (["invert", "--image", "{eps}"], "eps.png"),
    (["invert", "--image", "{truncated}"], "truncated.png"),
    (["invert", "--image", "{huge}"], "huge.png"),
    (["invert", "--image", "{image}", "--image", "{image}"], "image"),
    *(
        (["invert", "--image", f"{{{kind.lower()}}}"], f"{kind.lower()}.png")
        for kind in REFUSED_FORMATS
    ),
]


@pytest.mark.parametrize(
    ("argv", "message"), [pytest.param(*flags, id=" ".join(flags[0])[:60]) for flags in FLAGS]
)
async def test_bad_runner_flags_exit_2_and_send_nothing(
    fake_comfy: FakeComfy,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
    message: str,
) -> None:
    paths = {name: tmp_path / f"{name}.png" for name in FILES}
    for name, data in FILES.items():
        paths[name].write_bytes(data)
    folder = tmp_path / "folder.png"
    folder.mkdir()
    given = [a.format(missing=tmp_path / "gone.png", folder=folder, **paths) for a in argv]
    settings = Settings.from_env(
        {"COMFYUI_URL": fake_comfy.url, "WORKFLOWS_DIR": str(WORKFLOWS), "OUTPUT_DIR": "out"}
    )
    sent = Sent(fake_comfy)

    args = build_parser().parse_args(["run", *given, "--yes"])
    async with asyncio.timeout(20):
        code = await runner.main(args, settings)

    err = capsys.readouterr().err
    assert code == 2, err
    assert err.startswith("comfycord run: ")
    assert message in err
    assert "Traceback" not in err
    assert sent.posts() == []


@pytest.mark.parametrize(
    "argv",
    [["--steps", "many"], ["--seed", "1.5"], ["--width"], ["--bogus"], []],
    ids=lambda v: " ".join(v) or "no workflow",
)
def test_unparseable_runner_flags_exit_2_with_usage(
    capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        build_parser().parse_args(["run", *(["slow"] if argv else []), *argv])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert "usage: comfycord" in err
    assert "error:" in err


SETTINGS = [
    ("COMFYUI_URL", "ftp://example"),
    ("COMFYUI_URL", "not a url"),
    ("COMFYUI_URLS", "http://a:1, ftp://b"),
    ("MAX_JOBS_PER_USER", "0"),
    ("MAX_JOBS_PER_USER", "²"),
    ("MAX_IN_FLIGHT_PER_BACKEND", "-1"),
    ("MAX_INPUT_IMAGE_BYTES", "1e9"),
    ("PROGRESS_INTERVAL", "nan"),
    ("PROGRESS_INTERVAL", "-1"),
    ("REQUEST_TIMEOUT", "inf"),
    ("REQUEST_TIMEOUT", "1e400"),
    ("SHOW_PREVIEWS", "maybe"),
    ("HTTP_PORT", "70000"),
    ("HTTP_MAX_EVENT_STREAMS", "0"),
    ("LOG_LEVEL", "LOUD"),
    ("ALLOWED_CHANNEL_IDS", "general"),
    ("DEV_GUILD_ID", "12ab"),
    ("JOURNAL_RETENTION_DAYS", "-5"),
    ("JOURNAL_IMAGE_RETENTION_HOURS", "soon"),
    ("LOG_FORMAT", "xml"),
    ("METRICS_PORT", "0"),
    ("METRICS_PORT", "http"),
    ("ALLOWED_ROLE_IDS", "-1"),
    ("SHARDED", "2"),
    ("AUTO_EXECUTE_ON_UPLOAD", "sometimes"),
    ("HTTP_MAX_BODY_BYTES", "0"),
    ("HTTP_ALLOWED_HOSTS", "http://evil.example/path"),
]


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    """Listen where COMFYUI_URL points, accepting nothing: any connection waits in the backlog."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        sock.setblocking(False)
        yield sock


def _connections(sock: socket.socket) -> int:
    count = 0
    with contextlib.suppress(BlockingIOError):
        while True:
            sock.accept()[0].close()
            count += 1
    return count


@pytest.mark.parametrize(("key", "value"), [pytest.param(*kv, id="=".join(kv)) for kv in SETTINGS])
def test_bad_settings_stop_comfycord_run_before_it_connects(
    listener: socket.socket,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    key: str,
    value: str,
) -> None:
    image = tmp_path / "in.png"
    image.write_bytes(png())
    for name in [k for k in os.environ if k.startswith(("COMFYUI_", "HTTP_", "JOURNAL_"))]:
        monkeypatch.delenv(name)
    port = listener.getsockname()[1]
    monkeypatch.setenv("COMFYUI_URL", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("WORKFLOWS_DIR", str(WORKFLOWS))
    monkeypatch.setenv(key, value)

    argv = ["--env-file", str(tmp_path / "none.env"), "run", "invert", "--image", str(image)]
    code = cli.main([*argv, "--yes"])

    err = capsys.readouterr().err
    assert code == 2, err
    assert "the settings need fixing" in err
    assert f"{key}:" in err
    assert "Traceback" not in err
    assert _connections(listener) == 0


@pytest.mark.parametrize(
    ("key", "value"), [pytest.param(*kv, id="=".join(kv)) for kv in SETTINGS[::6]]
)
async def test_bad_settings_stop_the_runner_before_anything_is_sent(
    fake_comfy: FakeComfy, tmp_path: Path, key: str, value: str
) -> None:
    image = tmp_path / "in.png"
    image.write_bytes(png())
    env = {k: v for k, v in os.environ.items() if not k.startswith(("COMFYUI_", "HTTP_"))}
    env |= {"COMFYUI_URL": fake_comfy.url, "WORKFLOWS_DIR": str(WORKFLOWS), key: value}
    env["OUTPUT_DIR"] = str(tmp_path / "out")
    sent = Sent(fake_comfy)

    process = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "bot", "--env-file", str(tmp_path / "none.env")),
        *("run", "invert", "--image", str(image), "--yes"),
        env=env,
        cwd=tmp_path,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    async with asyncio.timeout(30):
        out, err = await process.communicate()

    text = err.decode()
    assert process.returncode == 2, (out, text)
    assert "the settings need fixing" in text
    assert f"{key}:" in text
    assert "Traceback" not in text
    assert sent.posts() == []
