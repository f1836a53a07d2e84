"""Soak: thousands of jobs from many members under random faults; nothing lost, memory flat.

Usage: python bench/soak.py [--jobs 10000] [--seed N] [--members 200] [--channels 4]
    [--backends 2] [--concurrency 24] [--faults-per-kind K] [--kills 5]

The bot runs as `comfycord bot` in its own process (bench/soak_bot.py: a loop watchdog and a
journal disk fault on top of the test launcher) against this process's fake Discord (the real
discord.py client on the other end) and two or more fake ComfyUI servers. Members ask for
txt2img and img2img, mention the bot with images, cancel their own jobs and others' (refused),
reroll and retry, and send bad input, while faults of every kind (bench/soak_faults.py) hit
at random. Prints its figures and exits 1 when an invariant breaks (bench/soak_check.py).
The same seed replays the same plan.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import random
import sys
import tempfile
import time
from collections.abc import Sequence
from contextlib import AsyncExitStack
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import soak_check  # noqa: E402
from bench.soak_faults import KINDS, World, run_faults, schedule  # noqa: E402
from bench.soak_members import Members, Tally  # noqa: E402
from bench.soak_observe import Observer  # noqa: E402
from bench.soak_process import BotProcess, Sample  # noqa: E402
from bench.soak_report import report  # noqa: E402
from bot.config import env_keys  # noqa: E402
from tests.discord_env import library_dir  # noqa: E402
from tests.fakes.comfy import FakeComfy  # noqa: E402
from tests.fakes.discord import FakeDiscord  # noqa: E402

IDLE_TIMEOUT = 60.0
EXIT_INTERRUPTED = 130  # `comfycord bot` stopped by SIGINT, as by Ctrl+C
SAMPLES = 10


def bot_env(
    fake: FakeDiscord, comfys: list[FakeComfy], directory: Path, channels: list[int]
) -> dict[str, str]:
    """Return the bot process's environment: ours without ComfyCord keys, plus the soak's."""
    keys = set(env_keys())
    env = {key: value for key, value in os.environ.items() if key not in keys}
    return env | {
        "DISCORD_TOKEN": "MTAxMjM0NTY3ODkw.GsOaKk.fake-token-of-the-soak",
        "COMFYUI_URLS": ",".join(comfy.url for comfy in comfys),
        "WORKFLOWS_DIR": str(library_dir(directory)),
        "DEFAULT_WORKFLOW": "slow",
        "DEFAULT_IMAGE_WORKFLOW": "demo",
        "DATABASE_PATH": str(directory / "journal.db"),
        "PROGRESS_INTERVAL": "1.25",
        "MAX_JOBS_PER_USER": "2",
        "ALLOWED_CHANNEL_IDS": ",".join(str(channel) for channel in channels),
        "LOG_LEVEL": "INFO",
        "FAKE_DISCORD_API": fake.api_base,
        "FAKE_DISCORD_GATEWAY": fake.gateway_url,
    }


async def _drive(
    args: argparse.Namespace, world: World, members: Members, tally: Tally
) -> list[Sample]:
    """Run the members' actions until `args.jobs` jobs have started; sample the bot 10 times."""
    samples: list[Sample] = []
    running: set[asyncio.Task[None]] = set()
    room = asyncio.Semaphore(args.concurrency)
    index = 0

    async def act(number: int) -> None:
        try:
            await members.act(args.seed, number)
        finally:
            room.release()

    while tally.jobs_started < args.jobs:
        await room.acquire()
        while (
            len(samples) < SAMPLES - 1
            and tally.jobs_started >= args.jobs * (len(samples) + 1) // SAMPLES
        ):
            await world.bot_up.wait()
            samples.append(world.bot.sample(tally.jobs_started))
        task = asyncio.create_task(act(index), name=f"soak action {index}")
        running.add(task)
        task.add_done_callback(running.discard)
        index += 1
    for task in list(running):
        await task
    await world.bot_up.wait()
    samples.append(world.bot.sample(tally.jobs_started))
    return samples


async def _leftovers(world: World) -> dict[str, list[str]]:
    """Wait until every ComfyUI is idle; return what is still queued where it is not."""
    found = {}
    for comfy in world.comfys:
        with contextlib.suppress(TimeoutError):
            await comfy.wait_idle(IDLE_TIMEOUT)
        world.note(comfy)
        found[comfy.url] = [*([comfy.running] if comfy.running else []), *comfy.pending]
    return found


