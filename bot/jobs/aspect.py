"""Aspect ratios to pixel sizes: keep the model's native pixel count, sides multiples of 64.

A model draws best near the pixel count it was trained at (1024x1024 for SDXL and Flux, 512x512
for SD1.5), so a 16:9 picture is 1344x768 for SDXL rather than 1024 wide and squashed.
"""

from __future__ import annotations

import math

ASPECTS = ("1:1", "4:3", "3:4", "3:2", "2:3", "16:9", "9:16", "21:9")
"""The aspect ratios `/generate` and `--ar` offer, in the order the choices show them."""

SIDE_STEP = 64


def size_for(aspect: str, base_resolution: int) -> tuple[int, int]:
    """Return (width, height) of `aspect` with about `base_resolution`² pixels.

    Raises:
        ValueError: an aspect not in `ASPECTS`, or a base resolution below one step.
    """
    if aspect not in ASPECTS:
        raise ValueError(f"unknown aspect ratio {aspect!r}; known: {', '.join(ASPECTS)}")
    if base_resolution < SIDE_STEP:
        raise ValueError(f"base resolution must be at least {SIDE_STEP}, not {base_resolution}")
    across, down = (int(part) for part in aspect.split(":"))
    ratio = across / down
    width = base_resolution * math.sqrt(ratio)
    height = base_resolution / math.sqrt(ratio)
    return _snap(width), _snap(height)


def _snap(side: float) -> int:
    return max(SIDE_STEP, round(side / SIDE_STEP) * SIDE_STEP)


def native_resolution(width: object, height: object) -> int | None:
    """Return the side of the square with as many pixels as a workflow's exported size, if known."""
    if isinstance(width, bool) or isinstance(height, bool):
        return None
    if not isinstance(width, int | float) or not isinstance(height, int | float):
        return None
    if width <= 0 or height <= 0:
        return None
    return _snap(math.sqrt(width * height))
