"""The fake ComfyUI's savers of animations and videos, writing real WEBP, APNG, WEBM and MP4."""

from __future__ import annotations

import io
from collections.abc import Mapping
from typing import Any

import av
from PIL import Image

from tests.fakes.comfy_images import FakeImage

# What node classes do; registered beside the image nodes in comfy_nodes.NODE_BEHAVIOURS.
FRAMES = 4
VHS_VIDEO_COMBINE: dict[str, Any] = {
    # The required inputs of Kosinkadink/ComfyUI-VideoHelperSuite's VHS_VideoCombine.
    "required": {
        "images": ["IMAGE"],
        "frame_rate": ["FLOAT", {"default": 8, "min": 1, "step": 1}],
        "loop_count": ["INT", {"default": 0, "min": 0, "max": 100, "step": 1}],
        "filename_prefix": ["STRING", {"default": "AnimateDiff"}],
        "format": [["image/gif", "image/webp", "video/h264-mp4", "video/webm"]],
        "pingpong": ["BOOLEAN", {"default": False}],
        "save_output": ["BOOLEAN", {"default": True}],
    },
    "output": ["VHS_FILENAMES"],
    "output_node": True,
}


def frames(image: FakeImage) -> list[Image.Image]:
    """Return a few frames of the image, each a little lighter, so that it really moves."""
    red, green, blue = image.color
    return [
        Image.new("RGB", (image.width, image.height), (min(255, red + 20 * i), green, blue))
        for i in range(FRAMES)
    ]


def animation(image: FakeImage, fmt: str) -> bytes:
    """Return an animated WEBP or PNG (APNG) of the image."""
    first, *rest = frames(image)
    buffer = io.BytesIO()
    first.save(buffer, format=fmt, save_all=True, append_images=rest, duration=125, loop=0)
    return buffer.getvalue()


def video(image: FakeImage, container: str) -> bytes:
    """Return a WEBM (VP9) or MP4 (H.264) video of the image."""
    codec = "libvpx-vp9" if container == "webm" else "h264"
    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format=container) as output:
        stream = output.add_stream(codec, rate=8)
        stream.width, stream.height = image.width - image.width % 2, image.height - image.height % 2
        stream.pix_fmt = "yuv420p"
        for frame in frames(image):
            resized = frame.crop((0, 0, stream.width, stream.height))
            for packet in stream.encode(av.VideoFrame.from_image(resized)):
                output.mux(packet)
        for packet in stream.encode():
            output.mux(packet)
    return buffer.getvalue()


def saved(class_type: str, inputs: Mapping[str, Any], image: FakeImage) -> tuple[str, bytes]:
    """Return the suffix and bytes a saver node writes for `image`."""
    if class_type == "SaveAnimatedWEBP":
        return ".webp", animation(image, "WEBP")
    if class_type == "SaveAnimatedPNG":
        return ".png", animation(image, "PNG")
    if class_type == "SaveWEBM":
        return ".webm", video(image, "webm")
    if class_type == "VHS_VideoCombine":
        kind = str(inputs.get("format", "image/gif"))
        if kind.startswith("video/"):
            suffix = "webm" if kind == "video/webm" else "mp4"
            return f".{suffix}", video(image, suffix)
        return f".{kind.split('/')[1]}", animation(image, kind.split("/")[1].upper())
    return ".mp4", video(image, "mp4")  # SaveVideo, format "auto"
