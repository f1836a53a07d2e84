"""Image moderation: NudeNet's detector (the optional extra) run off the event loop.

`comfycord[moderation]` installs nudenet, whose wheel carries its ONNX model: nothing is
downloaded at run time, and onnxruntime runs it on the CPU. Without the extra, a server that
asks for moderation gets no unchecked image posted (see `ImageModerator.decide`).
"""

from __future__ import annotations

import asyncio
import enum
import importlib
import importlib.util
import io
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Protocol, Self

from PIL import Image

EXPLICIT = frozenset(
    {
        "FEMALE_GENITALIA_EXPOSED",
        "FEMALE_BREAST_EXPOSED",
        "MALE_GENITALIA_EXPOSED",
        "BUTTOCKS_EXPOSED",
        "ANUS_EXPOSED",
    }
)
"""NudeNet's labels that make an image explicit; covered parts, faces and feet do not."""


@dataclass(frozen=True, slots=True)
class Verdict:
    """The detector's most explicit finding in one image (score 0 when there is none)."""

    score: float = 0.0
    label: str | None = None


class Detector(Protocol):
    """Something that scores an image; blocking, so it is only ever called on a worker thread."""

    def detect(self, data: bytes) -> Verdict:
        """Return the most explicit finding in an encoded image."""
        ...


class NudeNetDetector:
    """NudeNet's NudeDetector, loaded on first use (on the worker thread)."""

    def __init__(self) -> None:
        self._model: Any = None

    def __repr__(self) -> str:
        return f"NudeNetDetector(loaded={self._model is not None})"

    def detect(self, data: bytes) -> Verdict:
        """Return the most explicit finding in an encoded image."""
        # Imported here: only the moderation extra installs them.
        numpy = importlib.import_module("numpy")
        if self._model is None:
            self._model = importlib.import_module("nudenet").NudeDetector()
        with Image.open(io.BytesIO(data)) as image:
            # NudeNet converts RGBA to BGR itself; any other mode would trip it.
            pixels = numpy.asarray(image.convert("RGBA"))
        found = [d for d in self._model.detect(pixels) if d["class"] in EXPLICIT]
        best = max(found, key=lambda d: float(d["score"]), default=None)
        return Verdict(float(best["score"]), str(best["class"])) if best else Verdict()


def load_detector() -> Detector | None:
    """Return NudeNet's detector when the moderation extra is installed, else None."""
    if importlib.util.find_spec("nudenet") is None:
        return None
    return NudeNetDetector()


class Action(enum.StrEnum):
    """What to do with a result."""

    POST = "post"
    SPOILER = "spoiler"
    BLOCK = "block"


@dataclass(frozen=True, slots=True)
class Decision:
    """What to do with a set of images, and why."""

    action: Action
    verdict: Verdict = Verdict()
    reason: str = ""


class ImageModerator:
    """Score images on one worker thread it owns; decide per server setting and channel."""

    def __init__(self, detector: Detector | None) -> None:
        self.detector = detector
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="moderation")

    def __repr__(self) -> str:
        return f"ImageModerator({self.detector!r})"

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Stop the worker thread, waiting off the event loop for the image it scores, if any."""
        executor = self._executor
        await asyncio.to_thread(executor.shutdown, wait=True, cancel_futures=True)

    @property
    def is_available(self) -> bool:
        """Tell whether images can be checked at all."""
        return self.detector is not None

    async def verdict(self, images: Sequence[bytes]) -> Verdict:
        """Return the most explicit finding among the images, scored off the event loop.

        Raises:
            RuntimeError: no detector (the extra is not installed).
        """
        detector = self.detector
        if detector is None:
            raise RuntimeError("image moderation needs comfycord[moderation]")
        loop = asyncio.get_running_loop()
        verdicts = [await loop.run_in_executor(self._executor, detector.detect, d) for d in images]
        return max(verdicts, key=lambda v: v.score, default=Verdict())

    async def decide(
        self, images: Sequence[bytes], *, mode: str, threshold: float, is_nsfw_channel: bool
    ) -> Decision:
        """Decide how to post images: as they are, as spoilers, or not at all."""
        if mode == "off" or is_nsfw_channel or not images:
            return Decision(Action.POST)
        if self.detector is None:
            return Decision(Action.BLOCK, reason="image moderation is not installed")
        verdict = await self.verdict(images)
        if verdict.score < threshold:
            return Decision(Action.POST, verdict)
        action = Action.SPOILER if mode == "spoiler" else Action.BLOCK
        return Decision(action, verdict, f"{verdict.label} ({verdict.score:.2f})")
