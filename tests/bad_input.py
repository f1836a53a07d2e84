"""The bad-input suite's shared pieces: bad files, and what "nothing reached ComfyUI" means.

Every case of tests/test_bad_input_*.py is marked `bad_input`; tests/conftest.py prints how many
ran. A case passes when the front door refuses with a clear message and the fake ComfyUI got no
request that could change anything there (no POST) from the moment the case began.
"""

from __future__ import annotations

import io
import struct
import zlib

import pytest
from PIL import Image

from tests.fakes.comfy import FakeComfy

bad_input = pytest.mark.bad_input


class Sent:
    """The requests that reach FakeComfy from a mark on (background GETs aside)."""

    def __init__(self, fake: FakeComfy) -> None:
        self._fake = fake
        self._start = len(fake.requests)

    def posts(self) -> list[tuple[str, str]]:
        """Return the POSTs (prompts, uploads, interrupts, queue changes) since the mark."""
        return [r for r in self._fake.requests[self._start :] if r[0] == "POST"]


def png(width: int = 16, height: int = 12) -> bytes:
    """Return a small valid PNG."""
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (200, 30, 30)).save(buffer, "PNG")
    return buffer.getvalue()


def truncated_png() -> bytes:
    """Return a PNG cut off in its pixel data (its header still parses)."""
    whole = png(64, 64)
    return whole[: len(whole) // 2]


def huge_canvas_png(width: int = 8000, height: int = 8000) -> bytes:
    """Return a tiny PNG whose header declares a huge canvas and holds one row of pixels."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    row = zlib.compress(b"\x00" + b"\x00" * 3 * width)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", row) + chunk(b"IEND", b"")


def animated_gif(frames: int = 40) -> bytes:
    """Return a GIF with many frames (LoadImage would make a batch of them)."""
    images = [Image.new("P", (32, 32), color) for color in range(frames)]
    buffer = io.BytesIO()
    images[0].save(buffer, "GIF", save_all=True, append_images=images[1:], duration=10)
    return buffer.getvalue()


def eps() -> bytes:
    """Return a minimal EPS file (Pillow renders these through Ghostscript)."""
    return (
        b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 16 16\n"
        b"newpath 0 0 moveto 16 16 lineto stroke\nshowpage\n%%EOF\n"
    )


REFUSED_FORMATS = (
    "ICO",
    "TGA",
    "PCX",
    "SGI",
    "TIFF",
    "PPM",
    "DDS",
    "QOI",
    "JPEG2000",
    "XBM",
    "PDF",
)
"""Formats Pillow reads (or renders) that the input check must refuse, whatever the name says."""


def in_format(kind: str) -> bytes:
    """Return a small picture saved in one of Pillow's formats."""
    image = Image.new("RGB", (16, 16), (1, 2, 3))
    buffer = io.BytesIO()
    (image.convert("1") if kind == "XBM" else image).save(buffer, kind)
    return buffer.getvalue()


def multipage_tiff(pages: int = 5) -> bytes:
    """Return a TIFF with several pages."""
    images = [Image.new("RGB", (16, 16), (page, 0, 0)) for page in range(pages)]
    buffer = io.BytesIO()
    images[0].save(buffer, "TIFF", save_all=True, append_images=images[1:])
    return buffer.getvalue()


def not_an_image() -> bytes:
    """Return text bytes."""
    return b"this is not an image, whatever its name says\n" * 4
