"""Benchmark: a U<n> click to the posted image, and a Vary click to its first progress edit.

Usage: python bench/bench_iterate.py [--clicks 20] [--size 1024] [--interval 1.5]

The real ComfyBot runs against FakeDiscord and FakeComfy in this process. A grid of four
`--size`-pixel images is made first; then U1..U4 are clicked `--clicks` times while the bot
still holds the images, again after a restart (each image fetched again from ComfyUI's /view),
and V1..V4 `--clicks` times (img2img submitted, until its first progress edit). Times run from
the click's INTERACTION_CREATE to the arrival at the fake Discord of the edit that shows the
result; figures sit next to their targets and nothing is asserted. Before the restart the files
in the fake ComfyUI are replaced by PNGs of random pixels, so the fetch and the upload carry
as many bytes as a real render.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.discord_env import final_edit, open_services, webhook_of  # noqa: E402
from tests.fakes.comfy import FakeComfy  # noqa: E402
from tests.fakes.discord import FakeDiscord, run_bot  # noqa: E402
from tests.iterate_env import MODELS, custom_id, iterate_settings, original_edit  # noqa: E402

TARGET_PICK_MS = 1000.0
TARGET_VARY_MS = 1000.0


def _noise_png(size: int) -> bytes:
    """Return a PNG of random pixels: as large as a real render (a flat colour packs to nothing)."""
    buffer = io.BytesIO()
    Image.frombytes("RGB", (size, size), os.urandom(size * size * 3)).save(buffer, "PNG")
    return buffer.getvalue()


def _big_slow(directory: Path, size: int) -> None:
    """Make the slow test workflow draw `size`-pixel squares (a realistic file to fetch)."""
    path = directory / "slow.json"
    graph = json.loads(path.read_text())
    graph["1"]["inputs"] |= {"width": size, "height": size}
    path.write_text(json.dumps(graph))


async def _clicks(
    fake: FakeDiscord, message_id: int, prefix: str, user: int, n: int
) -> list[float]:
    """Click prefix1..prefix4 in turn `n` times; return seconds to each posted image."""
    seconds = []
    for number in range(n):
        label = f"{prefix}{number % 4 + 1}"
        started = time.monotonic()
        click = await fake.click(
            message_id, custom_id(fake.messages[message_id], label), user_id=user
        )
        if prefix == "U":
            done = await fake.wait_for(original_edit(click), timeout=30)
        else:
            done = await fake.wait_for(
                lambda c, ix=click: webhook_of(ix)(c) and c.method == "PATCH" and c.status == 200,
                timeout=30,
            )
            await fake.wait_for(final_edit(click), timeout=60)
        seconds.append(done.time - started)
    return seconds


async def _measure(
    args: argparse.Namespace, directory: Path, patch: pytest.MonkeyPatch
) -> dict[str, list[float]]:
    async with FakeDiscord() as fake, FakeComfy(models=MODELS, step_delay=0.001) as comfy:
        fake.install(patch)
        settings = iterate_settings(
            comfy.url, directory, PROGRESS_INTERVAL=str(args.interval), MAX_JOBS_PER_USER="50"
        )
        _big_slow(settings.workflows_dir, args.size)
        user = fake.add_user("bench")
        figures: dict[str, list[float]] = {}
        async with open_services(settings, journal=True) as services, run_bot(services.new_bot()):
            ix = await fake.slash(
                "generate", {"prompt": "a fox", "workflow": "slow", "count": 4}, user_id=user
            )
            await fake.wait_for(final_edit(ix), timeout=60)
            grid = ix.original_message_id or 0
            figures["memory"] = await _clicks(fake, grid, "U", user, args.clicks)
        for name in list(comfy.outputs):  # what the restarted bot fetches: full-size files
            comfy.outputs[name] = _noise_png(args.size)
        async with open_services(settings, journal=True) as services, run_bot(services.new_bot()):
            figures["restart"] = await _clicks(fake, grid, "U", user, args.clicks)
            figures["vary"] = await _clicks(fake, grid, "V", user, args.clicks)
        return figures


def _row(label: str, seconds: list[float], target: float) -> None:
    median, worst = 1000 * statistics.median(seconds), 1000 * max(seconds)
    verdict = "ok" if median <= target else "MISSED"
    print(f"{label:<56} {median:8.1f}  max {worst:8.1f}  target <= {target:g}  {verdict}")


async def _main(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp, pytest.MonkeyPatch.context() as patch:
        figures = await _measure(args, Path(tmp), patch)
    print(f"== Iterating: {args.clicks} clicks each, grid of four {args.size}px images")
    _row("U<n> click -> posted image, in memory, median (ms)", figures["memory"], TARGET_PICK_MS)
    _row(
        "U<n> click -> posted image, after restart, median (ms)", figures["restart"], TARGET_PICK_MS
    )
    _row("Vary click -> first progress edit, median (ms)", figures["vary"], TARGET_VARY_MS)
    print(
        "After a restart the image comes from ComfyUI's /view (the bot no longer holds it), as"
        f" a PNG of random pixels ({args.size}px, the size of a real render); Vary downloads"
        " it, uploads it to the server that runs it, then queues img2img."
    )


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clicks", type=int, default=20, help="clicks of each kind")
    parser.add_argument("--size", type=int, default=1024, help="side of each image, pixels")
    parser.add_argument("--interval", type=float, default=1.5, help="PROGRESS_INTERVAL, seconds")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark and print its figures."""
    asyncio.run(_main(parse_args(argv)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
