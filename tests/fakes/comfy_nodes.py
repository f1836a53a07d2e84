"""What each node class does in the fake ComfyUI: outputs, progress steps, previews, UI output."""

from __future__ import annotations

import dataclasses
import io
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Protocol

from PIL import Image, UnidentifiedImageError

from tests.fakes import comfy_media as media
from tests.fakes.comfy_images import FakeImage, FakeLatent, rgb

_EXEC_FRAMES = (
    '  File "/srv/ComfyUI/execution.py", line 496, in execute\n',
    '  File "/srv/ComfyUI/execution.py", line 315, in get_output_data\n',
    '  File "/srv/ComfyUI/execution.py", line 289, in _async_map_node_over_list\n',
    '  File "/srv/ComfyUI/execution.py", line 277, in process_inputs\n',
)
FAIL_TRACEBACK = [
    *_EXEC_FRAMES,
    '  File "/srv/ComfyUI/custom_nodes/progress_test_nodes.py", line 77, in run\n',
]
LOAD_IMAGE_TRACEBACK = [
    *_EXEC_FRAMES,
    '  File "/srv/ComfyUI/nodes.py", line 1647, in load_image\n',
    '  File "/srv/ComfyUI/node_helpers.py", line 31, in pillow\n',
    '  File "/srv/venv/lib/python3.11/site-packages/PIL/Image.py", line 3730, in open\n',
]
INPUT_DIR = "/srv/ComfyUI/input"


class NodeError(Exception):
    """A node raised while running; becomes an `execution_error` message."""

    def __init__(self, exception_type: str, message: str, traceback: list[str]) -> None:
        super().__init__(message)
        self.exception_type = exception_type
        self.message = message
        self.traceback = traceback


class NodeContext(Protocol):
    """What a running node may use (implemented by the runner)."""

    node_id: str
    class_type: str
    inputs: dict[str, Any]

    async def step(self, value: int, total: int, preview: tuple[str, FakeImage] | None) -> None:
        """Report one progress step, optionally with a preview image."""

    async def text(self, text: str) -> None:
        """Send a binary TEXT frame (broadcast, as the built-in nodes do)."""

    def save(self, kind: str, prefix: str, image: FakeImage) -> list[dict[str, str]]:
        """Write the batch as PNG files of `kind` ("output"/"temp"); return the UI entries."""

    def read_input(self, name: str) -> bytes | None:
        """Return the bytes of an input file named as LoadImage names it, if it exists."""

    def save_file(self, prefix: str, suffix: str, data: bytes) -> dict[str, str]:
        """Write one output file `<prefix>_<counter>_<suffix>`; return its UI entry."""


@dataclass(slots=True)
class NodeResult:
    """What a node produced: its outputs by slot and its UI output (if any)."""

    outputs: tuple[Any, ...] = ()
    ui: dict[str, Any] | None = None


NodeFn = Callable[[NodeContext], Awaitable[NodeResult]]
StepRule = Callable[[Mapping[str, Any], Mapping[str, Any]], int]
"""(node inputs as submitted, whole prompt) -> number of progress steps the node reports."""


def _int(value: Any, default: int) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else default


def _sampler_steps(inputs: Mapping[str, Any], prompt: Mapping[str, Any]) -> int:
    return _int(inputs.get("steps"), 20)


def _advanced_steps(inputs: Mapping[str, Any], prompt: Mapping[str, Any]) -> int:
    steps = _int(inputs.get("steps"), 20)
    end = min(_int(inputs.get("end_at_step"), steps), steps)
    return max(0, end - _int(inputs.get("start_at_step"), 0))


def _custom_steps(inputs: Mapping[str, Any], prompt: Mapping[str, Any]) -> int:
    sigmas = inputs.get("sigmas")
    if isinstance(sigmas, list) and sigmas and sigmas[0] in prompt:
        return _int(prompt[sigmas[0]].get("inputs", {}).get("steps"), 20)
    return 20


DEFAULT_STEP_RULES: Mapping[str, StepRule] = MappingProxyType(
    {
        "KSampler": _sampler_steps,
        "KSamplerAdvanced": _advanced_steps,
        "SamplerCustom": _custom_steps,
        "SamplerCustomAdvanced": _custom_steps,
        "SlowProgress": _sampler_steps,
    }
)


