"""Tests of bot.comfy.events: recorded ComfyUI traces replayed through the parser."""

import base64
import dataclasses
import json
import struct
from pathlib import Path
from typing import Any

import pytest

from bot.comfy.events import (
    FEATURE_FLAGS_MESSAGE,
    Executed,
    Executing,
    ExecutionCached,
    ExecutionError,
    ExecutionInterrupted,
    ExecutionStart,
    ExecutionSuccess,
    FeatureFlags,
    NodeState,
    OutputFile,
    Preview,
    Progress,
    ProgressState,
    Status,
    Text,
    Unknown,
    parse_binary,
    parse_event,
    parse_json,
    prompt_id_of,
)

TRACES = sorted((Path(__file__).parent / "fixtures" / "traces").glob("*.json"))

TEXT_CLASSES: dict[str, type] = {
    "status": Status,
    "execution_start": ExecutionStart,
    "execution_cached": ExecutionCached,
    "executing": Executing,
    "progress": Progress,
    "progress_state": ProgressState,
    "executed": Executed,
    "execution_success": ExecutionSuccess,
    "execution_error": ExecutionError,
    "execution_interrupted": ExecutionInterrupted,
    "feature_flags": FeatureFlags,
}
LEGACY_IMAGE_TYPES = {1: "image/jpeg", 2: "image/png"}
MAGIC = {"jpeg": b"\xff\xd8", "png": b"\x89PNG"}


def _steps(path: Path, kind: str) -> list[dict[str, Any]]:
    return [step for step in json.loads(path.read_text())["steps"] if step["kind"] == kind]


def _trace(name: str) -> Path:
    return next(path for path in TRACES if path.name.startswith(name))


def _frame(step: dict[str, Any]) -> bytes:
    """Rebuild a whole binary frame from a trace step's decoded header and base64 prefix."""
    recorded = base64.b64decode(step["base64"])
    frame: bytes
    match step["event_type"]:
        case 3:
            head = (step["node_id"] + step["text"]).encode()
            frame = struct.pack(">II", 3, step["node_id_length"]) + head
        case 4:
            # The recorder's json.dumps of the metadata reproduces the server's bytes exactly.
            meta = json.dumps(step["metadata"]).encode()
            assert len(meta) == step["metadata_length"]
            frame = struct.pack(">II", 4, len(meta)) + meta + recorded[8 + len(meta) :]
        case _:
            frame = recorded
    assert frame[: len(recorded)] == recorded
    # Truncated payloads: pad the image to its recorded size; only its first bytes are real.
    return frame.ljust(step["byte_length"], b"\0")


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def _assert_matches_json(event: Any, data: dict[str, Any]) -> None:
    match event:
        case Status():
            assert event.queue_remaining == data["status"]["exec_info"]["queue_remaining"]
            assert event.sid == data.get("sid")
            return
        case ProgressState():
            assert event.prompt_id == data["prompt_id"]
            assert [dataclasses.asdict(node) for node in event.nodes] == [
                {key: node[key] for key in ("node_id", "value", "max", "state", "display_node_id")}
                for node in data["nodes"].values()
            ]
            return
        case FeatureFlags():
            assert event.flags == data
            return
    for field in dataclasses.fields(event):
        value = getattr(event, field.name)
        if field.name in data:
            assert _plain(value) == data[field.name], field.name
        else:
            assert value is None, field.name


@pytest.mark.parametrize("path", TRACES, ids=lambda path: path.stem)
def test_trace_text_messages_parse_to_their_class(path: Path) -> None:
    for step in _steps(path, "ws_text"):
        message = step["json"]
        event = parse_event(json.dumps(message))
        assert type(event) is TEXT_CLASSES[message["type"]], message
        _assert_matches_json(event, message["data"])
        assert prompt_id_of(event) == getattr(event, "prompt_id", None)


@pytest.mark.parametrize("path", TRACES, ids=lambda path: path.stem)
def test_trace_binary_frames_parse(path: Path) -> None:
    prompt_ids = {step["json"]["data"].get("prompt_id") for step in _steps(path, "ws_text")}
    for step in _steps(path, "ws_binary"):
        frame = _frame(step)
        assert len(frame) == step["byte_length"]
        event = parse_event(frame)
        match step["event_type"]:
            case 1:
                assert isinstance(event, Preview)
                assert (event.prompt_id, event.node_id) == (None, None)
                assert event.image_type == LEGACY_IMAGE_TYPES[step["image_format"]]
                assert len(event.data) == step["image_byte_length"]
                assert event.data.startswith(MAGIC[step["image_magic"]])
            case 4:
                assert isinstance(event, Preview)
                assert event.prompt_id == step["metadata"]["prompt_id"]
                assert event.prompt_id in prompt_ids
                assert event.node_id == step["metadata"]["node_id"]
                assert event.image_type == step["metadata"]["image_type"]
                assert len(event.data) == step["image_byte_length"]
            case 3:
                assert event == Text(step["node_id"], step["text"])
            case other:
                pytest.fail(f"unexpected binary event {other} in {path.name}")


