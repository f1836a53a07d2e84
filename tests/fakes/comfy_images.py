"""Image values that flow between fake ComfyUI nodes, and the PNG/JPEG bytes made from them."""

from __future__ import annotations

import io
import json
import struct
from dataclasses import dataclass
from typing import Any

from PIL import Image, PngImagePlugin

PREVIEW_FORMATS = {"JPEG": (1, "image/jpeg"), "PNG": (2, "image/png")}


@dataclass(frozen=True, slots=True)
class FakeImage:
    """An IMAGE batch: size, batch size and one flat colour (enough to make real files)."""

    width: int
    height: int
    batch: int = 1
    color: tuple[int, int, int] = (128, 128, 128)

    def scaled_to(self, max_size: int) -> FakeImage:
        """Return the image scaled (up or down) so its longer side is `max_size`."""
        scale = max_size / max(self.width, self.height, 1)
        width = max(1, int(self.width * scale))
        height = max(1, int(self.height * scale))
        return FakeImage(width, height, self.batch, self.color)


@dataclass(frozen=True, slots=True)
class FakeLatent:
    """A LATENT batch, in pixel units."""

    width: int
    height: int
    batch: int = 1
    color: tuple[int, int, int] = (90, 110, 130)

    def decoded(self) -> FakeImage:
        """Return what VAEDecode makes of this latent."""
        return FakeImage(self.width, self.height, self.batch, self.color)


def rgb(color: int) -> tuple[int, int, int]:
    """Split ComfyUI's 0xRRGGBB colour integer."""
    return ((color >> 16) & 255, (color >> 8) & 255, color & 255)


class ImageFactory:
    """Encode fake images into real bytes, remembering what was already encoded."""

    def __init__(self) -> None:
        self._previews: dict[tuple[str, int, int, tuple[int, int, int]], bytes] = {}

    def png(self, image: FakeImage, *, text: dict[str, str] | None = None) -> bytes:
        """Return a PNG of one image of the batch, with optional tEXt chunks."""
        info = PngImagePlugin.PngInfo()
        for key, value in (text or {}).items():
            info.add_text(key, value)
        buffer = io.BytesIO()
        _solid(image).save(buffer, format="PNG", pnginfo=info, compress_level=4)
        return buffer.getvalue()

    def preview(self, fmt: str, image: FakeImage) -> bytes:
        """Return preview bytes (`fmt` is "JPEG" or "PNG")."""
        key = (fmt, image.width, image.height, image.color)
        if key not in self._previews:
            buffer = io.BytesIO()
            _solid(image).save(buffer, format=fmt, quality=95)
            self._previews[key] = buffer.getvalue()
        return self._previews[key]


def _solid(image: FakeImage) -> Image.Image:
    return Image.new("RGB", (image.width, image.height), image.color)


def preview_frame(fmt: str, data: bytes) -> bytes:
    """Build a binary event 1 (PREVIEW_IMAGE) frame."""
    return struct.pack(">II", 1, PREVIEW_FORMATS[fmt][0]) + data


def preview_metadata_frame(fmt: str, data: bytes, metadata: dict[str, Any]) -> bytes:
    """Build a binary event 4 (PREVIEW_IMAGE_WITH_METADATA) frame."""
    meta = json.dumps({**metadata, "image_type": PREVIEW_FORMATS[fmt][1]}).encode()
    return struct.pack(">II", 4, len(meta)) + meta + data


def text_frame(node_id: str, text: str) -> bytes:
    """Build a binary event 3 (TEXT) frame."""
    node = node_id.encode()
    return struct.pack(">II", 3, len(node)) + node + text.encode()


def convert_for_view(data: bytes, *, preview: str | None, channel: str | None) -> tuple[bytes, str]:
    """Apply /view's `preview=webp;50` and `channel=` options; return bytes and content type."""
    image = Image.open(io.BytesIO(data))
    if preview:
        fmt, _, quality = preview.partition(";")
        fmt = fmt.lower() if fmt.lower() in ("webp", "jpeg") else "webp"
        buffer = io.BytesIO()
        image.convert("RGB").save(buffer, format=fmt, quality=int(quality or 90))
        return buffer.getvalue(), f"image/{fmt}"
    buffer = io.BytesIO()
    if channel == "a":
        alpha = Image.new("RGBA", image.size)
        alpha.putalpha(image.convert("RGBA").getchannel("A"))
        alpha.save(buffer, format="PNG")
    elif channel == "rgb":
        image.convert("RGB").save(buffer, format="PNG")
    else:
        image.convert("RGBA").save(buffer, format="PNG")
    return buffer.getvalue(), "image/png"
