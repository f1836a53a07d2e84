"""`comfycord bot` killed with SIGKILL mid-job and started again: nothing a member asked is lost.

The bot runs in its own process (tests/bot_launcher.py) against this process's fake Discord and
fake ComfyUI, with the job journal in tmp_path.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sqlite3
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path

from bot.config import env_keys
from bot.jobs.store import FINAL_STATES
from tests.discord_env import ROOT, library_dir, wait_button, webhook_of
from tests.fakes.comfy import FakeComfy
from tests.fakes.discord import FakeDiscord, Interaction, RecordedCall

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
START_TIMEOUT = 30.0


def bot_env(fake_discord: FakeDiscord, fake_comfy: FakeComfy, tmp_path: Path) -> dict[str, str]:
    """Return the bot process's environment: ours without any ComfyCord key, plus the test's."""
    keys = set(env_keys())
    env = {key: value for key, value in os.environ.items() if key not in keys}
    return env | {
        "DISCORD_TOKEN": "MTAxMjM0NTY3ODkw.GfAkEt.fake-token-for-the-kill-test",
        "COMFYUI_URL": fake_comfy.url,
        "WORKFLOWS_DIR": str(library_dir(tmp_path)),
        "DEFAULT_WORKFLOW": "slow",
        "DEFAULT_IMAGE_WORKFLOW": "demo",
        "DATABASE_PATH": str(tmp_path / "journal.db"),
        "PROGRESS_INTERVAL": "0.05",
        "LOG_LEVEL": "DEBUG",
        "FAKE_DISCORD_API": fake_discord.api_base,
        "FAKE_DISCORD_GATEWAY": fake_discord.gateway_url,
    }


@contextlib.asynccontextmanager
async def bot_process(
    fake_discord: FakeDiscord, env: dict[str, str], log: Path
) -> AsyncIterator[asyncio.subprocess.Process]:
    """Start `comfycord bot` and wait until it is on the gateway; stop it with SIGINT at the end."""
    with log.open("ab") as output:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "tests.bot_launcher",
            cwd=ROOT,
            env=env,
            stdout=output,
            stderr=output,
        )
    try:
        await fake_discord.gateway.wait_live(START_TIMEOUT)
        yield process
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGINT)
            try:
                async with asyncio.timeout(15):
                    await process.wait()
            except TimeoutError:
                process.kill()
                await process.wait()


async def generate(fake: FakeDiscord, user: int, prompt: str) -> tuple[Interaction, str]:
    """Run /generate in the bot process; return the interaction and the job id once shown."""
    options = {"prompt": prompt, "workflow": "slow", "steps": 30}
    ix = await fake.slash("generate", options, user_id=user)
    await ix.wait_response(10)
    custom_id = await wait_button(fake, ix.original_message_id or 0, "comfycord:cancel:")
    return ix, custom_id.rsplit(":", 1)[1]


def edit_of(ix: Interaction, *, is_final: bool) -> Callable[[RecordedCall], bool]:
    """Match a successful edit of the interaction's reply: with its PNG, or a progress edit."""

    def matches(call: RecordedCall) -> bool:
        if not (webhook_of(ix)(call) and call.method == "PATCH" and call.status == 200):
            return False
        has_png = bool(call.files) and call.files[0][1].startswith(PNG_MAGIC)
        return has_png if is_final else "Running" in (call.json or {}).get("content", "")

    return matches


async def test_a_killed_bot_posts_what_finished_meanwhile_and_resumes_what_still_runs(
    fake_discord: FakeDiscord, fake_comfy: FakeComfy, tmp_path: Path
) -> None:
    env, log = bot_env(fake_discord, fake_comfy, tmp_path), tmp_path / "bot.log"
    alice, bob = fake_discord.add_user("alice"), fake_discord.add_user("bob")
    fake_comfy.hold()
    async with bot_process(fake_discord, env, log) as first:
        done_ix, done_id = await generate(fake_discord, alice, "finishes while the bot is down")
        await fake_comfy.wait_for_prompt(done_id, "running")
        running_ix, running_id = await generate(fake_discord, bob, "still runs after the restart")
        await fake_comfy.wait_for_prompt(running_id, "pending")
        first.kill()  # SIGKILL: no cleanup, no last writes
        await first.wait()

    # While the bot is down, ComfyUI finishes the first job and starts the second.
    fake_comfy.release()
    await fake_comfy.wait_for_prompt(done_id, "done", timeout=15)
    fake_comfy.hold()
    await fake_comfy.wait_for_prompt(running_id, "running")
    since = len(fake_discord.calls)

    async with bot_process(fake_discord, env, log):
        delivered = await fake_discord.wait_for(
            edit_of(done_ix, is_final=True), timeout=START_TIMEOUT, since=since
        )
        resumed = await fake_discord.wait_for(
            edit_of(running_ix, is_final=False), timeout=START_TIMEOUT, since=since
        )
        fake_comfy.release()
        finished = await fake_discord.wait_for(
            edit_of(running_ix, is_final=True), timeout=START_TIMEOUT, since=since
        )

    # The first reply was edited through its interaction webhook (the token is still valid).
    assert delivered.path.endswith(f"/messages/{done_ix.original_message_id}")
    assert "✅ Done" in delivered.json["content"]
    assert fake_discord.messages[done_ix.original_message_id or 0]["attachments"]
    assert resumed.path.endswith(f"/messages/{running_ix.original_message_id}")
    assert "✅ Done" in finished.json["content"]
    assert fake_comfy.history[running_id]["status"]["completed"]
    text = log.read_text(errors="replace")
    assert "restored" in text
    for ix in (done_ix, running_ix):
        assert ix.token not in text
    assert env["DISCORD_TOKEN"] not in text


