"""Credentials in COMFYUI_URL never reach a log, a repr, a health error or a status line."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest

from bot.cli import build_parser
from bot.comfy.backend import ComfyBackend
from bot.comfy.client import ComfyClient
from bot.comfy.errors import ComfyUnavailable
from bot.comfy.stream import Backoff
from bot.comfy.urls import redact, shown_url
from bot.config import Settings
from bot.discord.listings import backend_status
from bot.terminal import check as doctor
from bot.terminal import run as runner
from tests.backend_env import closed_url
from tests.fakes.comfy import FakeComfy

SECRET = "s3cr3t-pass"
FIXTURES = Path(__file__).resolve().parent / "fixtures" / "workflows"


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("http://alice:s3cr3t@gpu:8188", "http://***@gpu:8188"),
        ("https://token@comfy.example/base", "https://***@comfy.example/base"),
        ("ws://a:b@127.0.0.1:1/ws?clientId=x", "ws://***@127.0.0.1:1/ws?clientId=x"),
        ("http://127.0.0.1:8188", "http://127.0.0.1:8188"),
        ("http://host/path@not-userinfo", "http://host/path@not-userinfo"),
    ],
)
def test_shown_url_hides_userinfo(url: str, shown: str) -> None:
    assert shown_url(url) == shown


def test_redact_finds_every_url_in_a_text() -> None:
    text = "Cannot connect to http://u:p@a:1/x and wss://t@b:2 (see http://c:3)"
    assert redact(text) == "Cannot connect to http://***@a:1/x and wss://***@b:2 (see http://c:3)"


def test_settings_repr_holds_no_comfy_password() -> None:
    settings = Settings.from_env({"COMFYUI_URL": f"http://bob:{SECRET}@127.0.0.1:8188"})
    assert SECRET not in repr(settings)


async def test_a_connected_backend_shows_and_logs_no_password(
    fake_comfy: FakeComfy, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    url = fake_comfy.url.replace("http://", f"http://bob:{SECRET}@")
    async with ComfyClient(url, timeout=5) as client:
        backend = ComfyBackend(client, backoff=Backoff(initial=0.02, maximum=0.2))
        async with backend:
            async with asyncio.timeout(5):
                await backend.stream.wait_connected()
            health = await backend.check()
            shown = [
                backend.url,
                repr(backend),
                repr(client),
                repr(backend.stream),
                backend_status(backend.url, health, is_healthy=True, queue_remaining=0),
            ]
    assert health.is_up
    assert any("connected" in r.getMessage() for r in caplog.records)
    for text in [*shown, *(r.getMessage() for r in caplog.records)]:
        assert SECRET not in text
        # As a URL's user ("bob:" / "bob@"): a bare "bob" turns up in random base64 (a
        # WebSocket key in a DEBUG line) about once in a few thousand runs.
        assert "bob:" not in text
        assert "bob@" not in text
    assert backend.url == fake_comfy.url.replace("http://", "http://***@")


async def test_an_unreachable_backend_shows_no_password(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    url = closed_url().replace("http://", f"http://bob:{SECRET}@")
    async with ComfyClient(url, timeout=5) as client:
        with pytest.raises(ComfyUnavailable) as unreachable:
            await client.system_stats()
        backend = ComfyBackend(client, backoff=Backoff(initial=0.02, maximum=0.05))
        async with backend:
            health = await backend.check()
            status = backend_status(backend.url, health, is_healthy=False, queue_remaining=0)
    assert not health.is_up
    assert health.error
    assert "unreachable" in str(unreachable.value)
    for text in [
        str(unreachable.value),
        health.error,
        status,
        *(r.getMessage() for r in caplog.records),
    ]:
        assert SECRET not in text


async def test_comfycord_check_and_run_print_no_password(
    fake_comfy: FakeComfy, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    up = fake_comfy.url.replace("http://", f"http://bob:{SECRET}@")
    down = closed_url().replace("http://", f"http://bob:{SECRET}@")
    settings = Settings.from_env(
        {
            "COMFYUI_URLS": f"{up},{down}",
            "COMFYUI_URL": up,
            "WORKFLOWS_DIR": str(FIXTURES),
            "OUTPUT_DIR": str(tmp_path / "out"),
        }
    )
    async with asyncio.timeout(20):
        assert await doctor.main(build_parser().parse_args(["check"]), settings) == 1
        assert await runner.main(build_parser().parse_args(["run", "slow", "--yes"]), settings) == 0
    printed = capsys.readouterr()
    assert "ComfyUI at http://***@127.0.0.1:" in printed.out + printed.err
    assert SECRET not in printed.out + printed.err
