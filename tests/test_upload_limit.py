"""ComfyUI's upload limit (`max_upload_size` in /features): an image over it is never sent.

The fake ComfyUI here takes request bodies up to 16 KiB, as a server started with a small
`--max-upload-size` does, and answers a larger upload with a 413, as aiohttp makes ComfyUI do.
"""

from __future__ import annotations

import asyncio
import io
import os
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from PIL import Image

from bot.comfy.client import ComfyClient, upload_size
from bot.comfy.errors import ComfyHTTPError
from bot.comfy.info import ServerFeatures
from bot.config import Settings
from bot.discord.client import ComfyBot
from bot.errors import OverUploadLimit, user_message
from bot.images import ImageFile, check_input_image
from bot.jobs.engine import Engine
from bot.jobs.model import GenerationRequest
from bot.jobs.progress import JobState
from bot.workflows.library import WorkflowLibrary
from tests.discord_env import (  # noqa: F401  # fixtures
    EPHEMERAL,
    Services,
    bot_fixture,
    env_fixture,
    services_fixture,
    webhook_of,
)
from tests.fakes.comfy import FakeComfy
from tests.fakes.discord import FakeDiscord
from tests.http_harness import image_form, serve_middleware
from tests.test_runner import run, sent, settings_for

LIMIT = 16 * 1024
ROOT = Path(__file__).resolve().parents[1]
DEMO = WorkflowLibrary.load(ROOT / "workflows")


def noise_png(width: int = 96, height: int = 96) -> bytes:
    """Return a PNG of random pixels: it does not compress, so it stays over the limit."""
    buffer = io.BytesIO()
    Image.frombytes("RGB", (width, height), os.urandom(width * height * 3)).save(buffer, "PNG")
    return buffer.getvalue()


BIG = check_input_image(noise_png(), "photo.png", max_bytes=10**7)  # as it is uploaded


def refusal_text(url: str, image: ImageFile = BIG) -> str:
    size = upload_size(image.data, image.filename) / 1024
    return (
        f"The input image is {size:.1f} KiB as ComfyCord uploads it (a PNG), over the 16.0 KiB"
        f" upload limit of the ComfyUI server at {url}; nothing was sent. Send a smaller image."
    )


def uploads_tried(fake: FakeComfy) -> list[tuple[str, str]]:
    return [r for r in fake.requests if r[1].endswith("/upload/image")]


@pytest.fixture
async def fake_comfy(comfy_version: str) -> AsyncIterator[FakeComfy]:
    """The FakeComfy every test here (and the Discord fixtures) uses: a 16 KiB upload limit."""
    async with FakeComfy(version=comfy_version, max_upload_size=LIMIT) as fake:
        yield fake
    assert not fake.errors, fake.errors


@pytest.fixture
async def engine(fake_comfy: FakeComfy) -> AsyncIterator[Engine]:
    settings = Settings.from_env({"COMFYUI_URL": fake_comfy.url, "REQUEST_TIMEOUT": "5"})
    async with (
        aiohttp.ClientSession() as session,
        Engine(settings, DEMO, session=session) as opened,
    ):
        yield opened


async def ready(engine: Engine) -> None:
    async with asyncio.timeout(5):
        assert await engine.wait_connected(5) is None


def demo_request(*images: ImageFile, requester: str = "alice") -> GenerationRequest:
    return GenerationRequest(requester=requester, workflow="demo", images=images)


async def test_the_fake_takes_a_body_at_its_limit_and_answers_413_above_it(
    fake_comfy: FakeComfy,
) -> None:
    overhead = upload_size(b"", "edge.png")
    async with aiohttp.ClientSession() as session:
        client = ComfyClient(fake_comfy.url, session=session)
        assert upload_size(b"x" * (LIMIT - overhead), "edge.png") == LIMIT
        await client.upload_image(b"x" * (LIMIT - overhead), "edge.png")  # taken
        with pytest.raises(ComfyHTTPError) as refused:
            await client.upload_image(BIG.data, BIG.filename)
    assert refused.value.status == 413


@pytest.mark.parametrize(
    ("answer", "limit"),
    [
        ({"max_upload_size": 104857600}, 104857600),
        ({"max_upload_size": 1.5e6}, 1500000),
        ({"max_upload_size": 0}, None),  # aiohttp: no limit
        ({"max_upload_size": -1}, None),
        ({"max_upload_size": float("inf")}, None),
        ({"max_upload_size": float("nan")}, None),
        ({"max_upload_size": "100MB"}, None),  # not a number: as a server that tells none
        ({"max_upload_size": True}, None),
        ({}, None),
    ],
)
def test_what_features_answers_becomes_a_limit_or_none(answer: dict, limit: int | None) -> None:
    assert ServerFeatures.from_data(answer).upload_limit == limit


async def test_the_limit_is_learned_from_features(engine: Engine) -> None:
    await ready(engine)
    assert engine.backends[0].upload_limit == LIMIT


async def test_an_image_over_the_servers_limit_is_refused_before_anything_is_sent(
    engine: Engine, fake_comfy: FakeComfy
) -> None:
    await ready(engine)
    with pytest.raises(OverUploadLimit) as refused:
        engine.jobs.submit(demo_request(BIG))
    assert user_message(refused.value) == refusal_text(fake_comfy.url)
    assert uploads_tried(fake_comfy) == []
    assert engine.jobs.active() == []
    small = check_input_image(noise_png(8, 8), "small.png", max_bytes=10**7)
    job = engine.jobs.submit(demo_request(small))  # under the limit: runs as ever
    async with asyncio.timeout(10):
        assert (await job.result()).state is JobState.DONE