async def wait_journal(db: Path, job_id: str, condition: str, timeout: float = 10) -> None:
    """Wait until the bot process's journal row of the job meets `condition` (read every 50 ms)."""
    query = f"SELECT 1 FROM jobs WHERE id = ? AND {condition}"
    async with asyncio.timeout(timeout):
        while True:
            with contextlib.closing(sqlite3.connect(db)) as conn:
                if conn.execute(query, (job_id,)).fetchone() is not None:
                    return
            await asyncio.sleep(0.05)


async def killed_after_its_end(
    fake_discord: FakeDiscord, fake_comfy: FakeComfy, env: dict[str, str], log: Path, prompt: str
) -> tuple[Interaction, str]:
    """Run a job to its end while Discord holds every edit of its reply, then SIGKILL the bot."""
    alice = fake_discord.add_user("alice")
    fake_comfy.hold()
    async with bot_process(fake_discord, env, log) as first:
        ix, job_id = await generate(fake_discord, alice, prompt)
        await fake_comfy.wait_for_prompt(job_id, "running")
        # Discord holds every further edit of the reply for a minute; the job ends meanwhile.
        fake_discord.inject_429("PATCH", "/webhooks/*/messages/@original", retry_after=60)
        fake_comfy.release()
        await wait_journal(Path(env["DATABASE_PATH"]), job_id, "state = 'done'")
        first.kill()
        await first.wait()
    return ix, job_id


async def shown_after_restart(
    fake_discord: FakeDiscord, env: dict[str, str], log: Path, ix: Interaction, job_id: str
) -> RecordedCall:
    """Start the bot again; return the edit that posts the job's image, once it is noted shown."""
    since = len(fake_discord.calls)
    async with bot_process(fake_discord, env, log):
        delivered = await fake_discord.wait_for(
            edit_of(ix, is_final=True), timeout=START_TIMEOUT, since=since
        )
        await wait_journal(Path(env["DATABASE_PATH"]), job_id, "delivered_at IS NOT NULL")
    return delivered


async def test_a_bot_killed_after_a_job_ended_but_before_its_reply_said_so_posts_it_after_restart(
    fake_discord: FakeDiscord, fake_comfy: FakeComfy, tmp_path: Path
) -> None:
    # Found by the soak: the journal said "done", so the restarted bot never posted the result.
    env, log = bot_env(fake_discord, fake_comfy, tmp_path), tmp_path / "bot.log"
    ix, job_id = await killed_after_its_end(
        fake_discord, fake_comfy, env, log, "ends while Discord makes us wait"
    )
    delivered = await shown_after_restart(fake_discord, env, log, ix, job_id)

    assert "✅ Done" in delivered.json["content"]
    assert delivered.path.endswith(f"/messages/{ix.original_message_id}")


def final_states(db: Path, job_id: str) -> list[str]:
    """Return the final states the bot process's journal recorded for a job, in order."""
    with contextlib.closing(sqlite3.connect(db)) as conn:
        rows = conn.execute(
            "SELECT state FROM job_states WHERE job_id = ? ORDER BY rowid", (job_id,)
        )
        return [state for (state,) in rows if state in FINAL_STATES]


async def test_a_result_made_before_a_kill_is_posted_after_restart_though_comfyui_forgot_it(
    fake_discord: FakeDiscord, fake_comfy: FakeComfy, tmp_path: Path
) -> None:
    # Found by the soak: the restarted bot fetched the outputs again from a ComfyUI restarted
    # meanwhile, found the prompt unknown and recorded "lost" after "done" (two final states).
    env, log = bot_env(fake_discord, fake_comfy, tmp_path), tmp_path / "bot.log"
    ix, job_id = await killed_after_its_end(
        fake_discord, fake_comfy, env, log, "made, then its server restarts"
    )
    await fake_comfy.kill()  # queue and history forgotten
    await fake_comfy.start()
    assert job_id not in fake_comfy.history
    delivered = await shown_after_restart(fake_discord, env, log, ix, job_id)

    assert "✅ Done" in delivered.json["content"]
    db = Path(env["DATABASE_PATH"])
    assert final_states(db, job_id) == ["done"]
    with contextlib.closing(sqlite3.connect(db)) as conn:
        kept = conn.execute("SELECT count(*) FROM job_outputs WHERE job_id = ?", (job_id,))
        assert kept.fetchone() == (0,)  # shown: the journal no longer keeps the bytes


async def test_sigterm_stops_the_bot_as_ctrl_c_does_and_a_running_job_resumes_after(
    fake_discord: FakeDiscord, fake_comfy: FakeComfy, tmp_path: Path
) -> None:
    # docker stop and Kubernetes send SIGTERM; Python's default would end the bot on the spot.
    env, log = bot_env(fake_discord, fake_comfy, tmp_path), tmp_path / "bot.log"
    alice = fake_discord.add_user("alice")
    fake_comfy.hold()
    async with bot_process(fake_discord, env, log) as first:
        ix, job_id = await generate(fake_discord, alice, "runs through a docker stop")
        await fake_comfy.wait_for_prompt(job_id, "running")
        first.terminate()
        async with asyncio.timeout(15):
            code = await first.wait()
    assert code == 130  # as after Ctrl+C
    text = log.read_text(errors="replace")
    assert "stopping: unfinished jobs are taken up again" in text
    assert "stopped in" in text
    since = len(fake_discord.calls)

    async with bot_process(fake_discord, env, log):
        await fake_discord.wait_for(edit_of(ix, is_final=False), timeout=START_TIMEOUT, since=since)
        fake_comfy.release()
        finished = await fake_discord.wait_for(
            edit_of(ix, is_final=True), timeout=START_TIMEOUT, since=since
        )
    assert "✅ Done" in finished.json["content"]
