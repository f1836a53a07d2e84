"""The one error mapping (bot.errors.user_message) and the Discord error hook's wording."""

from __future__ import annotations

import logging
import re

import discord
import pytest
from discord import app_commands

from bot.comfy.errors import ComfyHTTPError, ComfyUnavailable, NodeError, PromptRejected
from bot.discord.errors import describe
from bot.errors import (
    UNEXPECTED,
    ImageTooLarge,
    InvalidImage,
    NotAllowed,
    QueueFull,
    TooManyJobs,
    UnknownJob,
    user_message,
)
from bot.workflows.library import UnknownWorkflow, WorkflowInputError


def _invoke_error(original: Exception) -> app_commands.CommandInvokeError:
    async def callback(interaction: discord.Interaction) -> None:
        """Do nothing."""

    command = app_commands.Command(name="x", description="x", callback=callback)
    return app_commands.CommandInvokeError(command, original)


REJECTED = PromptRejected(
    "prompt_outputs_failed_validation",
    "Prompt outputs failed validation",
    (
        NodeError(
            "4",
            "CheckpointLoaderSimple",
            "value_not_in_list",
            "Value not in list",
            "x",
            "ckpt_name",
        ),
    ),
)


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (TooManyJobs(2), "You already have 2 jobs queued or running"),
        (QueueFull(10), "The queue is full (10 jobs waiting)"),
        (UnknownJob("j1"), "There is no job j1"),
        (NotAllowed("Only the person who asked"), "Only the person who asked"),
        (InvalidImage("a.png is not an image."), "a.png is not an image."),
        (ImageTooLarge("a.png is 30 MiB"), "a.png is 30 MiB"),
        (UnknownWorkflow("No workflow 'x'."), "No workflow 'x'."),
        (WorkflowInputError("steps must be between 1 and 60"), "steps must be between 1 and 60"),
        (REJECTED, "node 4 (CheckpointLoaderSimple), input ckpt_name: Value not in list"),
        (ComfyUnavailable("down"), "ComfyUI is not reachable right now"),
        (ComfyHTTPError("GET", "/queue", 500, "boom"), "ComfyUI answered with an error (HTTP 500)"),
        (
            app_commands.MissingPermissions(["manage_guild"]),
            "You need the Manage Server permission",
        ),
        (
            app_commands.BotMissingPermissions(["attach_files"]),
            "I need the Attach Files permission",
        ),
        (app_commands.NoPrivateMessage(), "only works in a server"),
        (app_commands.CheckFailure(), "You can't use that here."),
        (RuntimeError("secret internals"), UNEXPECTED),
    ],
)
def test_user_message(exc: Exception, expected: str) -> None:
    assert expected in user_message(exc)


def test_describe_unwraps_command_invoke_errors() -> None:
    assert describe(_invoke_error(TooManyJobs(1)), "test") == (
        "You already have 1 job queued or running; wait for one to finish or cancel it."
    )


def test_describe_gives_unexpected_errors_an_id_and_logs_them(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.ERROR, logger="bot.discord.errors"):
        text = describe(_invoke_error(KeyError("internal")), "/generate by 1")

    match = re.fullmatch(
        r"Sorry, something went wrong on our side \(error id `([0-9a-f]{8})`\)\.", text
    )
    assert match is not None
    assert "internal" not in text
    record = caplog.records[-1]
    assert match[1] in record.getMessage()
    assert record.exc_info is not None
