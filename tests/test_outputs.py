"""Animations and videos (SaveAnimatedWEBP/PNG, SaveWEBM, SaveVideo, VHS_VideoCombine's `gifs`)
reach every front door: posted on Discord, saved by the runner, served by the middleware."""

from __future__ import annotations

import asyncio
import io
from pathlib import Path

import av
import pytest
from PIL import Image

from bot.cli import build_parser
from bot.config import Settings
from bot.discord import render
from bot.discord.client import ComfyBot
from bot.images import ImageFile, fit_image, output_kind
from bot.terminal import run as runner
from tests.discord_env import (  # noqa: F401  # fixtures
    bot_fixture,
    env_fixture,
    final_edit,
    services_fixture,
)
from tests.fakes import comfy_media
from tests.fakes.comfy import FakeComfy
from tests.fakes.comfy_images import FakeImage
from tests.fakes.discord import FakeDiscord
from tests.http_harness import MOVING, serve_middleware

SUFFIXES = [".mp4", ".mp4", ".png", ".webm", ".webp"]
BIG = FakeImage(640, 480, color=(30, 90, 200))


def frames_of(data: bytes, suffix: str) -> int:
    if suffix in (".mp4", ".webm"):
        with av.open(io.BytesIO(data), mode="r") as container:
            return sum(1 for _ in container.decode(video=0))
    with Image.open(io.BytesIO(data)) as image:
        return int(getattr(image, "n_frames", 1))


async def test_the_runner_saves_every_kind_of_output(fake_comfy: FakeComfy, tmp_path: Path) -> None:
    out = tmp_path / "outputs"
    settings = Settings.from_env({"COMFYUI_URL": fake_comfy.url, "WORKFLOWS_DIR": str(tmp_path)})
    args = build_parser().parse_args(["run", str(MOVING), "--yes", "--out", str(out)])
    async with asyncio.timeout(30):
        assert await runner.main(args, settings) == 0
    saved = sorted(out.iterdir(), key=lambda p: p.suffix)
    assert [p.suffix for p in saved] == SUFFIXES
    assert {p.name.split("_")[0] for p in saved} == {"moving", "vhs"}
    for path in saved:
        assert frames_of(path.read_bytes(), path.suffix) == comfy_media.FRAMES, path


async def test_the_middleware_serves_videos_and_animations(fake_comfy: FakeComfy) -> None:
    async with serve_middleware(fake_comfy.url, "moving") as h, asyncio.timeout(30):
        job = await (await h.http.post("/queue")).json()
        await h.jobs.get(job["job_id"]).result()
        detail = await (await h.http.get(f"/jobs/{job['job_id']}")).json()
        types = {}
        for index, output in enumerate(detail["outputs"]):
            answer = await h.http.get(f"/jobs/{job['job_id']}/outputs/{index}")
            assert answer.status == 200
            suffix = Path(output["filename"]).suffix
            assert frames_of(await answer.read(), suffix) == comfy_media.FRAMES
            types[suffix] = answer.content_type
    assert types == {
        ".webp": "image/webp",
        ".png": "image/png",
        ".webm": "video/webm",
        ".mp4": "video/mp4",
    }


async def test_discord_posts_videos_and_animations(
    fake_discord: FakeDiscord, bot: ComfyBot
) -> None:
    user = fake_discord.add_user("vera")
    ix = await fake_discord.slash(
        "generate", {"prompt": "moving", "workflow": "moving"}, user_id=user
    )
    final = await fake_discord.wait_for(final_edit(ix), timeout=20)
    names = sorted(name for name, _, _ in final.files)
    assert [Path(name).suffix for name in sorted(names, key=lambda n: Path(n).suffix)] == SUFFIXES
    for name, data, _ in final.files:
        assert frames_of(data, Path(name).suffix) == comfy_media.FRAMES
    assert "2 animations and 3 videos" in final.json["content"]


async def test_discord_posts_a_still_frame_and_a_note_when_they_cannot_fit(
    fake_discord: FakeDiscord, bot: ComfyBot
) -> None:
    user = fake_discord.add_user("walt")
    fake_discord.attachment_size_limit = 900
    ix = await fake_discord.slash(
        "generate", {"prompt": "moving", "workflow": "moving"}, user_id=user
    )
    final = await fake_discord.wait_for(final_edit(ix), timeout=20)
    assert final.files
    for name, data, _ in final.files:
        assert len(data) <= 900
        if name.endswith(".jpg"):
            with Image.open(io.BytesIO(data)) as still:
                assert getattr(still, "n_frames", 1) == 1
    content = final.json["content"]
    assert "Here is its first frame; the video is saved on the ComfyUI server." in content


@pytest.mark.parametrize(
    ("suffix", "kind", "data"),
    [
        (".webp", "animation", comfy_media.animation(BIG, "WEBP")),
        (".png", "animation", comfy_media.animation(BIG, "PNG")),
        (".webm", "video", comfy_media.video(BIG, "webm")),
        (".mp4", "video", comfy_media.video(BIG, "mp4")),
    ],
)
def test_a_moving_output_too_large_gives_its_first_frame(
    suffix: str, kind: str, data: bytes
) -> None:
    output = ImageFile(f"clip{suffix}", data)
    assert output_kind(output) == kind
    still, note = fit_image(output, len(data) - 1)
    assert still.filename == "clip.jpg"
    assert len(still.data) < len(data)
    with Image.open(io.BytesIO(still.data)) as image:
        assert image.width <= 640
        assert abs(image.width / image.height - 640 / 480) < 0.02
        red, _, blue = image.convert("RGB").getpixel((10, 10))  # the first frame's colour
        assert abs(red - 30) < 16
        assert abs(blue - 200) < 16
    assert note == f"clip{suffix} is {len(data) / 1048576:.1f} MiB, too large to attach. " + (
        f"Here is its first frame; the {kind} is saved on the ComfyUI server."
    )


def test_a_video_that_cannot_be_read_is_noted_not_posted() -> None:
    files, notes = render.fit_outputs([ImageFile("broken.mp4", b"\x00" * 5000)], 1000)
    assert files == []
    assert notes == ["broken.mp4 is 0.0 MiB, too large to attach."]


def test_what_a_job_made_is_named_by_kind() -> None:
    moving = comfy_media.animation(FakeImage(8, 8), "WEBP")
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buffer, "PNG")
    outputs = [ImageFile("a.webp", moving), ImageFile("b.mp4", b""), ImageFile("c.mp4", b"")]
    assert render.made_of(outputs) == "1 animation and 2 videos"
    assert render.made_of([ImageFile("x.png", buffer.getvalue())]) == "1 image"
    assert render.made_of([]) == "no images"
