"""bot.discord.render: job state as text and embed data within Discord's limits (pure)."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from bot.comfy.backend import PromptFailure
from bot.comfy.errors import ComfyUnavailable
from bot.discord import render
from bot.images import ImageFile
from bot.jobs.model import GenerationRequest, JobResult
from bot.jobs.progress import JobState, PreviewImage, ProgressSnapshot

REQUEST = GenerationRequest(requester="1234", workflow="txt2img", prompt="a red fox")


@pytest.mark.parametrize(
    ("percent", "bar"),
    [
        (0, "▱▱▱▱▱▱▱▱▱▱ 0%"),
        (50, "▰▰▰▰▰▱▱▱▱▱ 50%"),
        (100, "▰▰▰▰▰▰▰▰▰▰ 100%"),
        (140, "▰▰▰▰▰▰▰▰▰▰ 100%"),
        (-3, "▱▱▱▱▱▱▱▱▱▱ 0%"),
    ],
)
def test_progress_bar(percent: float, bar: str) -> None:
    assert render.progress_bar(percent) == bar


@pytest.mark.parametrize(
    ("seconds", "text"), [(0, "0:00"), (9.6, "0:09"), (75, "1:15"), (3725, "1:02:05")]
)
def test_duration(seconds: float, text: str) -> None:
    assert render.duration(seconds) == text


def test_discord_and_the_terminal_show_the_same_time_and_fill() -> None:
    from bot.terminal import view

    for seconds in (0.4, 9.6, 59.99, 3599.5):
        assert render.duration(seconds) == view.duration(seconds)
    for percent in (0, 4.9, 5, 50, 95, 100):
        assert render.progress_bar(percent).count("▰") == view.bar(percent, 10).count("█")


@pytest.mark.parametrize(
    ("snapshot", "expected"),
    [
        (ProgressSnapshot(JobState.WAITING, position=0), "⏳ Waiting in line: you are next"),
        (ProgressSnapshot(JobState.WAITING, position=3), "⏳ Waiting in line: 3 ahead of you"),
        (ProgressSnapshot(JobState.QUEUED, position=0), "📥 Queued: starting soon"),
        (ProgressSnapshot(JobState.QUEUED, position=2), "2 ahead in ComfyUI's queue"),
    ],
)
def test_status_line_says_where_the_job_waits(snapshot: ProgressSnapshot, expected: str) -> None:
    assert expected in render.status_line(snapshot)


def test_running_line_has_node_bar_steps_elapsed_and_eta() -> None:
    snapshot = ProgressSnapshot(
        JobState.RUNNING,
        node_title="Sampler",
        node_class="KSampler",
        step=10,
        steps=20,
        elapsed=12,
        eta=12,
    )

    line = render.status_line(snapshot)

    assert line == (
        "⚙️ Running **Sampler (KSampler)**\n"
        "`▰▰▰▰▰▱▱▱▱▱ 50%` · step 10/20 · 0:12 elapsed · ~0:12 left"
    )


def test_running_line_without_steps_counts_nodes() -> None:
    snapshot = ProgressSnapshot(
        JobState.RUNNING,
        node_title="VAEDecode",
        node_class="VAEDecode",
        nodes_done=3,
        nodes_total=4,
    )

    assert "**VAEDecode**\n`▰▰▰▰▰▰▰▰▱▱ 75%` · node 4/4" in render.status_line(snapshot)


def test_progress_text_quotes_the_prompt_without_pinging_anyone() -> None:
    request = GenerationRequest(requester="1", workflow="w", prompt="hi @everyone <@99>\nthere")

    text = render.progress_text(request, "Demo", ProgressSnapshot())

    assert text.startswith("**“hi @\u200beveryone <@\u200b99> there”** · Demo · for <@1>\n")


def test_a_huge_prompt_is_cut_everywhere() -> None:
    request = GenerationRequest(requester="someone", workflow="w", prompt="word " * 2000)
    result = JobResult("job-1", JobState.DONE, elapsed=3)

    text = render.progress_text(request, "Demo", ProgressSnapshot())
    embed = render.result_embed(request, "Demo", result, seed=5)

    assert len(text) <= render.CONTENT_LIMIT
    assert len(embed.title) <= 256
    assert len(embed.description) <= 4096
    total = len(embed.title) + len(embed.description) + len(embed.footer)
    total += sum(len(f.name) + len(f.value) for f in embed.fields)
    assert total <= 6000
    assert "for someone" in text


def test_result_embed_has_seed_workflow_time_requester_and_negative() -> None:
    request = GenerationRequest(requester="77", workflow="w", prompt="fox", negative="blur")
    result = JobResult("job-9", JobState.DONE, elapsed=65)

    embed = render.result_embed(request, "SDXL", result, seed=42)

    fields = {f.name: f.value for f in embed.fields}
    assert fields == {
        "Workflow": "SDXL",
        "Seed": "42",
        "Time": "1:05",
        "Requested by": "<@77>",
        "Negative": "blur",
    }
    assert embed.title == "fox"
    assert embed.footer == "job job-9"


@pytest.mark.parametrize(
    ("result", "expected"),
    [
        (
            JobResult("j", JobState.DONE, outputs=(ImageFile("a.png", b"x"),), elapsed=4),
            "✅ Done in 0:04: 1 image.",
        ),
        (JobResult("j", JobState.CANCELLED, cancelled_by="55"), "🚫 Cancelled by <@55>."),
        (JobResult("j", JobState.CANCELLED), "🚫 Cancelled."),
        (JobResult("j", JobState.LOST), "⚠️ ComfyUI lost this job"),
        (
            JobResult(
                "j",
                JobState.FAILED,
                failure=PromptFailure("3", "KSampler", "RuntimeError", "CUDA out of memory\n"),
            ),
            "❌ Failed in node 3 “Sampler” (KSampler): CUDA out of memory",
        ),
        (
            JobResult("j", JobState.FAILED, error=ComfyUnavailable("gone")),
            "❌ ComfyUI is not reachable right now",
        ),
    ],
)
def test_final_text(result: JobResult, expected: str) -> None:
    text = render.final_text(REQUEST, "Demo", result, ["a note"], node_title="Sampler")

    assert expected in text
    assert text.endswith("-# a note")


def _jpeg_noise(width: int, height: int) -> bytes:
    buffer = io.BytesIO()
    Image.effect_noise((width, height), 80).convert("RGB").save(buffer, "PNG")
    return buffer.getvalue()


def test_fit_outputs_reencodes_what_is_too_large_and_notes_it() -> None:
    small = ImageFile("small.png", _jpeg_noise(8, 8))
    large = ImageFile("large.png", _jpeg_noise(400, 400))

    files, notes = render.fit_outputs([small, large], max_bytes=40_000)

    assert files[0] == small
    assert files[1].filename == "large.jpg"
    assert len(files[1].data) <= 40_000
    assert len(notes) == 1
    assert "large.png" in notes[0]
    assert "re-encoded" in notes[0]


def test_batches_hold_at_most_ten_files_and_25_mib() -> None:
    files = [ImageFile(f"{i}.png", b"x" * 10) for i in range(23)]
    big = [ImageFile(f"{i}.png", b"x" * (10 * 2**20)) for i in range(3)]

    assert [len(group) for group in render.batches(files)] == [10, 10, 3]
    assert [len(group) for group in render.batches(big)] == [2, 1]
    assert render.batches([]) == []


def test_preview_image_repr_hides_bytes() -> None:
    assert "bytes" in repr(PreviewImage(b"abc", "image/jpeg"))


def test_a_waiting_job_is_told_when_no_comfyui_server_is_available() -> None:
    waiting = ProgressSnapshot(JobState.WAITING, position=3, elapsed=4)

    text = render.progress_text(REQUEST, "Demo", waiting, is_backend_available=False)
    queued = render.status_line(
        ProgressSnapshot(JobState.QUEUED, position=0), is_backend_available=False
    )

    assert text.endswith(
        "⏳ No ComfyUI server is available right now; your job will start when one is back. · 0:04"
    )
    assert queued.startswith("📥 Queued")  # already in ComfyUI: nothing to wait for


def test_a_job_that_cannot_be_resumed_says_why() -> None:
    text = render.unresumable_text(REQUEST, "txt2img", "There is no workflow called txt2img.")

    assert text.splitlines()[1] == (
        "⚠️ This job could not be resumed after a restart: There is no workflow called txt2img."
    )
