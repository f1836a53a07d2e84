"""Detection across the families users run, on graphs built from the real node definitions."""

from __future__ import annotations

from typing import Any

import pytest

from bot.workflows.detect import detect_points
from bot.workflows.validate import validate
from tests.graphs import ApiGraph, object_info


def found(graph: dict[str, Any], *keys: str) -> dict[str, list[str]]:
    points = detect_points(graph)
    return {key: [str(p) for p in points[key]] for key in keys}


def assert_real(graph: dict[str, Any]) -> None:
    """The graph would be accepted by the recorded server, model files aside."""
    problems = [p for p in validate(graph, object_info()) if p.kind != "model_missing"]
    assert problems == []


def assert_finds(graph: dict[str, Any], *, real: bool = True, **expected: list[str]) -> None:
    """Detection finds exactly `expected` for each kind named (after `assert_real`, if `real`)."""
    if real:
        assert_real(graph)
    assert found(graph, *expected) == expected


def sdxl_base(graph: ApiGraph, latent: str = "5") -> ApiGraph:
    graph.add("4", "CheckpointLoaderSimple", ckpt_name="sd_xl_base_1.0.safetensors")
    graph.add("6", "CLIPTextEncode", text="a fox", clip=["4", 1])
    graph.add("7", "CLIPTextEncode", text="blurry", clip=["4", 1])
    graph.add("5", "EmptyLatentImage", width=1024, height=1024)
    graph.add(
        "3", "KSampler", seed=1, model=["4", 0], positive=["6", 0], negative=["7", 0],
        latent_image=[latent, 0],
    )  # fmt: skip
    graph.add("8", "VAEDecode", samples=["3", 0], vae=["4", 2])
    return graph


def test_hires_fix_patches_the_seed_of_both_samplers() -> None:
    graph = sdxl_base(ApiGraph())
    graph.add("10", "LatentUpscale", samples=["3", 0], width=1536, height=1536)
    graph.add(
        "11", "KSampler", seed=2, denoise=0.5, model=["4", 0], positive=["6", 0],
        negative=["7", 0], latent_image=["10", 0],
    )  # fmt: skip
    graph.add("12", "VAEDecode", samples=["11", 0], vae=["4", 2])
    graph.add("13", "SaveImage", images=["12", 0])
    assert_finds(
        graph, seed=["3.seed", "11.seed"], width=["5.width"], prompt=["6.text"], negative=["7.text"]
    )


def test_img2img_after_txt2img_patches_both_seeds_and_both_prompts() -> None:
    graph = sdxl_base(ApiGraph())
    graph.add("20", "VAEEncode", pixels=["8", 0], vae=["4", 2])
    graph.add("21", "CLIPTextEncode", text="the same fox, oil painting", clip=["4", 1])
    graph.add(
        "22", "KSampler", seed=9, denoise=0.6, model=["4", 0], positive=["21", 0],
        negative=["7", 0], latent_image=["20", 0],
    )  # fmt: skip
    graph.add("23", "VAEDecode", samples=["22", 0], vae=["4", 2])
    graph.add("24", "SaveImage", images=["23", 0])
    assert_finds(graph, seed=["3.seed", "22.seed"], prompt=["6.text", "21.text"])


def test_sdxl_refiner_keeps_the_refiner_seed_that_adds_no_noise() -> None:
    graph = ApiGraph()
    graph.add("1", "CheckpointLoaderSimple", ckpt_name="base.safetensors")
    graph.add("2", "CheckpointLoaderSimple", ckpt_name="refiner.safetensors")
    graph.add("3", "CLIPTextEncodeSDXL", text_g="a fox", text_l="a fox", clip=["1", 1])
    graph.add("4", "CLIPTextEncode", text="blurry", clip=["1", 1])
    graph.add("5", "CLIPTextEncodeSDXLRefiner", text="a fox", clip=["2", 1])
    graph.add("6", "CLIPTextEncodeSDXLRefiner", text="blurry", clip=["2", 1])
    graph.add("7", "EmptyLatentImage", width=1024, height=1024)
    graph.add(
        "41:45", "KSamplerAdvanced", add_noise="enable", noise_seed=5, end_at_step=20,
        return_with_leftover_noise="enable", model=["1", 0], positive=["3", 0],
        negative=["4", 0], latent_image=["7", 0],
    )  # fmt: skip
    graph.add(
        "41:46", "KSamplerAdvanced", add_noise="disable", noise_seed=0, start_at_step=20,
        model=["2", 0], positive=["5", 0], negative=["6", 0], latent_image=["41:45", 0],
    )  # fmt: skip
    graph.add("8", "VAEDecode", samples=["41:46", 0], vae=["2", 2])
    graph.add("save_image_websocket_node", "SaveImage", images=["8", 0])
    assert_finds(
        graph,
        seed=["41:45.noise_seed"],
        prompt=["3.text_g", "3.text_l", "5.text"],
        negative=["4.text", "6.text"],
        width=["7.width"],
    )


