"""Compose a batch's images into one grid picture, in batch order (2 by 2 for four, 1 by 2 for two).

CPU-bound (Pillow): call `compose_grid` through `asyncio.to_thread`.
"""

from __future__ import annotations

import io
from collections.abc import Sequence

from PIL import Image

from bot.images import ImageFile

GRID_QUALITY = 92  # JPEG: a grid is for choosing; U<n> posts the full image untouched
BACKGROUND = (24, 24, 27)


def is_grid(count: int | None, images: int) -> bool:
    """Tell whether a result of `images` images, `count` asked for, is posted as a grid."""
    return (count or 1) > 1 and 2 <= images <= 4


def grid_shape(count: int) -> tuple[int, int]:
    """Return (columns, rows) of the grid for `count` images (one to four).

    Raises:
        ValueError: fewer than one or more than four images.
    """
    if not 1 <= count <= 4:
        raise ValueError(f"a grid holds one to four images, not {count}")
    return {1: (1, 1), 2: (2, 1), 3: (2, 2), 4: (2, 2)}[count]


def compose_grid(images: Sequence[ImageFile], filename: str = "grid.jpg") -> ImageFile:
    """Return one picture with `images` left to right, top to bottom, each cell the largest size.

    A smaller image sits centred in its cell; three images leave the last cell empty.

    Raises:
        ValueError: not one to four images, or one that Pillow cannot read.
    """
    columns, rows = grid_shape(len(images))
    opened = [_open(image) for image in images]
    cell_width = max(picture.width for picture in opened)
    cell_height = max(picture.height for picture in opened)
    canvas = Image.new("RGB", (cell_width * columns, cell_height * rows), BACKGROUND)
    for index, picture in enumerate(opened):
        row, column = divmod(index, columns)
        left = column * cell_width + (cell_width - picture.width) // 2
        top = row * cell_height + (cell_height - picture.height) // 2
        canvas.paste(picture, (left, top))
    buffer = io.BytesIO()
    canvas.save(buffer, "JPEG", quality=GRID_QUALITY)
    return ImageFile(filename, buffer.getvalue())


def grid_of(images: Sequence[ImageFile]) -> tuple[ImageFile, ...]:
    """Return the grid of `images` as the one file to post, or the images themselves when one
    of them is not a picture Pillow reads (a video): those are posted as they are."""
    try:
        return (compose_grid(images),)
    except ValueError:
        return tuple(images)


def _open(image: ImageFile) -> Image.Image:
    try:
        with Image.open(io.BytesIO(image.data)) as opened:
            return opened.convert("RGB")
    except (OSError, ValueError) as exc:
        raise ValueError(f"{image.filename} is not an image Pillow can read") from exc


def cell(grid: ImageFile, count: int, index: int, filename: str) -> ImageFile:
    """Return image `index` (0-based) cut out of a grid of `count` images, as PNG.

    The last resort for U<n> when ComfyUI no longer has the file: the posted grid holds it.

    Raises:
        ValueError: no such cell, or a grid Pillow cannot read.
    """
    columns, rows = grid_shape(count)
    if not 0 <= index < count:
        raise ValueError(f"a grid of {count} has no image {index + 1}")
    picture = _open(grid)
    width, height = picture.width // columns, picture.height // rows
    row, column = divmod(index, columns)
    box = (column * width, row * height, (column + 1) * width, (row + 1) * height)
    buffer = io.BytesIO()
    picture.crop(box).save(buffer, "PNG")
    return ImageFile(filename, buffer.getvalue())