def test_traces_cover_every_kind_of_message() -> None:
    assert len(TRACES) >= 14
    text_types = {step["json"]["type"] for path in TRACES for step in _steps(path, "ws_text")}
    binary_types = {step["event_type"] for path in TRACES for step in _steps(path, "ws_binary")}
    assert text_types == set(TEXT_CLASSES)
    assert binary_types == {1, 3, 4}


def test_feature_flags_message_is_what_the_recorded_client_sent() -> None:
    sent = [step["json"] for step in _steps(_trace("j_"), "ws_send")]
    assert json.loads(FEATURE_FLAGS_MESSAGE) in sent
    assert parse_event(FEATURE_FLAGS_MESSAGE) == FeatureFlags({"supports_preview_metadata": True})


def test_execution_error_fields_from_trace() -> None:
    message = next(
        step["json"]
        for step in _steps(_trace("e_"), "ws_text")
        if step["json"]["type"] == "execution_error"
    )
    event = parse_json(message)
    assert isinstance(event, ExecutionError)
    assert event.prompt_id == message["data"]["prompt_id"]
    assert (event.node_id, event.node_type) == ("3", "FailNode")
    assert event.exception_type == "RuntimeError"
    assert event.exception_message == "boom: deliberate test failure\n"
    assert event.executed == ("2", "5", "1")
    assert len(event.traceback) == 5
    assert all(line.startswith("  File ") for line in event.traceback)
    assert event.timestamp == message["data"]["timestamp"]


def test_progress_state_nodes_from_trace() -> None:
    message = next(
        step["json"]
        for step in _steps(_trace("a_"), "ws_text")
        if step["json"]["type"] == "progress_state" and len(step["json"]["data"]["nodes"]) == 2
    )
    event = parse_json(message)
    assert isinstance(event, ProgressState)
    assert event.nodes[0] == NodeState("1", 1.0, 1.0, "finished", "1")
    assert event.nodes[1].node_id == "2"
    assert event.nodes[1].state == "running"
    assert isinstance(event.nodes[1].value, float)


def test_executing_on_reconnect_has_no_prompt_id() -> None:
    assert parse_event('{"type":"executing","data":{"node":"2"}}') == Executing(None, "2", None)


def test_executing_done_marker() -> None:
    event = parse_event('{"type":"executing","data":{"node":null,"prompt_id":"p"}}')
    assert event == Executing("p", None, None)


def test_executed_files_across_output_kinds() -> None:
    image = {"filename": "a_00001_.png", "subfolder": "", "type": "output"}
    gif = {"filename": "b_00001_.gif", "subfolder": "anim", "type": "output", "format": "gif"}
    temp = {"filename": "ComfyUI_temp_x_00001_.png", "subfolder": "", "type": "temp"}
    output = {
        "images": [image, temp],
        "gifs": [gif],
        "animated": [True],
        "text": ["finished"],
        "broken": [{"filename": "c.png"}],
    }
    event = parse_json(
        {"type": "executed", "data": {"node": "9", "prompt_id": "p", "output": output}}
    )
    assert isinstance(event, Executed)
    assert event.files == (
        OutputFile("a_00001_.png", "", "output"),
        OutputFile("ComfyUI_temp_x_00001_.png", "", "temp"),
        OutputFile("b_00001_.gif", "anim", "output"),
    )
    assert event.output == output
    with pytest.raises(TypeError):
        event.output["images"] = []  # type: ignore[index]  # the point: output is read-only


def test_executed_text_output_has_no_files() -> None:
    data = {"node": "3", "display_node": "3", "prompt_id": "p", "output": {"text": ["a", "b"]}}
    event = parse_json({"type": "executed", "data": data})
    assert isinstance(event, Executed)
    assert event.files == ()


def test_events_are_frozen() -> None:
    event = ExecutionStart("p", 1)
    with pytest.raises(dataclasses.FrozenInstanceError):
        event.prompt_id = "q"  # type: ignore[misc]  # the point: events are frozen


