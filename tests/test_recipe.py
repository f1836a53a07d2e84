"""The recipe card: read back from the graph that ran, rendered within embed limits (pure)."""

from __future__ import annotations

import json
from pathlib import Path

from bot.discord.cards import recipe_embed
from bot.discord.render import FIELD_LIMIT
from bot.jobs.recipe import Recipe, shown_server
from bot.workflows.library import load_workflow
from bot.workflows.loras import with_lora

ROOT = Path(__file__).resolve().parents[1]


def test_the_recipe_comes_from_the_graph_that_ran() -> None:
    workflow = load_workflow(ROOT / "workflows" / "txt2img.json")
    graph = workflow.with_inputs({"prompt": "a fox", "seed": 42, "width": 1344, "height": 768})
    graph = with_lora(graph, "ink.safetensors", 0.7)

    recipe = Recipe.from_graph(workflow, graph, elapsed=12.4, server="http://gpu:8188")

    assert recipe.workflow == "SDXL text to image"
    assert recipe.model == "sd_xl_base_1.0.safetensors"
    assert recipe.loras == (("ink.safetensors", 0.7),)
    assert (recipe.seed, recipe.steps, recipe.cfg, recipe.denoise) == (42, 25, 7.0, 1.0)
    assert recipe.size == (1344, 768)
    assert recipe.sampler == "dpmpp_2m · karras"
    assert recipe.prompt == "a fox"
    assert recipe.negative == "blurry, low quality, watermark, text"
    assert json.loads(recipe.graph_json()) == graph


def test_the_card_shows_every_setting() -> None:
    workflow = load_workflow(ROOT / "workflows" / "txt2img.json")
    graph = workflow.with_inputs({"prompt": "@everyone " + "long " * 400, "seed": 7})
    card = recipe_embed(Recipe.from_graph(workflow, graph, elapsed=75, server="http://gpu:8188"))
    fields = {field.name: field.value for field in card.fields}
    assert fields["Workflow"] == "SDXL text to image"
    assert fields["Model"] == "sd_xl_base_1.0.safetensors"
    assert fields["Seed"] == "7"
    assert fields["Steps"] == "25"
    assert fields["CFG"] == "7"
    assert fields["Size"] == "1024x1024"
    assert fields["Sampler"] == "dpmpp_2m · karras"
    assert fields["Time"] == "1:15"
    assert fields["Server"] == "http://gpu:8188"
    assert fields["Negative"] == "“blurry, low quality, watermark, text”"
    assert "@\u200beveryone" in fields["Prompt"]
    assert all(len(field.value) <= FIELD_LIMIT for field in card.fields)
    assert "workflow_api.json" in card.description


def test_a_model_free_workflow_has_a_short_recipe() -> None:
    workflow = load_workflow(ROOT / "workflows" / "demo.json")
    card = recipe_embed(Recipe.from_graph(workflow, dict(workflow.graph)))
    assert [field.name for field in card.fields] == ["Workflow", "Prompt"]
    assert card.fields[1].value == "(none)"


def test_the_server_is_shown_without_credentials() -> None:
    assert (
        shown_server("http://admin:hunter2@gpu-box:8188/comfy") == "http://***@gpu-box:8188/comfy"
    )
    assert shown_server("https://[::1]:8443") == "https://[::1]:8443"
    assert shown_server(None) is None
    workflow = load_workflow(ROOT / "workflows" / "demo.json")
    recipe = Recipe.from_graph(workflow, dict(workflow.graph), server="http://u:secret@h:1")
    assert recipe.server == "http://***@h:1"
    assert "secret" not in repr(recipe_embed(recipe))


def test_the_card_of_one_copy_says_so() -> None:
    workflow = load_workflow(ROOT / "workflows" / "demo.json")
    recipe = Recipe.from_graph(workflow, dict(workflow.graph))
    assert "one of several copies" in recipe_embed(recipe, is_one_copy=True).description
    assert recipe_embed(recipe).description.startswith("The graph that ran is attached")
