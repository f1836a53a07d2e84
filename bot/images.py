"""Images in and out: check inputs before they reach ComfyUI, make outputs fit a size limit."""

from __future__ import annotations

import io
import mimetypes
from dataclasses import dataclass

from PIL import Image, UnidentifiedImageError

from bot.errors import ImageTooLarge, InvalidImage

# Pillow refuses images above this many pixels as decompression bombs; stay well below it.
MAX_PIXELS = 64 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class ImageFile:
    """A named image with its bytes (an input to upload, or an output to post)."""

    filename: str
    data: bytes

    def __repr__(self) -> str:
        return f"ImageFile({self.filename!r}, {len(self.data)} bytes)"

    @property
    def content_type(self) -> str:
        """Guess the MIME type from the file name."""
        return mimetypes.guess_type(self.filename)[0] or "application/octet-stream"


def check_input_image(data: bytes, filename: str, *, max_bytes: int) -> ImageFile:
    """Return the image if it is a decodable picture within the limits.

    Raises:
        InvalidImage: empty, too large, not an image, or corrupt.
    """
    if not data:
        raise InvalidImage(f"{filename} is empty.")
    if len(data) > max_bytes:
        raise ImageTooLarge(
            f"{filename} is {_mib(len(data))}; the limit is {_mib(max_bytes)} per image."
        )
    try:
        with Image.open(io.BytesIO(data)) as image:
            width, height = image.size
            if width * height > MAX_PIXELS:
                raise InvalidImage(f"{filename} is {width}x{height}, which is too many pixels.")
            image.verify()
    except (UnidentifiedImageError, Image.DecompressionBombError) as exc:
        raise InvalidImage(f"{filename} is not an image ComfyUI can read.") from exc
    except (OSError, SyntaxError, ValueError) as exc:
        raise InvalidImage(f"{filename} is a damaged image ({exc}).") from exc
    return ImageFile(filename, data)


def fit_image(file: ImageFile, max_bytes: int) -> tuple[ImageFile, str | None]:
    """Return the file unchanged if it fits, else a re-encoded or downscaled copy and a note."""
    if len(file.data) <= max_bytes:
        return file, None
    try:
        with Image.open(io.BytesIO(file.data)) as opened:
            if getattr(opened, "is_animated", False):
                return file, f"{file.filename} is {_mib(len(file.data))}, too large to attach."
            image = opened.convert("RGB")
    except (OSError, ValueError):
        return file, f"{file.filename} is {_mib(len(file.data))}, too large to attach."
    stem = file.filename.rsplit(".", 1)[0]
    scale = 1.0
    for _ in range(12):
        candidate = image
        if scale < 1.0:
            size = (max(1, int(image.width * scale)), max(1, int(image.height * scale)))
            candidate = image.resize(size, Image.Resampling.LANCZOS)
        for quality in (92, 85, 75):
            buffer = io.BytesIO()
            candidate.save(buffer, "JPEG", quality=quality, optimize=True)
            if buffer.tell() <= max_bytes:
                note = (
                    f"{file.filename} ({_mib(len(file.data))}) was re-encoded as JPEG"
                    + (f" at {candidate.width}x{candidate.height}" if scale < 1.0 else "")
                    + " to fit Discord's upload limit."
                )
                return ImageFile(f"{stem}.jpg", buffer.getvalue()), note
        scale *= 0.7
    return file, f"{file.filename} could not be made small enough to attach."


def _mib(size: int) -> str:
    return f"{size / (1024 * 1024):.1f} MiB"