@pytest.mark.parametrize(
    ("message", "kind"),
    [
        ('{"type":"crystools.monitor","data":{"cpu_utilization":3}}', "crystools.monitor"),
        ('{"type":"logs","data":{"entries":[]}}', "logs"),
        ('{"type":"progress","data":{"value":1}}', "progress"),
        ('{"type":"progress","data":{"value":"1","max":4}}', "progress"),
        ('{"type":"progress","data":{"value":Infinity,"max":4}}', "progress"),
        ('{"type":"status","data":{"status":null}}', "status"),
        ('{"type":"status","data":{"status":[]}}', "status"),
        ('{"type":"executing","data":{}}', "executing"),
        ('{"type":"execution_cached","data":{"nodes":"1","prompt_id":"p"}}', "execution_cached"),
        ('{"type":"progress_state","data":{"prompt_id":"p","nodes":[]}}', "progress_state"),
        ('{"type":"progress_state","data":{"prompt_id":"p","nodes":{"1":"x"}}}', "progress_state"),
        ('{"type":"executed","data":{"node":"1","prompt_id":"p","output":[]}}', "executed"),
        ('{"type":"execution_start"}', "execution_start"),
        ('{"type":"execution_start","data":[]}', "execution_start"),
        ("{not json", "invalid"),
        ("", "invalid"),
        ("[1, 2]", "invalid"),
        ('{"data":{}}', "invalid"),
        ('{"type":3,"data":{}}', "invalid"),
        ("[" * 100_000, "invalid"),
    ],
)
def test_bad_or_unknown_text_is_unknown(message: str, kind: str) -> None:
    event = parse_event(message)
    assert isinstance(event, Unknown)
    assert event.type == kind


def _event4(metadata: bytes, image: bytes = b"img", length: int | None = None) -> bytes:
    size = len(metadata) if length is None else length
    return struct.pack(">II", 4, size) + metadata + image


@pytest.mark.parametrize(
    ("frame", "kind"),
    [
        (b"", "binary"),
        (b"\x00\x00\x01", "binary"),
        (b"\x00\x00\x00\x01", "binary:1"),
        (struct.pack(">II", 1, 9) + b"\xff\xd8", "binary:1"),
        (struct.pack(">II", 7, 0) + b"x", "binary:7"),
        (struct.pack(">II", 2, 1) + b"x", "binary:2"),
        (_event4(b'{"image_type":"image/png"}', length=999), "binary:4"),
        (_event4(b"{broken"), "binary:4"),
        (_event4(b"[]"), "binary:4"),
        (_event4(b'{"prompt_id":"p"}'), "binary:4"),
        (struct.pack(">II", 3, 50) + b"1abc", "binary:3"),
        (struct.pack(">II", 3, 1) + b"1\xff\xfe", "binary:3"),
    ],
)
def test_bad_or_unknown_binary_is_unknown(frame: bytes, kind: str) -> None:
    event = parse_event(frame)
    assert isinstance(event, Unknown)
    assert event.type == kind
    assert parse_binary(frame) == event


def test_large_preview_frame() -> None:
    image = b"\x89PNG" + bytes(8 * 1024 * 1024)
    event = parse_event(struct.pack(">II", 1, 2) + image)
    assert isinstance(event, Preview)
    assert event.image_type == "image/png"
    assert event.data == image
    assert repr(event) == (
        f"Preview(prompt_id=None, node_id=None, image_type='image/png', data=<{len(image)} bytes>)"
    )


def test_event4_preview_and_text_frames() -> None:
    metadata = b'{"node_id":"3","prompt_id":"p","image_type":"image/jpeg"}'
    assert parse_event(_event4(metadata, b"\xff\xd8jpeg")) == Preview(
        "p", "3", "image/jpeg", b"\xff\xd8jpeg"
    )
    text = struct.pack(">II", 3, 2) + "12größe".encode()
    assert parse_event(text) == Text("12", "größe")


def test_unknown_repr_hides_bytes() -> None:
    assert repr(Unknown("binary:7", bytes(1000))) == "Unknown(type='binary:7', data=<1000 bytes>)"
    assert repr(Unknown("logs", {"a": 1})) == "Unknown(type='logs', data={'a': 1})"


def test_prompt_id_of() -> None:
    assert prompt_id_of(ExecutionSuccess("p", None)) == "p"
    assert prompt_id_of(Executing(None, "2", None)) is None
    assert prompt_id_of(Preview("p", "3", "image/png", b"")) == "p"
    assert prompt_id_of(Status(0, "sid")) is None
    assert prompt_id_of(Text("3", "hi")) is None
    assert prompt_id_of(Unknown("x", None)) is None
