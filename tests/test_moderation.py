"""Image moderation: decisions with a stub detector, and the real NudeNet model when installed."""

import io
import threading

import pytest
from PIL import Image, ImageDraw

from bot.community.nsfw import Action, ImageModerator, NudeNetDetector, Verdict, load_detector


class StubDetector:
    """Scores images by their first byte; records the thread it ran on."""

    def __init__(self, scores: dict[bytes, Verdict]) -> None:
        self.scores = scores
        self.threads: set[str] = set()

    def detect(self, data: bytes) -> Verdict:
        self.threads.add(threading.current_thread().name)
        return self.scores.get(data, Verdict())


SAFE, EXPLICIT = b"safe", b"explicit"
STUB = {EXPLICIT: Verdict(0.91, "FEMALE_BREAST_EXPOSED"), SAFE: Verdict(0.1, "BUTTOCKS_EXPOSED")}


@pytest.fixture
async def moderator():
    detector = StubDetector(STUB)
    async with ImageModerator(detector) as moderator:
        yield moderator


@pytest.mark.parametrize(
    ("images", "mode", "is_nsfw", "action"),
    [
        ([SAFE], "block", False, Action.POST),
        ([SAFE, EXPLICIT], "block", False, Action.BLOCK),  # the worst image decides
        ([EXPLICIT], "spoiler", False, Action.SPOILER),
        ([EXPLICIT], "block", True, Action.POST),  # an age-restricted channel takes anything
        ([EXPLICIT], "off", False, Action.POST),
        ([], "block", False, Action.POST),
    ],
)
async def test_decisions_follow_the_server_setting_and_the_channel(
    moderator, images, mode, is_nsfw, action
):
    decision = await moderator.decide(images, mode=mode, threshold=0.6, is_nsfw_channel=is_nsfw)
    assert decision.action is action


async def test_the_threshold_is_a_setting(moderator):
    decision = await moderator.decide([SAFE], mode="block", threshold=0.05, is_nsfw_channel=False)
    assert decision.action is Action.BLOCK
    assert decision.reason == "BUTTOCKS_EXPOSED (0.10)"


async def test_the_detector_runs_off_the_event_loop(moderator):
    await moderator.verdict([SAFE, EXPLICIT])
    assert moderator.detector.threads
    assert all(name.startswith("moderation") for name in moderator.detector.threads)


async def test_without_the_extra_nothing_unchecked_is_posted():
    async with ImageModerator(None) as moderator:
        assert not moderator.is_available
        decision = await moderator.decide(
            [SAFE], mode="spoiler", threshold=0.6, is_nsfw_channel=False
        )
        assert decision.action is Action.BLOCK
        assert "not installed" in decision.reason
        off = await moderator.decide([SAFE], mode="off", threshold=0.6, is_nsfw_channel=False)
        assert off.action is Action.POST


def landscape() -> bytes:
    """A made-up safe picture: sky, sun, hills (RGB, not RGBA: NudeNet needs converting)."""
    image = Image.new("RGB", (512, 384), (120, 170, 230))
    draw = ImageDraw.Draw(image)
    draw.ellipse((380, 40, 460, 120), fill=(250, 220, 90))
    draw.polygon(
        [(0, 300), (150, 180), (320, 290), (512, 200), (512, 384), (0, 384)], fill=(60, 140, 70)
    )
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


async def test_the_real_nudenet_model_passes_a_safe_image():
    pytest.importorskip("nudenet")
    detector = load_detector()
    assert isinstance(detector, NudeNetDetector)
    async with ImageModerator(detector) as moderator:
        verdict = await moderator.verdict([landscape()])
        decision = await moderator.decide(
            [landscape()], mode="block", threshold=0.6, is_nsfw_channel=False
        )
    assert repr(detector) == "NudeNetDetector(loaded=True)"  # the model really ran
    assert verdict.score < 0.6
    assert decision.action is Action.POST