def flux(graph: ApiGraph) -> ApiGraph:
    graph.add("1", "UNETLoader", unet_name="flux1-dev.safetensors", weight_dtype="default")
    graph.add(
        "2",
        "DualCLIPLoader",
        clip_name1="t5xxl.safetensors",
        clip_name2="clip_l.safetensors",
        type="flux",
    )
    graph.add("3", "CLIPTextEncodeFlux", clip_l="a fox", t5xxl="a red fox in snow", clip=["2", 0])
    graph.add("4", "FluxGuidance", conditioning=["3", 0])
    graph.add("5", "BasicGuider", model=["1", 0], conditioning=["4", 0])
    graph.add("6", "RandomNoise", noise_seed=77)
    graph.add("7", "KSamplerSelect")
    graph.add("8", "BasicScheduler", model=["1", 0], steps=28)
    graph.add("9", "EmptySD3LatentImage", width=1024, height=768)
    graph.add(
        "10",
        "SamplerCustomAdvanced",
        noise=["6", 0],
        guider=["5", 0],
        sampler=["7", 0],
        sigmas=["8", 0],
        latent_image=["9", 0],
    )
    return graph


def test_flux_prompt_in_both_text_widgets_seed_in_random_noise() -> None:
    graph = flux(ApiGraph())
    assert_finds(
        graph,
        prompt=["3.clip_l", "3.t5xxl"],
        negative=[],
        seed=["6.noise_seed"],
        steps=["8.steps"],
        height=["9.height"],
    )


def test_sd3_encoder_with_three_widgets_and_zero_out_negative() -> None:
    graph = ApiGraph()
    graph.add("1", "CheckpointLoaderSimple", ckpt_name="sd3.5_large.safetensors")
    graph.add(
        "2", "CLIPTextEncodeSD3", clip_g="a fox", clip_l="a fox", t5xxl="a fox", clip=["1", 1]
    )
    graph.add("3", "ConditioningSetTimestepRange", conditioning=["2", 0], start=0.0, end=0.1)
    graph.add("4", "ConditioningZeroOut", conditioning=["2", 0])
    graph.add("5", "ConditioningSetArea", conditioning=["3", 0], width=512, height=512)
    graph.add("6", "ConditioningCombine", conditioning_1=["4", 0], conditioning_2=["5", 0])
    graph.add("7", "EmptySD3LatentImage")
    graph.add(
        "8", "KSampler", model=["1", 0], positive=["2", 0], negative=["6", 0], latent_image=["7", 0]
    )
    assert_finds(graph, prompt=["2.clip_l", "2.clip_g", "2.t5xxl"], negative=[], seed=["8.seed"])


def test_controlnet_apply_and_concat_are_followed_on_each_side() -> None:
    graph = sdxl_base(ApiGraph(), latent="5")
    graph.add("30", "ControlNetLoader", control_net_name="canny.safetensors")
    graph.add("31", "LoadImage", image="edges.png")
    graph.add("32", "LoadImageMask", image="mask.png")
    graph.add("33", "CLIPTextEncode", text="watercolour", clip=["4", 1])
    graph.add("34", "ConditioningConcat", conditioning_to=["6", 0], conditioning_from=["33", 0])
    graph.add(
        "35", "ControlNetApply", conditioning=["34", 0], control_net=["30", 0], image=["31", 0]
    )
    graph.add(
        "36",
        "ControlNetApplyAdvanced",
        positive=["35", 0],
        negative=["7", 0],
        control_net=["30", 0],
        image=["31", 0],
    )
    graph["3"]["inputs"]["positive"] = ["36", 0]
    graph["3"]["inputs"]["negative"] = ["36", 1]
    graph.add("37", "SetLatentNoiseMask", samples=["5", 0], mask=["32", 0])
    assert_finds(
        graph, prompt=["6.text", "33.text"], negative=["7.text"], image=["31.image", "32.image"]
    )


