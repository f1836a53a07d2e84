"""Images in and out: check inputs before they reach ComfyUI, make outputs fit a size limit."""

from __future__ import annotations

import io
import mimetypes
import re
from dataclasses import dataclass

from PIL import Image, ImageOps, UnidentifiedImageError

from bot.errors import ImageTooLarge, InvalidImage
from bot.pngrows import has_all_rows

# Pillow refuses images above this many pixels as decompression bombs; stay well below it.
MAX_PIXELS = 64 * 1024 * 1024
# Formats an input may be in; anything else (EPS, PSD, TGA, ...) is refused whatever its name.
INPUT_FORMATS = ("PNG", "JPEG", "WEBP", "GIF", "BMP")
# Formats ComfyUI's save nodes write; outputs are ours, so they are opened without Pillow's
# decompression-bomb limit (an upscaler's 14000x14000 output is legitimate) but below this.
OUTPUT_FORMATS = ("PNG", "JPEG", "WEBP", "GIF")
MAX_OUTPUT_PIXELS = 16384 * 16384
# Outputs larger than this are reduced while decoding before they are re-encoded to fit.
_FIT_PIXELS = 40 * 1024 * 1024
_KEPT_MODES = frozenset({"1", "L", "LA", "RGB", "RGBA", "I;16"})
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]+")
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
    """Decode an input fully and return its first frame as a PNG under a name of ours.

    Only the first frame is kept: ComfyUI's LoadImage turns every frame of an animated or
    multi-page file into a batch entry. CPU-bound: call it through `asyncio.to_thread`.

    Raises:
        InvalidImage: empty, too large, not an accepted format, or damaged.
    """
    if not data:
        raise InvalidImage(f"{filename} is empty.")
    if len(data) > max_bytes:
        raise ImageTooLarge(
            f"{filename} is {_mib(len(data))}; the limit is {_mib(max_bytes)} per image."
        )
    try:
        with Image.open(io.BytesIO(data), formats=INPUT_FORMATS) as image:
            width, height = image.size
            if width * height > MAX_PIXELS:
                raise InvalidImage(f"{filename} is {width}x{height}, which is too many pixels.")
            image.seek(0)
            image.load()  # decodes every pixel: a truncated or damaged file fails here
            if image.format == "PNG" and not has_all_rows(data):
                raise InvalidImage(
                    f"{filename} is a damaged image (its pixel data ends before its last row)."
                )
            frame = _upright(image)
    except (UnidentifiedImageError, Image.DecompressionBombError) as exc:
        raise InvalidImage(
            f"{filename} is not an image ComfyUI can read; send PNG, JPEG, WebP, GIF or BMP."
        ) from exc
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise InvalidImage(f"{filename} is a damaged image ({exc}).") from exc
    buffer = io.BytesIO()
    frame.save(buffer, "PNG", compress_level=3)
    return ImageFile(upload_name(filename), buffer.getvalue())


def upload_name(filename: str) -> str:
    """Return the name we upload an input under: a safe stem of the user's name, then .png."""
    base = filename.replace("\\", "/").rsplit("/", 1)[-1].split(".", 1)[0]
    stem = _UNSAFE.sub("_", base).strip("_")[:40]
    return f"{stem or 'image'}.png"


def _upright(image: Image.Image) -> Image.Image:
    """Return the frame turned as its EXIF says (ComfyUI does the same) in a PNG-safe mode."""
    frame = ImageOps.exif_transpose(image) or image
    if frame.mode in _KEPT_MODES:
        return frame.copy() if frame is image else frame
    has_alpha = "A" in frame.mode or "transparency" in frame.info
    return frame.convert("RGBA" if has_alpha else "RGB")


def fit_image(file: ImageFile, max_bytes: int) -> tuple[ImageFile, str | None]:
    """Return the file unchanged if it fits, else a re-encoded or downscaled copy and a note.

    A still image is re-encoded as JPEG and downscaled until it fits; an animation (WEBP,
    APNG, GIF) or a video (with the `video` extra, PyAV) gives its first frame instead.
    Never raises for a bad or huge image: the note then says why it is not attached.
    """
    if len(file.data) <= max_bytes:
        return file, None
    too_large = f"{file.filename} is {_mib(len(file.data))}, too large to attach."
    try:
        image, moving = _still(file)
        fitted = None if image is None else _reencode(file, image, max_bytes)
    except (OSError, SyntaxError, ValueError, EOFError, MemoryError, Image.DecompressionBombError):
        return file, too_large
    if image is None:
        return file, too_large
    if fitted is None:
        return file, f"{file.filename} could not be made small enough to attach."
    if moving:
        note = f"{too_large} Here is its first frame; the {moving} is saved on the ComfyUI server."
        return fitted[0], note
    return fitted


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
    """Return a still picture of an output, and "animation" or "video" if it moves."""
    if is_video(file.filename):
        return _video_frame(file.data), "video"
    return _open_output(file.data)


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


def _reencode(file: ImageFile, image: Image.Image, max_bytes: int) -> tuple[ImageFile, str] | None:
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
    return None


def _open_output(data: bytes) -> tuple[Image.Image, str]:
    """Decode one of our outputs as RGB, reduced while decoding when it is huge.

    An animation gives its first frame, and "animation" beside it ("" for a still image).

    Raises:
        OSError, ValueError: not an image of an output format, damaged, or too many pixels.
    """
    Image.init()
    prefix = data[:16]
    for name in OUTPUT_FORMATS:
        factory, accept = Image.OPEN[name]
        if accept is not None and not accept(prefix):
            continue
        # The plugin class directly: Image.open would refuse a big output as a bomb.
        opened = factory(io.BytesIO(data), "")
        moving = "animation" if getattr(opened, "is_animated", False) else ""
        opened.seek(0)
        pixels = opened.width * opened.height
        if pixels > MAX_OUTPUT_PIXELS:
            raise ValueError(f"{opened.width}x{opened.height} is too many pixels")
        factor = 1
        while pixels // (factor * factor) > _FIT_PIXELS:
            factor *= 2
        if factor > 1 and name == "JPEG":
            opened.draft("RGB", (opened.width // factor, opened.height // factor))
            factor = 1
        opened.load()
        image: Image.Image = opened.reduce(factor) if factor > 1 else opened
        return (image if image.mode == "RGB" else image.convert("RGB")), moving
    raise ValueError("not an image format ComfyUI saves")


def _mib(size: int) -> str:
    return f"{size / (1024 * 1024):.1f} MiB"
