"""EventStream and ComfyBackend against FakeComfy: routing, reconnects, outcomes, cancel."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from bot.comfy.backend import CancelResult, ComfyBackend, Outcome, PromptRun
from bot.comfy.client import ComfyClient
from bot.comfy.events import (
    Event,
    ExecutionError,
    ExecutionSuccess,
    Preview,
    Progress,
    Status,
    parse_event,
    prompt_id_of,
)
from bot.comfy.stream import Backoff, EventStream
from tests.backend_env import checked_backend
from tests.comfy_prompts import failing_prompt, slow_prompt
from tests.fakes.comfy import FakeComfy
from tests.fakes.comfy_probe import load_trace, trace_posts
from tests.fakes.comfy_versions import rules_for

FAST = Backoff(initial=0.02, maximum=0.2)
TRACE_N = "n_txt2img_ksampler.json"
# Prompt ids by name: canonical UUIDs, as every ComfyUI version accepts them.
NAMES = ("first", "second", "previewed", "dropped", "away", "racy", "forgotten", "ignored")
NAMES += ("watched", "ours", "theirs", "running", "pending")
ID = {name: str(uuid.uuid5(uuid.NAMESPACE_URL, name)) for name in NAMES}
# Long enough for a held job to finish while our socket is away (asserted where it matters).
AWAY = Backoff(initial=0.5, maximum=0.5)


async def open_backend(
    fake: FakeComfy, backoff: Backoff = FAST, session: aiohttp.ClientSession | None = None
) -> tuple[ComfyClient, ComfyBackend]:
    client = ComfyClient(fake.url, client_id="backend-tests", session=session, timeout=5)
    # No periodic reconcile during a test: what settles a run must be the reconnect itself.
    backend = ComfyBackend(client, backoff=backoff, check_interval=60)
    await backend.__aenter__()
    async with asyncio.timeout(5):
        await backend.stream.wait_connected()
    return client, backend


@pytest.fixture
def comfy_version(both_versions: str) -> str:
    return both_versions


@pytest.fixture
async def backend(fake_comfy: FakeComfy) -> AsyncIterator[ComfyBackend]:
    client, backend = await open_backend(fake_comfy)
    yield backend
    await backend.__aexit__(None, None, None)
    await client.close()


async def collect(run: PromptRun) -> list[Event]:
    async with asyncio.timeout(5):
        return [event async for event in run.events()]


def ws_opens(fake: FakeComfy) -> int:
    return sum(1 for request in fake.requests if request == ("GET", "/ws"))


async def test_events_reach_only_their_own_subscriber(backend: ComfyBackend, fake_comfy: FakeComfy):
    fake_comfy.hold()
    first = await backend.submit(slow_prompt(1), prompt_id=ID["first"])
    second = await backend.submit(slow_prompt(2), prompt_id=ID["second"])
    fake_comfy.release()

    first_events, second_events = await asyncio.gather(collect(first), collect(second))

    assert {prompt_id_of(e) for e in first_events} == {ID["first"]}
    assert {prompt_id_of(e) for e in second_events} == {ID["second"]}
    assert isinstance(first_events[-1], ExecutionSuccess)
    assert isinstance(second_events[-1], ExecutionSuccess)


async def test_two_concurrent_jobs_complete_with_their_files(
    backend: ComfyBackend, fake_comfy: FakeComfy
):
    runs = [await backend.submit(slow_prompt(seed, prefix=f"job{seed}")) for seed in (3, 4)]
    async with asyncio.timeout(5):
        results = await asyncio.gather(*(run.result() for run in runs))

    assert [r.outcome for r in results] == [Outcome.SUCCESS, Outcome.SUCCESS]
    assert [r.prompt_id for r in results] == [run.prompt_id for run in runs]
    for seed, result in zip((3, 4), results, strict=True):
        [file] = result.files
        assert file.filename.startswith(f"job{seed}_")
        assert file.filename in fake_comfy.outputs
    assert backend.in_flight == 0


async def test_one_websocket_serves_every_job(backend: ComfyBackend, fake_comfy: FakeComfy):
    runs = [await backend.submit(slow_prompt(seed)) for seed in range(5, 9)]
    async with asyncio.timeout(5):
        results = await asyncio.gather(*(run.result() for run in runs))

    assert all(r.is_success for r in results)
    assert ws_opens(fake_comfy) == 1
    assert backend.stream.connections == 1


async def test_previews_arrive_with_the_prompt_id(backend: ComfyBackend, fake_comfy: FakeComfy):
    run = await backend.submit(slow_prompt(9, steps=4, preview="JPEG"), prompt_id=ID["previewed"])
    events = await collect(run)

    previews = [e for e in events if isinstance(e, Preview)]
    assert previews
    # Only event 4 (negotiated by our feature flags) names the node; event 1 names nothing.
    assert {(p.prompt_id, p.node_id, p.image_type) for p in previews} == {
        (ID["previewed"], "2", "image/jpeg")
    }
    assert fake_comfy.hub.supports_metadata("backend-tests")


async def test_dropped_socket_mid_job_still_delivers_the_result(
    backend: ComfyBackend, fake_comfy: FakeComfy
):
    fake_comfy.hold()
    run = await backend.submit(slow_prompt(10), prompt_id=ID["dropped"])
    await fake_comfy.wait_for_prompt(ID["dropped"], "running")
    await fake_comfy.drop_sockets()
    fake_comfy.release()

    async with asyncio.timeout(5):
        result = await run.result()

    assert result.outcome is Outcome.SUCCESS
    assert [f.filename for f in result.files] == list(fake_comfy.outputs)
    async with asyncio.timeout(5):
        await backend.stream.wait_connected()
    assert ws_opens(fake_comfy) >= 2


async def test_job_finished_while_away_is_settled_by_the_server_record(fake_comfy: FakeComfy):
    """0.3.64 has only /history for it; 0.38 answers through its jobs API."""
    client, backend = await open_backend(fake_comfy, AWAY)
    try:
        fake_comfy.hold()
        run = await backend.submit(slow_prompt(11), prompt_id=ID["away"])
        await fake_comfy.wait_for_prompt(ID["away"], "running")
        await fake_comfy.drop_sockets()
        fake_comfy.release()
        await fake_comfy.wait_for_prompt(ID["away"], "done")
        assert not backend.stream.is_connected, "the job must end while we are away"

        async with asyncio.timeout(5):
            result = await run.result()

        assert result.outcome is Outcome.SUCCESS
        assert [f.filename for f in result.files] == list(fake_comfy.outputs)
        record = f"/api/jobs/{ID['away']}" if fake_comfy.version == "0.38" else None
        path = record or f"/history/{ID['away']}"
        assert ("GET", path) in fake_comfy.requests
        legacy = [p for _, p in fake_comfy.requests if p.startswith(("/history", "/queue"))]
        assert bool(record) is not any(p.startswith("/history") for p in legacy)
    finally:
        await backend.__aexit__(None, None, None)
        await client.close()


async def test_reconnect_while_submitting_still_settles_the_run(fake_comfy: FakeComfy):
    """The socket drops and comes back while POST /prompt is answered but not yet read."""
    answered, resume = asyncio.Event(), asyncio.Event()

    async def pause_after_prompt(
        session: aiohttp.ClientSession, context: Any, params: aiohttp.TraceRequestEndParams
    ) -> None:
        if params.method == "POST" and params.url.path == "/prompt":
            answered.set()
            await resume.wait()

    trace = aiohttp.TraceConfig()
    trace.on_request_end.append(pause_after_prompt)
    async with aiohttp.ClientSession(trace_configs=[trace]) as http:
        client, backend = await open_backend(fake_comfy, AWAY, session=http)
        try:
            listener = backend.stream.listen()
            fake_comfy.hold()
            submitting = asyncio.create_task(backend.submit(slow_prompt(12), prompt_id=ID["racy"]))
            async with asyncio.timeout(5):
                await answered.wait()
                await fake_comfy.drop_sockets()
                fake_comfy.release()
                await fake_comfy.wait_for_prompt(ID["racy"], "done")
                assert not backend.stream.is_connected, "the job must end while we are away"
                async for event in listener:  # the reconnect (and its hook) happened
                    if isinstance(event, Status) and backend.stream.connections >= 2:
                        break
                resume.set()
                run = await submitting
                result = await run.result()
            assert result.outcome is Outcome.SUCCESS
            assert result.files
        finally:
            await backend.__aexit__(None, None, None)
            await client.close()


async def test_restarted_server_makes_the_job_lost(backend: ComfyBackend, fake_comfy: FakeComfy):
    fake_comfy.hold()
    run = await backend.submit(slow_prompt(13), prompt_id=ID["forgotten"])
    await fake_comfy.wait_for_prompt(ID["forgotten"], "running")

    await fake_comfy.restart()
    async with asyncio.timeout(5):
        result = await run.result()
    fake_comfy.release()

    assert result.outcome is Outcome.LOST
    assert ID["forgotten"] not in fake_comfy.history


async def test_slow_consumer_blocks_nobody(backend: ComfyBackend, fake_comfy: FakeComfy):
    ignored_listener = backend.stream.listen()
    ignored = await backend.submit(
        slow_prompt(14, steps=30, preview="PNG"), prompt_id=ID["ignored"]
    )
    watched = await backend.submit(slow_prompt(15), prompt_id=ID["watched"])

    async with asyncio.timeout(5):
        result = await watched.result()
    assert result.outcome is Outcome.SUCCESS
    assert fake_comfy.history[ID["ignored"]]["status"]["completed"]
    assert ignored_listener.get_nowait() is not None

    async with asyncio.timeout(5):
        late = await ignored.result()
    assert late.outcome is Outcome.SUCCESS


def _frame(kind: str, **data: Any) -> Event:
    return parse_event(json.dumps({"type": kind, "data": data}))


async def test_executing_null_alone_is_not_success():
    stream = EventStream("ws://127.0.0.1:9/ws")
    run = PromptRun("crafted", stream.subscribe("crafted"))
    for event in (
        _frame("execution_start", prompt_id="crafted", timestamp=1),
        _frame("executing", node="2", display_node="2", prompt_id="crafted"),
        _frame("executing", node=None, prompt_id="crafted"),
    ):
        stream.dispatch(event)

    events = run.events()
    async with asyncio.timeout(2):
        seen = [await anext(events) for _ in range(3)]
    assert len(seen) == 3
    assert not run.is_done

    stream.dispatch(_frame("execution_success", prompt_id="crafted", timestamp=2))
    async with asyncio.timeout(2):
        assert isinstance(await anext(events), ExecutionSuccess)
        result = await run.result()
    assert result.outcome is Outcome.SUCCESS


async def test_execution_error_reports_node_class_and_message(backend: ComfyBackend):
    run = await backend.submit(failing_prompt("kaboom on purpose"))
    events = await collect(run)
    result = await run.result()

    assert isinstance(events[-1], ExecutionError)
    assert result.outcome is Outcome.ERROR
    assert result.failure is not None
    assert (result.failure.node_id, result.failure.node_type) == ("2", "FailNode")
    assert result.failure.exception_type == "RuntimeError"
    assert "kaboom on purpose" in result.failure.message


async def test_cancel_running_leaves_another_clients_job_alone(
    backend: ComfyBackend, fake_comfy: FakeComfy
):
    fake_comfy.hold()
    ours = await backend.submit(slow_prompt(16), prompt_id=ID["ours"])
    await fake_comfy.wait_for_prompt(ID["ours"], "running")
    async with ComfyClient(fake_comfy.url, client_id="someone-else") as other:
        theirs = await other.submit(slow_prompt(17), prompt_id=ID["theirs"])

        assert await backend.cancel(ID["ours"]) is CancelResult.INTERRUPTED
        fake_comfy.release()
        async with asyncio.timeout(5):
            result = await ours.result()
        await fake_comfy.wait_for_prompt(theirs.prompt_id, "done")

    assert result.outcome is Outcome.INTERRUPTED
    assert fake_comfy.history[ID["theirs"]]["status"]["status_str"] == "success"
    assert fake_comfy.interrupts == [{"prompt_id": ID["ours"]}]
    assert_cancel_path(fake_comfy, ID["ours"])


def assert_cancel_path(fake: FakeComfy, prompt_id: str) -> None:
    """0.38 cancels through its jobs API only; 0.3.64 through /queue and targeted /interrupt."""
    posts = {path for method, path in fake.requests if method == "POST"}
    if fake.version == "0.38":
        assert fake.cancels == [prompt_id]
        assert not posts & {"/queue", "/interrupt"}
    else:
        assert fake.cancels == []
        assert posts & {"/queue", "/interrupt"}


async def test_cancel_pending_removes_it_from_the_queue(
    backend: ComfyBackend, fake_comfy: FakeComfy
):
    fake_comfy.hold()
    running = await backend.submit(slow_prompt(18), prompt_id=ID["running"])
    await fake_comfy.wait_for_prompt(ID["running"], "running")
    pending = await backend.submit(slow_prompt(19), prompt_id=ID["pending"])

    assert await backend.cancel(ID["pending"]) is CancelResult.REMOVED
    async with asyncio.timeout(5):
        cancelled = await pending.result()
    assert cancelled.outcome is Outcome.CANCELLED
    assert fake_comfy.pending == []

    fake_comfy.release()
    async with asyncio.timeout(5):
        assert (await running.result()).is_success
    await fake_comfy.wait_idle()
    assert ID["pending"] not in fake_comfy.history
    assert fake_comfy.interrupts == []
    assert_cancel_path(fake_comfy, ID["pending"])


async def test_cancel_of_an_unknown_prompt_is_not_found(
    backend: ComfyBackend, fake_comfy: FakeComfy
):
    assert await backend.cancel(str(uuid.uuid4())) is CancelResult.NOT_FOUND
    assert await backend.cancel("nobody-knows-me") is CancelResult.NOT_FOUND
    assert fake_comfy.interrupts == []


async def test_cancel_of_a_prompt_that_already_ended_is_not_found_and_touches_nothing(
    backend: ComfyBackend, fake_comfy: FakeComfy
):
    run = await backend.submit(slow_prompt(52))
    async with asyncio.timeout(5):
        assert (await run.result()).is_success
    assert await backend.cancel(run.prompt_id) is CancelResult.NOT_FOUND
    assert fake_comfy.interrupts == []
    assert fake_comfy.cancels == []  # the jobs API record said it had ended: no cancel sent


async def test_closing_the_stream_ends_waiting_consumers():
    stream = EventStream("ws://127.0.0.1:9/ws")
    listener = stream.listen()
    run = PromptRun("crafted", stream.subscribe("crafted"))
    first_seen = asyncio.Event()

    async def drain_listener() -> list[Event]:
        seen = []
        async for event in listener:
            seen.append(event)
            first_seen.set()
        return seen

    async def drain_run() -> list[Event]:
        return [event async for event in run.events()]

    listening, following = asyncio.create_task(drain_listener()), asyncio.create_task(drain_run())
    stream.dispatch(_frame("execution_start", prompt_id="crafted", timestamp=1))
    async with asyncio.timeout(2):
        await first_seen.wait()  # both consumers are now waiting for a second event
        await stream.close()
        heard, followed = await listening, await following

    assert len(heard) == 1
    assert len(followed) == 1
    assert not run.is_done


async def test_a_socket_comfyui_stopped_talking_to_is_replaced_and_progress_resumes(
    fake_comfy: FakeComfy,
) -> None:
    """ComfyUI forgets a client_id when an older socket of it closes late; we notice the silence."""
    fake_comfy.step_delay = 0.1
    async with ComfyClient(fake_comfy.url, client_id="deafened", timeout=5) as client:
        backend = ComfyBackend(client, backoff=FAST, check_interval=0.1, silence_limit=0.3)
        async with backend:
            async with asyncio.timeout(5):
                await backend.stream.wait_connected()
            fake_comfy.hold()
            run = await backend.submit(slow_prompt(41, steps=10))
            await fake_comfy.wait_for_prompt(run.prompt_id, "running")
            # A late close of another socket with our client_id unregisters ours (as ComfyUI does).
            async with aiohttp.ClientSession() as session:
                ws = await session.ws_connect(f"{fake_comfy.ws_url}?clientId=deafened")
                await ws.receive()  # its first status
                await ws.close()
            fake_comfy.release()
            events = await collect(run)
            result = await run.result()
    assert result.outcome is Outcome.SUCCESS
    assert backend.stream.connections >= 2
    assert any(isinstance(event, Progress) for event in events), events


def test_a_listener_may_ask_for_some_event_classes_only():
    stream = EventStream("ws://127.0.0.1:9/ws")
    statuses, everything = stream.listen(Status), stream.listen()
    events = [
        parse_event(
            json.dumps(
                {"type": "status", "data": {"status": {"exec_info": {"queue_remaining": 1}}}}
            )
        ),
        parse_event(
            json.dumps({"type": "execution_start", "data": {"prompt_id": "p", "timestamp": 1}})
        ),
    ]
    for event in events:
        stream.dispatch(event)
    assert [statuses.get_nowait(), statuses.get_nowait()] == [events[0], None]
    assert [everything.get_nowait(), everything.get_nowait()] == events


def count_rounds(backend: ComfyBackend, monkeypatch: pytest.MonkeyPatch, rounds: int):
    """Return an event set once the health loop has done `rounds` more rounds."""
    original, done, seen = backend.monitor._round, asyncio.Event(), [0]

    async def counted() -> None:
        await original()
        seen[0] += 1
        if seen[0] >= rounds:
            done.set()

    monkeypatch.setattr(backend.monitor, "_round", counted)
    return done


def asked(fake: FakeComfy, since: int) -> list[str]:
    return [path for _, path in fake.requests[since:] if path not in ("/ws", "/view")]


async def asked_while_running(
    fake: FakeComfy, monkeypatch: pytest.MonkeyPatch, seed: int, rounds: int, **options: Any
) -> list[str]:
    """Return what a backend (checking every 10 ms, `options`) asked in `rounds` check rounds
    while a held prompt of its own ran; the prompt must then succeed."""
    async with checked_backend(fake.url, backoff=FAST, check_interval=0.01, **options) as backend:
        fake.hold()
        run = await backend.submit(slow_prompt(seed))
        await fake.wait_for_prompt(run.prompt_id, "running")
        since = len(fake.requests)
        counted = count_rounds(backend, monkeypatch, rounds)
        async with asyncio.timeout(5):
            await counted.wait()
        paths = asked(fake, since)
        fake.release()
        assert (await run.result()).is_success
    return paths


async def test_an_open_socket_is_the_health_signal_no_polling_while_it_is_up(
    fake_comfy: FakeComfy, monkeypatch: pytest.MonkeyPatch
):
    paths = await asked_while_running(fake_comfy, monkeypatch, 50, 20)
    assert paths == []  # 20 rounds: no /system_stats, no /queue


async def test_without_news_the_queue_is_reconciled_once_an_interval(
    fake_comfy: FakeComfy, monkeypatch: pytest.MonkeyPatch
):
    paths = await asked_while_running(fake_comfy, monkeypatch, 51, 3, reconcile_interval=0)
    assert set(paths) == {"/queue"}
    assert 3 <= len(paths) <= 4  # one per round (the interval here is 0), nothing else


async def test_what_a_server_can_do_is_learned_again_when_it_comes_back_upgraded():
    async with (
        FakeComfy(version="0.3.64") as fake,
        ComfyClient(fake.url, timeout=5) as client,
        ComfyBackend(client, backoff=FAST, check_interval=60) as backend,
    ):
        async with asyncio.timeout(5):
            await backend.stream.wait_connected()
            await backend.check()
        assert (backend.health.version, backend.has_jobs_api) == ("0.3.64", False)
        assert backend.health.path == "/queue + /history"

        await fake.kill()
        fake.rules = rules_for("0.38")  # the admin upgraded ComfyUI meanwhile
        await fake.start()
        # Asked by the backend itself, when its socket came back: not by this test.
        await fake.wait_for_request("GET", "/api/jobs", count=2)
        health = await backend.check()  # the answer of the check under way
        assert (health.version, backend.has_jobs_api) == ("0.38.1", True)
        assert health.path == "/api/jobs"


async def test_silence_while_ours_only_waits_asks_nothing(
    fake_comfy: FakeComfy, monkeypatch: pytest.MonkeyPatch
):
    async with (
        checked_backend(
            fake_comfy.url, backoff=FAST, check_interval=0.01, silence_limit=0.05
        ) as backend,
        ComfyClient(fake_comfy.url, client_id="someone-else") as other,
    ):
        fake_comfy.hold()
        theirs = await other.submit(slow_prompt(53))  # its progress goes to its socket only
        await fake_comfy.wait_for_prompt(theirs.prompt_id, "running")
        ours = await backend.submit(slow_prompt(54))
        since = len(fake_comfy.requests)
        rounds = count_rounds(backend, monkeypatch, 20)
        async with asyncio.timeout(5):
            await rounds.wait()
        assert backend.stream.silence > 0.05
        assert asked(fake_comfy, since) == []
        fake_comfy.release()
        assert (await ours.result()).is_success


def ksampler_prompt(seed: int) -> dict[str, Any]:
    """Return the recorded txt2img prompt of trace n (a KSampler: latent previews)."""
    [body, *_] = [step["request"]["request_json"] for step in trace_posts(load_trace(TRACE_N))]
    prompt: dict[str, Any] = json.loads(json.dumps(body["prompt"]))
    prompt["3"]["inputs"]["seed"] = seed
    return prompt


@pytest.mark.parametrize(
    ("version", "method", "has_previews"),
    [
        ("0.38", "auto", True),
        ("0.38", "default", False),
        ("0.38", None, False),
        ("0.3.64", "auto", False),  # 0.3.64 ignores the key: its start-up flag decides
    ],
)
async def test_sampler_previews_follow_preview_method_where_the_server_honours_it(
    version: str, method: str | None, has_previews: bool
):
    # Both servers started with previews off (ComfyUI's default --preview-method none).
    models = {"checkpoints": ["random_sd15.safetensors"]}
    async with (
        FakeComfy(version=version, models=models, previews=False) as fake,
        ComfyClient(fake.url, timeout=5, preview_method=method) as client,
        ComfyBackend(client, backoff=FAST, check_interval=60) as backend,
    ):
        async with asyncio.timeout(5):
            await backend.stream.wait_connected()
        run = await backend.submit(ksampler_prompt(seed=7))
        events = await collect(run)
        assert (await run.result()).is_success
    assert any(isinstance(event, Preview) for event in events) is has_previews
