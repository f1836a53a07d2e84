"""Images in and out: check inputs before they reach ComfyUI, make outputs fit a size limit."""

from __future__ import annotations

import io
import mimetypes
from dataclasses import dataclass

from PIL import Image, UnidentifiedImageError

from bot.errors import ImageTooLarge, InvalidImage

# Pillow refuses images above this many pixels as decompression bombs; stay well below it.
MAX_PIXELS = 64 * 1024 * 1024
VIDEO_SUFFIXES = (".mp4", ".webm", ".mov", ".mkv", ".avi", ".m4v")


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
    """Return the file unchanged if it fits, else a smaller still copy and a note.

    A still image is re-encoded as JPEG and downscaled until it fits; an animation (WEBP,
    APNG, GIF) or a video (with the `video` extra, PyAV) gives its first frame instead.
    """
    if len(file.data) <= max_bytes:
        return file, None
    still, moving = _still(file)
    too_large = f"{file.filename} is {_mib(len(file.data))}, too large to attach."
    if still is None:
        return file, too_large
    fitted = _jpeg_within(still, max_bytes)
    if fitted is None:
        return file, f"{file.filename} could not be made small enough to attach."
    data, is_scaled, size = fitted
    stem = file.filename.rsplit(".", 1)[0]
    if moving:
        note = f"{too_large} Here is its first frame; the {moving} is saved on the ComfyUI server."
    else:
        note = (
            f"{file.filename} ({_mib(len(file.data))}) was re-encoded as JPEG"
            + (f" at {size[0]}x{size[1]}" if is_scaled else "")
            + " to fit Discord's upload limit."
        )
    return ImageFile(f"{stem}.jpg", data), note


def is_video(filename: str) -> bool:
    """Tell whether a file name is a video's (mp4, webm, ...), which Pillow cannot open."""
    return filename.lower().endswith(VIDEO_SUFFIXES)


def output_kind(file: ImageFile) -> str:
    """Return "video", "animation" or "image" (what Pillow cannot open counts as an image)."""
    if is_video(file.filename):
        return "video"
    try:
        with Image.open(io.BytesIO(file.data)) as opened:
            return "animation" if getattr(opened, "is_animated", False) else "image"
    except (OSError, ValueError, Image.DecompressionBombError):
        return "image"


def _still(file: ImageFile) -> tuple[Image.Image | None, str]:
    """Return a still picture of the file, and "animation" or "video" if it moves."""
    if is_video(file.filename):
        return _video_frame(file.data), "video"
    try:
        with Image.open(io.BytesIO(file.data)) as opened:
            moving = "animation" if getattr(opened, "is_animated", False) else ""
            opened.seek(0)
            return opened.convert("RGB"), moving
    except (OSError, ValueError, Image.DecompressionBombError):
        return None, ""


def _video_frame(data: bytes) -> Image.Image | None:
    """Return the first frame of a video, or None without PyAV or for an unreadable file."""
    try:
        import av  # the optional `video` extra
    except ImportError:
        return None
    try:
        with av.open(io.BytesIO(data), mode="r") as container:
            for frame in container.decode(video=0):
                # PyAV's stub leaves to_image unannotated; it returns a PIL image.
                image: Image.Image = frame.to_image()  # type: ignore[no-untyped-call]
                return image
    except (av.FFmpegError, ValueError, IndexError):
        return None
    return None


def _jpeg_within(image: Image.Image, max_bytes: int) -> tuple[bytes, bool, tuple[int, int]] | None:
    """Return JPEG bytes of `image` within `max_bytes` (downscaled if need be), if possible."""
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
                return buffer.getvalue(), scale < 1.0, candidate.size
        scale *= 0.7
    return None


def _mib(size: int) -> str:
    return f"{size / (1024 * 1024):.1f} MiB"
