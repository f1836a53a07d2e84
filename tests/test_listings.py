"""The /history and /comfy status listings: plain values in, chat text out."""

from bot.comfy.backend import BackendHealth
from bot.comfy.info import JOBS_API, Device
from bot.discord import listings
from bot.jobs.model import GenerationRequest
from bot.jobs.store import JournalEntry

GPU = Device.from_data(
    {
        "name": "cuda:0 NVIDIA GeForce RTX 4090 : cudaMallocAsync",
        "type": "cuda",
        "vram_total": 24 * 2**30,
        "vram_free": 18.5 * 2**30,
    }
)


def entry(job_id: str = "comfycord-1", **changes) -> JournalEntry:
    values = {
        "id": job_id,
        "requester": "42",
        "workflow": "txt2img",
        "params": {"prompt": "a red fox @everyone in the snow", "seed": 3},
        "origin": {"guild_id": 1, "channel_id": 2, "message_id": 3, "token": "secret"},
        "backend": None,
        "state": "done",
        "created_at": 1_700_000_000.5,
        "updated_at": 1_700_000_010.0,
        "outputs": (),
        "error": None,
    }
    return JournalEntry(**{**values, **changes})


def test_a_history_line_names_workflow_prompt_state_time_and_message() -> None:
    line = listings.history_line(1, entry())

    assert line == (
        "`1.` **txt2img** “a red fox @\u200beveryone in the snow” · ✅ done · <t:1700000000:R>"
        " · [message](https://discord.com/channels/1/2/3)"
    )
    assert "secret" not in line


def test_history_of_everyone_names_the_requesters_and_skips_unknown_links() -> None:
    text = listings.history(
        [entry(state="lost", origin={}), entry("b", params={})], show_requester=True
    )

    first, second = text.splitlines()[1:]
    assert "⚠️ lost" in first
    assert "by <@42>" in first
    assert "[message]" not in first
    assert "(no prompt)" in second


def test_empty_histories() -> None:
    assert listings.history([]) == "You have no jobs yet."
    assert listings.history([], show_requester=True) == "No jobs yet."


def test_an_up_backend_shows_queue_version_devices_and_our_running_job() -> None:
    health = BackendHealth(
        is_up=True, version="0.38.1", devices=(GPU,), path=JOBS_API, checked_at=1
    )
    running = [("comfycord-9", GenerationRequest("7", "txt2img", prompt="a cat"))]

    text = listings.backend_status(
        "http://gpu:8188", health, is_healthy=True, queue_remaining=2, running=running
    )

    assert text.splitlines() == [
        "🟢 `http://gpu:8188` · ComfyUI 0.38.1 via /api/jobs · queue 2"
        " · cuda:0 NVIDIA GeForce RTX 4090: 18.5 of 24.0 GiB free",
        "   ⚙️ running `comfycord-9` “a cat” for <@7>",
    ]


def test_a_down_backend_shows_why() -> None:
    down = BackendHealth(is_up=False, error="Cannot connect to host gpu:8188", checked_at=5)

    assert listings.backend_status(
        "http://gpu:8188", down, is_healthy=False, queue_remaining=0
    ) == ("🔴 `http://gpu:8188` · down: Cannot connect to host gpu:8188")
    assert "not checked yet" in listings.backend_status(
        "http://x", BackendHealth(), is_healthy=False, queue_remaining=0
    )


def test_a_backend_whose_socket_reconnects_is_yellow() -> None:
    health = BackendHealth(is_up=True, version="0.3.64", checked_at=1)

    text = listings.backend_status("http://gpu", health, is_healthy=False, queue_remaining=0)

    assert text == "🟡 `http://gpu` · ComfyUI 0.3.64 · event stream reconnecting"


def test_queue_counts() -> None:
    assert listings.queue_counts(3, 2, 5) == (
        "Our queue: 3 waiting for a server, 2 in ComfyUI; 5 workflows loaded."
    )