def test_prompt_from_core_and_custom_string_nodes_and_concatenation() -> None:
    graph = sdxl_base(ApiGraph())
    graph.add("40", "PrimitiveStringMultiline", value="a fox")
    graph.add("41", "StringConcatenate", string_a=["40", 0], string_b="masterpiece", delimiter=", ")
    graph["6"]["inputs"]["text"] = ["41", 0]
    # A custom text node the server does not know: followed by its link, its STRING patched.
    graph["42"] = {"class_type": "Text Multiline", "inputs": {"text": "lowres, blurry"}}
    graph["7"]["inputs"]["text"] = ["42", 0]
    assert_finds(graph, real=False, prompt=["40.value"], negative=["42.text"])


def test_custom_sampler_known_by_the_types_of_its_inputs() -> None:
    graph = flux(ApiGraph())
    graph["11"] = {
        "class_type": "XlabsSampler",
        "inputs": {
            "model": ["1", 0], "conditioning": ["3", 0], "neg_conditioning": ["12", 0],
            "noise_seed": 123, "steps": 25, "timestep_to_start_cfg": 1, "true_gs": 3.5,
            "image_to_image_strength": 0, "denoise_strength": 1.0, "latent_image": ["9", 0],
        },
    }  # fmt: skip
    graph.add("12", "CLIPTextEncodeFlux", clip_l="blurry", t5xxl="blurry", clip=["2", 0])
    del graph["10"], graph["5"], graph["6"], graph["8"], graph["7"], graph["4"]
    assert_finds(
        graph,
        real=False,
        prompt=["3.clip_l", "3.t5xxl"],
        negative=["12.clip_l", "12.t5xxl"],
        seed=["11.noise_seed"],
        width=["9.width"],
    )


def test_txt2img_to_video_patches_image_and_video_seeds() -> None:
    graph = sdxl_base(ApiGraph())
    graph.add("50", "CLIPTextEncode", text="the fox runs", clip=["4", 1])
    graph.add(
        "51",
        "WanImageToVideo",
        positive=["50", 0],
        negative=["7", 0],
        vae=["4", 2],
        start_image=["8", 0],
        width=832,
        height=480,
    )
    graph.add(
        "52",
        "KSampler",
        seed=3,
        model=["4", 0],
        positive=["51", 0],
        negative=["51", 1],
        latent_image=["51", 2],
    )
    graph.add("53", "VAEDecode", samples=["52", 0], vae=["4", 2])
    graph.add("54", "CreateVideo", images=["53", 0])
    graph.add("55", "SaveVideo", video=["54", 0])
    assert_finds(
        graph,
        seed=["3.seed", "52.seed"],
        prompt=["6.text", "50.text"],
        negative=["7.text"],
        width=["5.width"],
    )


def test_ltxv_video_latent_size_and_sampler_custom_seed() -> None:
    graph = ApiGraph()
    graph.add("1", "CheckpointLoaderSimple", ckpt_name="ltx-video-2b.safetensors")
    graph.add("2", "CLIPTextEncode", text="waves at dusk", clip=["1", 1])
    graph.add("3", "CLIPTextEncode", text="worst quality", clip=["1", 1])
    graph.add("4", "LTXVConditioning", positive=["2", 0], negative=["3", 0])
    graph.add("5", "EmptyLTXVLatentVideo", width=768, height=512)
    graph.add("6", "KSamplerSelect")
    graph.add("7", "LTXVScheduler", latent=["5", 0])
    graph.add(
        "8", "SamplerCustom", noise_seed=11, model=["1", 0], positive=["4", 0],
        negative=["4", 1], sampler=["6", 0], sigmas=["7", 0], latent_image=["5", 0],
    )  # fmt: skip
    graph.add("9", "VAEDecode", samples=["8", 0], vae=["1", 2])
    graph.add("10", "SaveAnimatedWEBP", images=["9", 0])
    assert_finds(
        graph,
        prompt=["2.text"],
        negative=["3.text"],
        seed=["8.noise_seed"],
        width=["5.width"],
        height=["5.height"],
    )


