"""Input checks (first frame, allowed formats, full decode) and fitting outputs: pure values."""

from __future__ import annotations

import io
import random
import struct
import zlib

import pytest
from PIL import Image

from bot.errors import InvalidImage
from bot.images import ImageFile, check_input_image, fit_image, upload_name
from bot.pngrows import has_all_rows

LIMIT = 20 * 1024 * 1024


def encoded(image: Image.Image, fmt: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def frames(count: int, size: tuple[int, int] = (32, 24)) -> list[Image.Image]:
    return [Image.new("RGB", size, (i * 7 % 256, 40, 90)) for i in range(count)]


def noise(width: int, height: int, seed: int = 1) -> Image.Image:
    rng = random.Random(seed)
    return Image.frombytes("RGB", (width, height), rng.randbytes(width * height * 3))


def decoded(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def raw_png(width: int, height: int, raw: bytes, *, depth: int = 1, interlace: int = 0) -> bytes:
    """A greyscale PNG declaring width x height around `raw` filtered image data."""
    header = struct.pack(">IIBBBBB", width, height, depth, 0, 0, 0, interlace)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", header)
        + png_chunk(b"IDAT", zlib.compress(raw))
        + png_chunk(b"IEND", b"")
    )


def short_png(width: int, height: int, rows: int) -> bytes:
    """A 1-bit greyscale PNG declaring width x height but holding only `rows` rows."""
    return raw_png(width, height, (b"\0" + b"\xff" * ((width + 7) // 8)) * rows)


@pytest.mark.parametrize(
    ("fmt", "options"),
    [
        ("GIF", {"loop": 0}),
        ("PNG", {}),  # APNG
        ("WEBP", {"lossless": True}),
    ],
)
def test_an_animated_input_becomes_its_first_frame(fmt: str, options: dict[str, object]) -> None:
    first, *rest = frames(40)
    data = encoded(first, fmt, save_all=True, append_images=rest, duration=10, **options)
    assert getattr(Image.open(io.BytesIO(data)), "n_frames", 1) == 40

    checked = check_input_image(data, "anim.gif", max_bytes=LIMIT)

    image = decoded(checked.data)
    assert image.format == "PNG"
    assert getattr(image, "n_frames", 1) == 1
    assert image.size == (32, 24)
    assert image.convert("RGB").getpixel((0, 0))[1:] == (40, 90)
    assert checked.filename == "anim.png"


def test_a_gif_of_many_one_pixel_frames_on_a_big_canvas_is_one_frame() -> None:
    canvas = Image.new("P", (2000, 2000), 0)
    dots = [Image.new("P", (2000, 2000), 0) for _ in range(50)]
    for i, dot in enumerate(dots):
        dot.putpixel((i, i), 1)
    data = encoded(canvas, "GIF", save_all=True, append_images=dots, optimize=False)
    checked = check_input_image(data, "bomb.gif", max_bytes=LIMIT)
    assert getattr(decoded(checked.data), "n_frames", 1) == 1


@pytest.mark.parametrize("fmt", ["EPS", "TGA", "PCX", "SGI", "ICO", "DDS", "QOI", "TIFF", "PPM"])
def test_formats_outside_the_allowlist_are_refused_whatever_their_name(fmt: str) -> None:
    data = encoded(Image.new("RGB", (16, 16), (1, 2, 3)), fmt)
    with pytest.raises(InvalidImage, match=r"x\.png is not an image ComfyUI can read; send PNG"):
        check_input_image(data, "x.png", max_bytes=LIMIT)


def test_a_multi_page_tiff_is_refused() -> None:
    first, *rest = frames(3)
    data = encoded(first, "TIFF", save_all=True, append_images=rest)
    with pytest.raises(InvalidImage, match="not an image ComfyUI can read"):
        check_input_image(data, "pages.tiff", max_bytes=LIMIT)


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "GIF", "BMP", "WEBP"])
def test_accepted_formats_are_reencoded_as_png(fmt: str) -> None:
    image = noise(24, 16)
    checked = check_input_image(encoded(image, fmt), f"in.{fmt.lower()}", max_bytes=LIMIT)
    assert checked.filename == "in.png"
    assert checked.content_type == "image/png"
    assert decoded(checked.data).format == "PNG"
    assert decoded(checked.data).size == (24, 16)


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "GIF", "BMP", "WEBP"])
def test_a_truncated_file_is_refused_as_damaged(fmt: str) -> None:
    data = encoded(noise(64, 64), fmt)
    with pytest.raises(InvalidImage, match="damaged image"):
        check_input_image(data[: len(data) // 2], "cut.png", max_bytes=LIMIT)


def test_a_png_declaring_more_rows_than_it_holds_is_refused() -> None:
    data = short_png(8000, 8000, rows=1)
    with pytest.raises(InvalidImage, match="pixel data ends before its last row"):
        check_input_image(data, "tall.png", max_bytes=LIMIT)


def test_the_row_count_accepts_complete_pngs_plain_and_interlaced() -> None:
    assert has_all_rows(short_png(37, 11, rows=11))
    assert not has_all_rows(short_png(37, 11, rows=10))
    image = noise(37, 11)
    assert has_all_rows(encoded(image, "PNG"))
    assert has_all_rows(encoded(image.convert("RGBA"), "PNG"))
    # 3x2 8-bit Adam7: passes 1, 4 and 6 hold one pixel each, pass 7 three: 6 + 4 filter bytes.
    assert has_all_rows(raw_png(3, 2, b"\0" * 10, depth=8, interlace=1))
    assert not has_all_rows(raw_png(3, 2, b"\0" * 9, depth=8, interlace=1))
    assert has_all_rows(b"not a png at all")


def test_exif_orientation_is_applied_before_reencoding() -> None:
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 clockwise to show
    data = encoded(noise(40, 20), "JPEG", exif=exif)
    checked = check_input_image(data, "phone.jpg", max_bytes=LIMIT)
    assert decoded(checked.data).size == (20, 40)


@pytest.mark.parametrize(
    ("given", "chosen"),
    [
        ("x.png\0.php", "x.png"),
        ("../../etc/passwd.png", "passwd.png"),
        ("C:\\Users\\me\\cat photo.jpeg", "cat_photo.png"),
        (".png", "image.png"),
        ("ComfyUI_00001_.png [output]", "ComfyUI_00001.png"),
        ("a" * 100 + ".gif", "a" * 40 + ".png"),
    ],
)
def test_the_upload_name_is_ours(given: str, chosen: str) -> None:
    assert upload_name(given) == chosen


def test_an_output_over_pillows_bomb_limit_is_still_fitted(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A 14000x14000 upscale is over Pillow's limit; the limit is lowered rather than the
    # output raised, so the test stays small. Image.open refuses this one as a bomb.
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    data = encoded(noise(200, 150), "PNG")
    with pytest.raises(Image.DecompressionBombError):
        Image.open(io.BytesIO(data))

    fitted, note = fit_image(ImageFile("big.png", data), max_bytes=len(data) // 2)

    assert fitted.filename == "big.jpg"
    assert len(fitted.data) <= len(data) // 2
    assert note is not None
    assert "re-encoded as JPEG" in note


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"\x89PNG\r\n\x1a\n" + b"\0" * 5000, "too large to attach"),
        (b"plain bytes, not an image" * 200, "too large to attach"),
    ],
)
def test_an_output_that_cannot_be_fitted_is_named_not_raised(data: bytes, expected: str) -> None:
    fitted, note = fit_image(ImageFile("odd.png", data), max_bytes=100)
    assert fitted.data == data
    assert note == f"odd.png is {len(data) / 1048576:.1f} MiB, {expected}."


def test_an_animated_output_that_fits_not_even_as_a_still_is_named() -> None:
    # A larger limit gives the first frame instead (issue 12; tests/test_outputs.py).
    first, *rest = frames(5, (64, 64))
    data = encoded(first, "GIF", save_all=True, append_images=rest)
    kept, note = fit_image(ImageFile("anim.gif", data), max_bytes=10)
    assert kept.data == data
    assert note == "anim.gif could not be made small enough to attach."