def preview_spec(class_type: str, inputs: Mapping[str, Any]) -> tuple[str | None, int | None]:
    """Return (format, max side) of the per-step preview; max side None = the fake's default."""
    if class_type == "SlowProgress":
        fmt = inputs.get("preview", "JPEG")
        return (fmt if fmt in ("JPEG", "PNG") else None), 64
    return "JPEG", None


def _image(ctx: NodeContext, name: str = "image") -> FakeImage:
    value = ctx.inputs.get(name)
    return value if isinstance(value, FakeImage) else FakeImage(64, 64)


def _latent(ctx: NodeContext, name: str) -> FakeLatent:
    value = ctx.inputs.get(name)
    return value if isinstance(value, FakeLatent) else FakeLatent(512, 512)


async def _empty_image(ctx: NodeContext) -> NodeResult:
    i = ctx.inputs
    color = rgb(_int(i.get("color"), 0))
    return NodeResult((FakeImage(i["width"], i["height"], i["batch_size"], color),))


async def _empty_latent(ctx: NodeContext) -> NodeResult:
    i = ctx.inputs
    return NodeResult((FakeLatent(i["width"], i["height"], i["batch_size"]),))


async def _invert(ctx: NodeContext) -> NodeResult:
    image = _image(ctx)
    color = (255 - image.color[0], 255 - image.color[1], 255 - image.color[2])
    return NodeResult((dataclasses.replace(image, color=color),))