async def soak(args: argparse.Namespace, directory: Path) -> int:
    """Run the soak; print its figures; return 0 when every invariant held."""
    rng = random.Random(args.seed)
    async with AsyncExitStack() as stack:
        fake = await stack.enter_async_context(FakeDiscord())
        fake.edit_bucket = (5, 5.0)
        fake.interaction_response_timeout = 10.0  # a loaded machine, not the bot, may be late
        observer = Observer()
        fake.observe(observer, keep_calls=False)
        channels = [
            fake.channel_id,
            *(fake.add_channel(name=f"art-{n}") for n in range(1, args.channels)),
        ]
        off_limits = fake.add_channel(name="off-topic")
        comfys = [
            await stack.enter_async_context(FakeComfy(step_delay=0.01, previews=False))
            for _ in range(args.backends)
        ]
        bot = BotProcess(fake, bot_env(fake, comfys, directory, channels), directory)
        world = World(fake, comfys, bot, rng)
        tally = Tally()
        members = Members(world, observer, tally, channels, off_limits)
        members.resize(args.members)
        plan = schedule(rng, args.jobs, args.faults_per_kind, args.kills)
        started = time.monotonic()
        await bot.start()
        world.bot_up.set()
        faults = asyncio.create_task(run_faults(world, plan, lambda: tally.jobs_started))
        try:
            samples = await _drive(args, world, members, tally)
            async with asyncio.timeout(120):
                await faults
        finally:
            faults.cancel()
        leftovers = await _leftovers(world)
        code = await bot.stop()
        seconds = time.monotonic() - started
    verdict = soak_check.Verdict()
    soak_check.check_jobs(observer, tally, world, verdict)
    soak_check.check_comfy(world, tally, leftovers, verdict)
    journal = soak_check.check_journal(directory / "journal.db", verdict)
    flatness = soak_check.check_resources(samples, tally.jobs_started, verdict)
    soak_check.check_stalls(bot.stall_figures, verdict)
    if code not in (0, EXIT_INTERRUPTED):
        verdict.fail(f"the bot exited with {code} when stopped")
    verdict.broken.extend(tally.problems)
    report(args, seconds, world, tally, verdict, samples, flatness, journal, bot, observer)
    missing = [kind for kind in KINDS if not world.injected[kind]]
    if missing:
        verdict.fail(f"faults never injected: {missing}")
        print(f"BROKEN: faults never injected: {missing}")
    return 1 if verdict.broken else 0


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=10_000, help="jobs to run")
    parser.add_argument("--seed", type=int, default=None, help="replay a run (default: random)")
    parser.add_argument("--members", type=int, default=200, help="members asking")
    parser.add_argument("--channels", type=int, default=4, help="channels the bot may use")
    parser.add_argument("--backends", type=int, default=2, help="fake ComfyUI servers")
    parser.add_argument("--concurrency", type=int, default=24, help="members acting at once")
    parser.add_argument("--faults-per-kind", type=int, default=None, help="default: jobs/250")
    parser.add_argument("--kills", type=int, default=None, help="bot SIGKILLs (default: 5)")
    parser.add_argument(
        "--keep", type=Path, default=None, help="keep the bot's log and journal here"
    )
    args = parser.parse_args(argv)
    if args.seed is None:
        args.seed = random.SystemRandom().randrange(10**9)
    if args.faults_per_kind is None:
        args.faults_per_kind = max(1, args.jobs // 250)
    if args.kills is None:
        args.kills = 5 if args.jobs >= 2000 else 1
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Run the soak and print its figures; 1 when an invariant broke."""
    args = parse_args(argv)
    # A killed bot leaves requests half-read; the fakes' servers would log each one.
    logging.getLogger("aiohttp.server").setLevel(logging.CRITICAL)
    print(f"soak seed {args.seed} (replay: bench/soak.py --jobs {args.jobs} --seed {args.seed})")
    if args.keep is not None:
        args.keep.mkdir(parents=True, exist_ok=True)
        return asyncio.run(soak(args, args.keep))
    with tempfile.TemporaryDirectory() as directory:
        return asyncio.run(soak(args, Path(directory)))


if __name__ == "__main__":
    sys.exit(main())
