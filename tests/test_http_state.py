"""PatchState, the HTTP middleware's per-server workflow state: pure values, no sockets."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bot.errors import ImageTooLarge, InvalidImage
from bot.http.errors import MissingImage, NoImageInput, UnknownNode, classify
from bot.http.patch import PatchState
from bot.images import ImageFile, check_input_image
from bot.workflows.library import Workflow, WorkflowInputError, load_workflow
from tests.http_harness import HTTP_TEXT, png

TWO_IMAGES = {
    "1": {"class_type": "LoadImage", "inputs": {"image": "a.png"}},
    "2": {"class_type": "LoadImage", "inputs": {"image": "b.png"}},
    "3": {"class_type": "ImageBlend", "inputs": {"image1": ["1", 0], "image2": ["2", 0]}},
    "4": {"class_type": "SaveImage", "inputs": {"images": ["3", 0], "filename_prefix": "x"}},
}


@pytest.fixture
def text_flow() -> Workflow:
    return load_workflow(HTTP_TEXT)


@pytest.fixture
def two_images(tmp_path: Path) -> Workflow:
    path = tmp_path / "two.json"
    path.write_text(json.dumps(TWO_IMAGES))
    return load_workflow(path)


def test_changes_return_a_new_state_and_leave_the_old_one(text_flow: Workflow) -> None:
    first = PatchState.initial(text_flow)
    second = first.with_changes({"text": "hello", "steps": 9})
    assert first.values == {}
    assert second.values == {"prompt": "hello", "steps": 9}
    assert second.graph()["2"]["inputs"]["text"] == "hello"
    assert first.graph()["2"]["inputs"]["text"] == "exported text"


def test_null_resets_a_value(text_flow: Workflow) -> None:
    state = PatchState.initial(text_flow).with_changes({"text": "hello", "seed": 3})
    state = state.with_changes({"seed": None})
    assert state.values == {"prompt": "hello"}
    state = state.with_changes({"node_id": "3", "input": "delay", "value": 0.5})
    state = state.with_changes({"node_id": "3", "input": "delay", "value": None})
    assert state.overrides == {}


def test_a_refused_change_raises_and_changes_nothing(text_flow: Workflow) -> None:
    state = PatchState.initial(text_flow).with_changes({"text": "kept"})
    with pytest.raises(WorkflowInputError):
        state.with_changes({"text": "lost", "steps": 0})
    with pytest.raises(UnknownNode):
        state.with_changes({"node_id": "42", "text": "lost"})
    assert state.values == {"prompt": "kept"}


def test_request_pins_the_exported_prompt_and_leaves_the_seed_to_the_queue(
    text_flow: Workflow,
) -> None:
    image = ImageFile("in.png", png())
    request = PatchState.initial(text_flow).with_image(0, image).request("http", "http_text")
    assert request.overrides == {("2", "text"): "exported text"}
    assert request.seed is None
    assert request.images == (image,)
    assert request.requester == "http"


def test_request_carries_values_set(text_flow: Workflow) -> None:
    state = PatchState.initial(text_flow).with_changes({"text": "fox", "seed": 5, "steps": 4})
    state = state.with_changes({"node_id": "3", "input": "delay", "value": 0.25})
    request = state.request("http", "http_text")
    assert (request.prompt, request.seed, request.steps) == ("fox", 5, 4)
    assert request.overrides == {("2", "text"): "fox", ("3", "steps"): 4, ("3", "delay"): 0.25}


def test_images_fill_inputs_in_order(two_images: Workflow) -> None:
    second_only = PatchState.initial(two_images).with_image(1, ImageFile("b.png", png()))
    with pytest.raises(MissingImage, match=r"Image input 0 \(node 1\) has no upload yet"):
        second_only.request("http", "two")
    both = second_only.with_image(0, ImageFile("a.png", png()))
    assert [i.filename for i in both.request("http", "two").images] == ["a.png", "b.png"]
    with pytest.raises(NoImageInput, match="between 0 and 1"):
        both.with_image(2, ImageFile("c.png", png()))


def test_image_errors_map_to_their_statuses() -> None:
    with pytest.raises(ImageTooLarge) as too_big:
        check_input_image(png(), "x.png", max_bytes=10)
    with pytest.raises(InvalidImage) as not_image:
        check_input_image(b"not an image", "x.png", max_bytes=1000)
    assert classify(too_big.value) == (413, "image_too_large")
    assert classify(not_image.value) == (422, "invalid_image")
    assert isinstance(too_big.value, InvalidImage)  # callers catching InvalidImage still do
