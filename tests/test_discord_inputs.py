"""bot.discord.inputs: workflow lookup and request checks, no Discord objects."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.discord import inputs
from bot.workflows.library import UnknownWorkflow, WorkflowInputError, WorkflowLibrary
from tests.discord_env import library_dir


@pytest.fixture
def library(tmp_path: Path) -> WorkflowLibrary:
    return WorkflowLibrary.load(library_dir(tmp_path))


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