async def test_a_limit_learned_after_the_job_was_accepted_fails_it_unsent(
    engine: Engine, fake_comfy: FakeComfy
) -> None:
    assert engine.backends[0].info is None  # not connected yet: no limit known
    job = engine.jobs.submit(demo_request(BIG))
    async with asyncio.timeout(10):
        result = await job.result()
    assert result.state is JobState.FAILED
    assert result.error is not None
    assert user_message(result.error) == refusal_text(fake_comfy.url)
    assert uploads_tried(fake_comfy) == []


async def test_a_job_goes_to_the_server_that_takes_its_image(fake_comfy: FakeComfy) -> None:
    async with FakeComfy() as roomy, aiohttp.ClientSession() as session:
        urls = f"{fake_comfy.url},{roomy.url}"
        settings = Settings.from_env({"COMFYUI_URLS": urls, "REQUEST_TIMEOUT": "5"})
        async with Engine(settings, DEMO, session=session) as engine:
            await ready(engine)
            jobs = [engine.jobs.submit(demo_request(BIG, requester=f"{n}")) for n in range(3)]
            async with asyncio.timeout(10):
                results = [await job.result() for job in jobs]
        assert [r.state for r in results] == [JobState.DONE] * 3
        assert {job.backend.url for job in jobs if job.backend} == {roomy.url}
        assert len(uploads_tried(roomy)) == 3
        assert uploads_tried(fake_comfy) == []


async def test_a_server_without_features_is_sent_the_image_as_before() -> None:
    async with (
        FakeComfy(max_upload_size=LIMIT, has_features=False) as old,
        aiohttp.ClientSession() as session,
    ):
        settings = Settings.from_env({"COMFYUI_URL": old.url, "REQUEST_TIMEOUT": "5"})
        async with Engine(settings, DEMO, session=session) as engine:
            await ready(engine)
            assert engine.backends[0].upload_limit is None
            job = engine.jobs.submit(demo_request(BIG))  # accepted: no limit is known
            async with asyncio.timeout(10):
                result = await job.result()
        assert result.state is JobState.FAILED  # ComfyUI's own 413, as before
        assert isinstance(result.error, ComfyHTTPError)
        assert result.error.status == 413
        assert len(uploads_tried(old)) == 1


async def test_discord_refuses_it_privately_and_sends_nothing(
    fake_discord: FakeDiscord, fake_comfy: FakeComfy, services: Services, bot: ComfyBot
) -> None:
    await services.backend.check()
    user = fake_discord.add_user("ivy")
    attachment = fake_discord.add_attachment(noise_png(), "photo.png")

    ix = await fake_discord.slash("generate", {"prompt": "x", "image": attachment}, user_id=user)

    followup = await fake_discord.wait_for(lambda c: webhook_of(ix)(c) and c.method == "POST")
    assert followup.json["flags"] == EPHEMERAL
    shown = followup.json["content"]
    assert shown.startswith("The input image is ")
    assert "over the 16.0 KiB upload limit" in shown
    assert f"of the ComfyUI server at {fake_comfy.url}; nothing was sent." in shown
    assert ix.original_message_id in fake_discord.deleted_messages  # the public "thinking…"
    assert uploads_tried(fake_comfy) == []


async def test_a_mention_is_answered_with_the_refusal_and_sends_nothing(
    fake_discord: FakeDiscord, fake_comfy: FakeComfy, services: Services, bot: ComfyBot
) -> None:
    await services.backend.check()
    user = fake_discord.add_user("jo")
    attachment = fake_discord.add_attachment(noise_png(), "photo.png")

    await fake_discord.post_message(
        "make it pop", user_id=user, attachments=[attachment], mentions_bot=True
    )

    reply = await fake_discord.wait_for(
        lambda c: c.method == "POST" and c.path.endswith("/messages") and c.status == 200
    )
    assert "over the 16.0 KiB upload limit" in reply.json["content"]
    assert services.jobs.active() == []
    assert uploads_tried(fake_comfy) == []


async def test_http_answers_413_at_upload_and_sends_nothing(fake_comfy: FakeComfy) -> None:
    async with serve_middleware(fake_comfy.url, "demo") as h:
        answer = await h.http.post("/upload/image", data=image_form(BIG.data, "photo.png"))
        body = await answer.json()
    assert answer.status == 413
    assert body["error"]["code"] == "over_upload_limit"
    assert body["error"]["message"] == refusal_text(fake_comfy.url)
    assert uploads_tried(fake_comfy) == []


async def test_the_runner_exits_2_with_the_refusal_on_stderr(
    fake_comfy: FakeComfy, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    image = tmp_path / "photo.png"
    image.write_bytes(BIG.data)
    settings = settings_for(fake_comfy.url, tmp_path / "out")

    assert await run(settings, "invert", "--image", str(image), "--yes") == 2

    err = capsys.readouterr().err
    assert "over the 16.0 KiB upload limit" in err
    assert f"of the ComfyUI server at {fake_comfy.url}; nothing was sent." in err
    assert sent(fake_comfy) == set()
