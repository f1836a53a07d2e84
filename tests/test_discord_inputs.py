"""bot.discord.inputs: allow-lists, workflow lookup and request checks, no Discord objects."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.config import Settings
from bot.discord import inputs
from bot.errors import NotAllowed
from bot.workflows.library import UnknownWorkflow, WorkflowInputError, WorkflowLibrary
from tests.discord_env import library_dir


@pytest.fixture
def library(tmp_path: Path) -> WorkflowLibrary:
    return WorkflowLibrary.load(library_dir(tmp_path))


def _settings(**env: str) -> Settings:
    return Settings.from_env(env)


@pytest.mark.parametrize(
    ("env", "channels", "roles", "refusal"),
    [
        ({}, [1], [], None),
        ({"ALLOWED_CHANNEL_IDS": "1,2"}, [2, None], [], None),
        ({"ALLOWED_CHANNEL_IDS": "1,2"}, [3, 2], [], None),  # a thread whose parent is allowed
        ({"ALLOWED_CHANNEL_IDS": "1,2"}, [3, None], [], "I only take requests in <#1>, <#2>."),
        ({"ALLOWED_ROLE_IDS": "9"}, [3], [8, 9], None),
        ({"ALLOWED_ROLE_IDS": "9"}, [3], [8], "You need one of these roles"),
    ],
)
def test_check_access(
    env: dict[str, str], channels: list[int | None], roles: list[int], refusal: str | None
) -> None:
    if refusal is None:
        inputs.check_access(_settings(**env), channels, roles)
    else:
        with pytest.raises(NotAllowed, match=refusal):
            inputs.check_access(_settings(**env), channels, roles)


def test_find_workflow_by_name_or_display_name_never_a_path(library: WorkflowLibrary) -> None:
    assert inputs.find_workflow(library, "slow").name == "slow"
    assert inputs.find_workflow(library, "demo (NO models)").name == "demo"
    with pytest.raises(UnknownWorkflow, match="Available: batch, demo"):
        inputs.find_workflow(library, "../workflows/demo.json")


def test_workflow_choices_match_names_and_display_names(library: WorkflowLibrary) -> None:
    assert inputs.workflow_choices(library, "DEMO") == [("Demo (no models) (demo)", "demo")]
    assert ("Twelve images (test) (batch)", "batch") in inputs.workflow_choices(library, "")
    assert inputs.workflow_choices(library, "zzz") == []


def test_build_request_checks_the_workflow_before_anything_is_sent(
    library: WorkflowLibrary,
) -> None:
    slow, demo = library.get("slow"), library.get("demo")

    request = inputs.build_request(slow, 5, 0, prompt="p", steps=10, seed=None)

    assert (request.requester, request.workflow, request.steps) == ("5", "slow", 10)
    with pytest.raises(WorkflowInputError, match="needs an input image"):
        inputs.build_request(demo, 5, 0, prompt="p")
    with pytest.raises(WorkflowInputError, match="takes 1 input image, got 2"):
        inputs.build_request(demo, 5, 2, prompt="p")
    with pytest.raises(WorkflowInputError, match="steps must be between 1 and 500"):
        inputs.build_request(slow, 5, 0, prompt="p", steps=501)