@pytest.mark.parametrize("add_noise", [False, True])
def test_sampler_custom_seed_only_where_it_adds_noise(add_noise: bool) -> None:
    graph = flux(ApiGraph())
    graph.add(
        "11",
        "SamplerCustom",
        add_noise=add_noise,
        noise_seed=4,
        model=["1", 0],
        positive=["3", 0],
        negative=["3", 0],
        sampler=["7", 0],
        sigmas=["8", 0],
        latent_image=["10", 0],
    )
    expected = ["6.noise_seed", "11.noise_seed"] if add_noise else ["6.noise_seed"]
    assert_finds(graph, real=False, seed=expected)


def test_custom_nodes_with_their_own_names_are_read_by_type_given_object_info() -> None:
    graph = ApiGraph()
    graph.add("1", "CheckpointLoaderSimple", ckpt_name="x.safetensors")
    graph.add("5", "EmptyLatentImage")
    graph["2"] = {"class_type": "PackEncoder", "inputs": {"words": "a fox", "clip": ["1", 1]}}
    graph["3"] = {"class_type": "PackEncoder", "inputs": {"words": "blurry", "clip": ["1", 1]}}
    graph["4"] = {
        "class_type": "PackSampler",
        "inputs": {"model": ["1", 0], "good": ["2", 0], "neg": ["3", 0], "noise": 8,
                   "latent": ["5", 0]},
    }  # fmt: skip
    info = {
        **object_info(),
        "PackEncoder": {
            "input": {"required": {"clip": ["CLIP"], "words": ["STRING", {"multiline": True}]}},
            "output": ["CONDITIONING"],
        },
        "PackSampler": {
            "input": {"required": {
                "model": ["MODEL"], "good": ["CONDITIONING"], "neg": ["CONDITIONING"],
                "noise": ["INT", {"control_after_generate": True}], "latent": ["LATENT"],
            }},
            "output": ["LATENT"],
        },
    }  # fmt: skip
    assert_finds(graph, real=False, prompt=[], negative=[], seed=[])
    typed = {key: [str(p) for p in v] for key, v in detect_points(graph, info).items() if v}
    assert typed["prompt"] == ["2.words"]
    assert typed["negative"] == ["3.words"]
    assert typed["seed"] == ["4.noise"]
    assert typed["width"] == ["5.width"]


# Shapes seen in API workflows people publish, rebuilt here from their node definitions.


def test_prompt_styler_with_two_text_outputs_and_efficient_samplers() -> None:
    graph = ApiGraph()
    graph.add("4", "CLIPLoader", clip_name="model.safetensors", type="stable_cascade")
    graph["8"] = {
        "class_type": "SDXLPromptStyler",  # outputs text_positive, text_negative
        "inputs": {"text_positive": "a frog knight", "text_negative": "ugly",
                   "style": "artstyle-hyperrealism", "log_prompt": False},
    }  # fmt: skip
    graph.add("9", "CLIPTextEncode", text=["8", 0], clip=["4", 0])
    graph.add("10", "CLIPTextEncode", text=["8", 1], clip=["4", 0])
    graph.add("17", "ConditioningZeroOut", conditioning=["9", 0])
    graph.add("23", "StableCascade_EmptyLatentImage", width=1280, height=1280)
    efficient = {"steps": 20, "cfg": 4, "sampler_name": "euler", "scheduler": "normal",
                 "denoise": 1, "preview_method": "auto", "vae_decode": "true"}  # fmt: skip
    graph["20"] = {
        "class_type": "KSampler (Efficient)",
        "inputs": {**efficient, "seed": -1, "model": ["25", 0], "positive": ["9", 0],
                   "negative": ["10", 0], "latent_image": ["23", 0]},
    }  # fmt: skip
    graph.add("12", "StableCascade_StageB_Conditioning", conditioning=["17", 0], stage_c=["20", 3])
    graph["21"] = {
        "class_type": "KSampler (Efficient)",
        "inputs": {**efficient, "seed": -1, "model": ["1", 0], "positive": ["12", 0],
                   "negative": ["17", 0], "latent_image": ["23", 1]},
    }  # fmt: skip
    assert_finds(
        graph,
        real=False,
        prompt=["8.text_positive"],
        negative=["8.text_negative"],
        seed=["20.seed", "21.seed"],
        width=["23.width"],
    )


