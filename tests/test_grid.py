"""Grid composition: the size of the grid and the order of its cells (pure, Pillow)."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from bot.discord.grid import compose_grid, grid_of, grid_shape
from bot.images import ImageFile

COLORS = [(255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 0)]


def _png(color: tuple[int, int, int], size: tuple[int, int] = (64, 48)) -> ImageFile:
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, "PNG")
    return ImageFile(f"{color}.png", buffer.getvalue())


def _near(pixel: tuple[int, ...], color: tuple[int, int, int]) -> bool:
    return all(abs(a - b) < 16 for a, b in zip(pixel, color, strict=False))


@pytest.mark.parametrize(
    ("count", "shape", "size"),
    [(1, (1, 1), (64, 48)), (2, (2, 1), (128, 48)), (3, (2, 2), (128, 96)), (4, (2, 2), (128, 96))],
)
def test_grid_size_and_order(count: int, shape: tuple[int, int], size: tuple[int, int]) -> None:
    grid = compose_grid([_png(color) for color in COLORS[:count]])
    assert grid_shape(count) == shape
    with Image.open(io.BytesIO(grid.data)) as picture:
        assert picture.size == size
        rgb = picture.convert("RGB")
        for index, color in enumerate(COLORS[:count]):
            row, column = divmod(index, shape[0])
            centre = (column * 64 + 32, row * 48 + 24)
            assert _near(rgb.getpixel(centre), color), (index, rgb.getpixel(centre))
        if count == 3:
            assert not any(_near(rgb.getpixel((96, 72)), color) for color in COLORS)


def test_cells_fit_the_largest_image_and_centre_smaller_ones() -> None:
    grid = compose_grid([_png(COLORS[0], (100, 80)), _png(COLORS[1], (50, 40))])
    with Image.open(io.BytesIO(grid.data)) as picture:
        rgb = picture.convert("RGB")
        assert picture.size == (200, 80)
        assert _near(rgb.getpixel((150, 40)), COLORS[1])
        assert not _near(rgb.getpixel((105, 5)), COLORS[1])  # outside the centred small image


def test_a_grid_holds_one_to_four_images() -> None:
    with pytest.raises(ValueError, match="one to four images, not 5"):
        compose_grid([_png(COLORS[0])] * 5)
    with pytest.raises(ValueError, match="not 0"):
        compose_grid([])
    with pytest.raises(ValueError, match=r"bad\.png is not an image"):
        compose_grid([ImageFile("bad.png", b"nope")])


def test_a_batch_with_a_file_that_is_no_picture_is_posted_as_it_is() -> None:
    video = ImageFile("clip.mp4", b"\x00\x00\x00\x18ftypmp42")
    pictures = [_png(COLORS[0]), _png(COLORS[1])]
    assert grid_of([*pictures, video]) == (*pictures, video)
    [grid] = grid_of(pictures)
    assert grid.filename == "grid.jpg"
