"""user_message: the one place any failure becomes user text."""

import pytest

from bot.comfy.errors import (
    ComfyHTTPError,
    ComfyUnavailable,
    NodeError,
    PromptRejected,
    ProtocolError,
)
from bot.errors import InvalidImage, NotAllowed, QueueFull, TooManyJobs, UnknownJob, user_message

REJECTED = PromptRejected(
    "prompt_outputs_failed_validation",
    "Prompt outputs failed validation",
    (
        NodeError(
            "1",
            "EmptyImage",
            "value_smaller_than_min",
            "Value -5 smaller than min of 1",
            "width",
            "width",
        ),
        NodeError(
            "4",
            "CheckpointLoaderSimple",
            "value_not_in_list",
            "Value not in list",
            "ckpt_name: 'x.safetensors' not in []",
            "ckpt_name",
        ),
    ),
)


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (TooManyJobs(2), "You already have 2 jobs queued or running"),
        (TooManyJobs(1), "You already have 1 job queued"),
        (QueueFull(1000), "The queue is full (1000 jobs waiting)"),
        (UnknownJob("abc"), "There is no job abc"),
        (NotAllowed("Only the member who asked"), "Only the member who asked"),
        (InvalidImage("cat.txt is not an image"), "cat.txt is not an image"),
        (ComfyUnavailable("refused"), "ComfyUI is not reachable right now"),
        (ComfyHTTPError("GET", "/view", 500, "boom"), "HTTP 500"),
        (
            ProtocolError("/upload/image has no 'name'"),
            "ComfyUI gave an answer ComfyCord does not understand; an admin can see it in the log",
        ),
        (REJECTED, "node 1 (EmptyImage), input width: Value -5 smaller than min of 1"),
        (REJECTED, "node 4 (CheckpointLoaderSimple), input ckpt_name: Value not in list"),
        (RuntimeError("secret internals"), "Something went wrong on our side"),
    ],
)
def test_user_message(exc, expected):
    text = user_message(exc)
    assert expected in text
    assert "secret internals" not in text


def test_prompt_without_node_errors_names_the_top_level_problem():
    exc = PromptRejected(
        "invalid_prompt",
        "Cannot execute because node NoSuchNode does not exist.",
        (
            NodeError(
                "3",
                None,
                "invalid_prompt",
                "Cannot execute because node NoSuchNode does not exist.",
                "Node ID '#3'",
                None,
            ),
        ),
    )
    assert "NoSuchNode does not exist" in user_message(exc)