def test_wan22_pairs_of_high_and_low_noise_conditioning() -> None:
    graph = ApiGraph()
    graph.add("3", "CLIPLoader", clip_name="umt5.safetensors", type="wan")
    graph.add("5", "LoadImage", image="input.png")
    graph.add("7", "CLIPTextEncode", text="a cinematic clip", clip=["3", 0])
    graph.add("8", "CLIPTextEncode", text="static, blurry", clip=["3", 0])
    graph["15"] = {  # a custom image-to-video node: positive/negative for high, then for low
        "class_type": "PainterI2VAdvanced",
        "inputs": {"positive": ["7", 0], "negative": ["8", 0], "start_image": ["5", 0],
                   "width": 832, "height": 480, "length": 81, "batch_size": 1},
    }  # fmt: skip
    advanced = {"cfg": 1, "steps": 8, "sampler_name": "euler", "scheduler": "simple"}
    graph.add(
        "16", "KSamplerAdvanced", **advanced, add_noise="enable", noise_seed=7, end_at_step=4,
        model=["1", 0], positive=["15", 0], negative=["15", 1], latent_image=["15", 4],
    )  # fmt: skip
    graph.add(
        "18", "KSamplerAdvanced", **advanced, add_noise="disable", noise_seed=7, start_at_step=4,
        model=["2", 0], positive=["15", 2], negative=["15", 3], latent_image=["16", 0],
    )  # fmt: skip
    assert_finds(
        graph,
        real=False,
        prompt=["7.text"],
        negative=["8.text"],
        seed=["16.noise_seed"],
        image=["5.image"],
    )


def test_detailers_are_samplers_and_their_seeds_change_too() -> None:
    graph = sdxl_base(ApiGraph())
    graph["40"] = {
        "class_type": "DetailerForEach",
        "inputs": {"image": ["8", 0], "model": ["4", 0], "clip": ["4", 1], "vae": ["4", 2],
                   "seed": 987, "steps": 12, "positive": ["6", 0], "negative": ["7", 0],
                   "denoise": 0.4, "wildcard": "detailed hands"},
    }  # fmt: skip
    assert_finds(
        graph, real=False, seed=["3.seed", "40.seed"], prompt=["6.text"], negative=["7.text"]
    )


def test_a_switch_is_followed_to_the_input_that_gives_text() -> None:
    graph = sdxl_base(ApiGraph())
    graph.add("60", "PrimitiveBoolean", value=False)
    graph.add("61", "PrimitiveStringMultiline", value="a fox at dawn")
    graph["62"] = {
        "class_type": "LazySwitchKJ",
        "inputs": {"switch": ["60", 0], "on_false": ["61", 0], "on_true": ["61", 0]},
    }
    graph["6"]["inputs"]["text"] = ["62", 0]
    assert_finds(graph, real=False, prompt=["61.value"])


def test_a_loader_that_encodes_its_own_prompts_and_makes_the_latent() -> None:
    graph: dict[str, Any] = {
        "1": {
            "class_type": "Efficient Loader",  # outputs MODEL, CONDITIONING+, CONDITIONING-, LATENT
            "inputs": {"ckpt_name": "dreamshaper.safetensors", "vae_name": "Baked VAE",
                       "positive": "a lighthouse in a storm", "negative": "ugly, disfigured",
                       "empty_latent_width": 768, "empty_latent_height": 512, "batch_size": 2},
        },
        "2": {
            "class_type": "KSampler (Efficient)",
            "inputs": {"seed": 185, "steps": 20, "cfg": 7, "model": ["1", 0],
                       "positive": ["1", 1], "negative": ["1", 2], "latent_image": ["1", 3]},
        },
    }  # fmt: skip
    assert_finds(
        graph,
        real=False,
        prompt=["1.positive"],
        negative=["1.negative"],
        seed=["2.seed"],
        width=["1.empty_latent_width"],
        height=["1.empty_latent_height"],
        batch_size=["1.batch_size"],
    )
