"""The workflow benchmark still runs and prints its figures (they are not asserted here)."""

from __future__ import annotations

import re

import pytest

from bench.bench_workflows import expected, main
from tests.graphs import ApiGraph, object_info


def test_bench_workflows_prints_its_figures(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--verbose"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"^converted: \d+/92$", out, re.MULTILINE), out
    assert re.search(r"^valid: +\d+/92 = [\d.]+% \(target 90%\)$", out, re.MULTILINE), out
    assert re.search(r"^right: +\d+/92 = [\d.]+% \(target 96%\)$", out, re.MULTILINE), out


def test_the_independent_answer_sees_a_missed_seed() -> None:
    """The benchmark's answer comes from node types, so it catches what the tracer misses."""
    graph = ApiGraph()
    graph.add("1", "CheckpointLoaderSimple", ckpt_name="x.safetensors")
    graph.add("2", "CLIPTextEncode", text="a fox", clip=["1", 1])
    graph.add("3", "EmptyLatentImage")
    graph.add(
        "4", "KSampler", model=["1", 0], positive=["2", 0], negative=["2", 0], latent_image=["3", 0]
    )
    graph["5"] = {"class_type": "ImageNoiseSeeder", "inputs": {"samples": ["4", 0]}}
    seed = ["INT", {"control_after_generate": True}]
    seeder = {"input": {"required": {"samples": ["LATENT"], "seed": seed}}, "output": ["LATENT"]}
    info = {**object_info(), "ImageNoiseSeeder": seeder}
    graph["5"]["inputs"]["seed"] = 3
    truth = expected(graph, info)
    assert {str(p) for p in truth["seed"]} == {"4.seed", "5.seed"}
    assert {str(p) for p in truth["prompt"]} == {"2.text"}