async def _scale(ctx: NodeContext) -> NodeResult:
    image = _image(ctx)
    width, height = _int(ctx.inputs.get("width"), 0), _int(ctx.inputs.get("height"), 0)
    if width == 0 and height == 0:
        return NodeResult((image,))
    width = width or max(1, image.width * height // image.height)
    height = height or max(1, image.height * width // image.width)
    return NodeResult((dataclasses.replace(image, width=width, height=height),))


async def _scale_by(ctx: NodeContext) -> NodeResult:
    image = _image(ctx)
    scale = float(ctx.inputs.get("scale_by", 1.0))
    width, height = max(1, int(image.width * scale)), max(1, int(image.height * scale))
    return NodeResult((dataclasses.replace(image, width=width, height=height),))


async def _load_image(ctx: NodeContext) -> NodeResult:
    name = str(ctx.inputs.get("image"))
    data = ctx.read_input(name)
    path = f"{INPUT_DIR}/{name}"
    if data is None:
        message = f"[Errno 2] No such file or directory: '{path}'\n"
        raise NodeError("FileNotFoundError", message, LOAD_IMAGE_TRACEBACK)
    try:
        with Image.open(io.BytesIO(data)) as opened:
            width, height = opened.size
    except UnidentifiedImageError:
        message = f"cannot identify image file '{path}'\n"
        raise NodeError("PIL.UnidentifiedImageError", message, LOAD_IMAGE_TRACEBACK) from None
    return NodeResult((FakeImage(width, height), None))


async def _sampler(ctx: NodeContext) -> NodeResult:
    return NodeResult((_latent(ctx, "latent_image"),) * 2)


async def _vae_decode(ctx: NodeContext) -> NodeResult:
    return NodeResult((_latent(ctx, "samples").decoded(),))


async def _vae_encode(ctx: NodeContext) -> NodeResult:
    image = _image(ctx, "pixels")
    return NodeResult((FakeLatent(image.width, image.height, image.batch),))


async def _passthrough(ctx: NodeContext) -> NodeResult:
    return NodeResult((_image(ctx),))


async def _fail(ctx: NodeContext) -> NodeResult:
    message = str(ctx.inputs.get("message", "FailNode was asked to fail"))
    raise NodeError("RuntimeError", message + "\n", FAIL_TRACEBACK)


async def _progress_text(ctx: NodeContext) -> NodeResult:
    await ctx.text(str(ctx.inputs.get("text", "")))
    return NodeResult((_image(ctx),))


async def _image_size(ctx: NodeContext) -> NodeResult:
    image = _image(ctx)
    await ctx.text(f"width: {image.width}, height: {image.height}\n batch size: {image.batch}")
    return NodeResult((image.width, image.height, image.batch))


async def _text_output(ctx: NodeContext) -> NodeResult:
    image = _image(ctx)
    shape = f"shape={image.batch}x{image.height}x{image.width}x3"
    return NodeResult(ui={"text": [str(ctx.inputs.get("text", "")), shape]})


async def _save_image(ctx: NodeContext) -> NodeResult:
    prefix = str(ctx.inputs.get("filename_prefix", "ComfyUI"))
    return NodeResult(ui={"images": ctx.save("output", prefix, _image(ctx, "images"))})


async def _preview_image(ctx: NodeContext) -> NodeResult:
    return NodeResult(ui={"images": ctx.save("temp", "ComfyUI", _image(ctx, "images"))})


async def _save_moving(ctx: NodeContext) -> NodeResult:
    """SaveAnimatedWEBP/PNG, SaveWEBM and SaveVideo: `images` (ComfyUI's key) + `animated`."""
    image = _image(ctx, "video" if ctx.class_type == "SaveVideo" else "images")
    suffix, data = media.saved(ctx.class_type, ctx.inputs, image)
    entry = ctx.save_file(str(ctx.inputs.get("filename_prefix", "ComfyUI")), suffix, data)
    return NodeResult(ui={"images": [entry], "animated": [True]})


async def _video_combine(ctx: NodeContext) -> NodeResult:
    """VHS_VideoCombine: its files under `gifs`, with format and frame rate."""
    suffix, data = media.saved(ctx.class_type, ctx.inputs, _image(ctx, "images"))
    entry = ctx.save_file(str(ctx.inputs.get("filename_prefix", "AnimateDiff")), suffix, data)
    extra = {"format": str(ctx.inputs.get("format")), "frame_rate": ctx.inputs.get("frame_rate")}
    return NodeResult(("<VHS_FILENAMES>",), ui={"gifs": [{**entry, **extra}]})


async def _create_video(ctx: NodeContext) -> NodeResult:
    return NodeResult((_image(ctx, "images"),))


async def _save_websocket(ctx: NodeContext) -> NodeResult:
    image = _image(ctx, "images")
    for index in range(image.batch):
        await ctx.step(index, image.batch, ("PNG", image))
    return NodeResult(ui={})


NODE_BEHAVIOURS: Mapping[str, NodeFn] = MappingProxyType(
    {
        "EmptyImage": _empty_image,
        "EmptyLatentImage": _empty_latent,
        "ImageInvert": _invert,
        "ImageScale": _scale,
        "ImageScaleBy": _scale_by,
        "LoadImage": _load_image,
        "KSampler": _sampler,
        "KSamplerAdvanced": _sampler,
        "SamplerCustom": _sampler,
        "SamplerCustomAdvanced": _sampler,
        "VAEDecode": _vae_decode,
        "VAEEncode": _vae_encode,
        "SlowProgress": _passthrough,
        "FailNode": _fail,
        "ProgressTextNode": _progress_text,
        "GetImageSize": _image_size,
        "TextOutput": _text_output,
        "SaveImage": _save_image,
        "PreviewImage": _preview_image,
        "MaskPreview": _preview_image,
        "SaveImageWebsocket": _save_websocket,
        "SaveAnimatedWEBP": _save_moving,
        "SaveAnimatedPNG": _save_moving,
        "SaveWEBM": _save_moving,
        "SaveVideo": _save_moving,
        "CreateVideo": _create_video,
        "VHS_VideoCombine": _video_combine,
    }
)


def generic_outputs(ctx: NodeContext, output_types: list[Any]) -> NodeResult:
    """Outputs of a node class the fake does not model: pass images/latents through."""
    images = [v for v in ctx.inputs.values() if isinstance(v, FakeImage)]
    latents = [v for v in ctx.inputs.values() if isinstance(v, FakeLatent)]
    values: list[Any] = []
    for kind in output_types:
        if kind == "IMAGE":
            values.append(images[0] if images else FakeImage(64, 64))
        elif kind == "LATENT":
            values.append(latents[0] if latents else FakeLatent(512, 512))
        else:
            values.append(f"<{kind}>")
    return NodeResult(tuple(values))
