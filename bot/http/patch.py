"""What an HTTP client has set on the served workflow: an immutable PatchState, swapped whole."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any

from bot.http.errors import BadRequest, MissingImage, NoImageInput, NoPromptInput, UnknownNode
from bot.images import ImageFile
from bot.jobs.model import REQUEST_VALUES, GenerationRequest
from bot.workflows.library import KEYS, Workflow, WorkflowInputError

_SHOWN_NODES = 20
# A file name in ComfyUI's input folder: no separators, no " [output]" annotation, no ".." tricks.
_PLAIN_NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9 ._()-]{0,199}")


@dataclass(frozen=True, slots=True)
class PatchState:
    """The served workflow plus what clients set on it; every change returns a new state.

    `values` are workflow keys (prompt, seed, ...), `images` one slot per LoadImage point,
    `overrides` explicit `(node_id, input)` values. A new state is checked by building its
    graph before it replaces the old one, so a bad change never leaves a half-patched state.
    """

    workflow: Workflow
    values: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    images: tuple[ImageFile | None, ...] = ()
    overrides: Mapping[tuple[str, str], Any] = field(default_factory=lambda: MappingProxyType({}))

    @classmethod
    def initial(cls, workflow: Workflow) -> PatchState:
        """Return the workflow as exported: nothing set, no image uploaded."""
        return cls(workflow, images=(None,) * workflow.image_inputs)

    def with_image(self, index: int, image: ImageFile) -> PatchState:
        """Return a state with `image` in image input `index` (0-based).

        Raises:
            NoImageInput: the workflow has no such image input.
        """
        count = len(self.images)
        if count == 0:
            raise NoImageInput(f"Workflow {self.workflow.name!r} has no image input (LoadImage).")
        if not 0 <= index < count:
            raise NoImageInput(
                f"Workflow {self.workflow.name!r} has {count} image input"
                f"{'s' if count != 1 else ''}; input must be between 0 and {count - 1}."
            )
        images = list(self.images)
        images[index] = image
        return replace(self, images=tuple(images))

    def with_changes(self, body: object) -> PatchState:
        """Return a state with an `/update/prompt` body applied, checked against the workflow.

        Raises:
            BadRequest: the body is not an object of the documented shape.
            UnknownNode: `node_id` names no node of the workflow.
            WorkflowInputError: a value has no place in the workflow or is out of range.
        """
        if not isinstance(body, Mapping) or not body:
            raise BadRequest('Send a JSON object such as {"text": "a red fox"} or {"seed": 5}.')
        changes = dict(body)
        values, overrides = dict(self.values), dict(self.overrides)
        if "node_id" in changes:
            key, value = self._node_change(changes)
            self._check_file_name(key, value)
            _set(overrides, key, value)
        elif {"input", "value"} & changes.keys():
            raise BadRequest('"input" and "value" need a "node_id".')
        elif "text" in changes:
            if "prompt" in changes:
                raise BadRequest('Give the prompt as "text" or as "prompt", not both.')
            changes["prompt"] = changes.pop("text")
        if "image" in changes:
            raise WorkflowInputError("Upload input images with POST /upload/image.")
        if changes.get("prompt") is not None and not self.workflow.has("prompt"):
            raise NoPromptInput(
                f"Workflow {self.workflow.name!r} has no prompt text input; "
                'set a node\'s text with {"node_id": ..., "text": ...}.'
            )
        for name, value in changes.items():
            _set(values, name, value)
        state = replace(
            self, values=MappingProxyType(values), overrides=MappingProxyType(overrides)
        )
        state.graph()
        return state

    def _node_change(self, changes: dict[str, Any]) -> tuple[tuple[str, str], Any]:
        raw_node = changes.pop("node_id")
        if isinstance(raw_node, bool) or not isinstance(raw_node, str | int):
            raise BadRequest('"node_id" must be a node id such as "6".')
        node_id = str(raw_node)
        if node_id not in self.workflow.graph:
            nodes = list(self.workflow.graph)
            shown = ", ".join(nodes[:_SHOWN_NODES]) + (", ..." if len(nodes) > _SHOWN_NODES else "")
            raise UnknownNode(
                f"Workflow {self.workflow.name!r} has no node {node_id!r}; its nodes are {shown}."
            )
        input_name = changes.pop("input", "text")
        if not isinstance(input_name, str):
            raise BadRequest('"input" must be the name of one of the node\'s inputs.')
        if "text" in changes and "value" in changes:
            raise BadRequest('Give "text" or "value" with a node_id, not both.')
        if "text" in changes:
            text = changes.pop("text")
            if text is not None and not isinstance(text, str):
                raise WorkflowInputError('"text" must be a string.')
            return (node_id, input_name), text
        if "value" in changes:
            return (node_id, input_name), changes.pop("value")
        raise BadRequest('With "node_id", also give "text" (or "input" and "value").')

    def _check_file_name(self, key: tuple[str, str], value: object) -> None:
        """Refuse pointing an image loader at anything but a plain name in ComfyUI's input folder.

        ComfyUI resolves `name [output]` and `sub/name` itself: other users' outputs (named in
        sequence, so easy to guess) would be one override away.

        Raises:
            WorkflowInputError: the value is not a plain file name.
        """
        node_id, input_name = key
        node_class = str(self.workflow.graph[node_id].get("class_type", ""))
        is_image_point = any(
            (p.node_id, p.input_name) == key for p in self.workflow.points.get("image", ())
        )
        if value is None or not (is_image_point or node_class.startswith("LoadImage")):
            return
        if not isinstance(value, str) or not _PLAIN_NAME.fullmatch(value):
            raise WorkflowInputError(
                f"Node {node_id} ({node_class}) input {input_name!r} may only name a file uploaded"
                f" with POST /upload/image (no folders, no [output] or [temp]), not {value!r:.80}."
            )

    def graph(self) -> dict[str, Any]:
        """Return the graph this state queues (uploaded images named by their file names).

        Raises:
            WorkflowInputError: a value does not fit the workflow.
        """
        names = [image.filename for image in self._uploads()]
        return self.workflow.with_inputs(self.values, images=names, overrides=self.overrides)

    def _uploads(self) -> list[ImageFile]:
        """Return the uploaded images in input order, up to the first empty slot."""
        uploads: list[ImageFile] = []
        for image in self.images:
            if image is None:
                break
            uploads.append(image)
        return uploads

    def request(self, requester: str, workflow_ref: str) -> GenerationRequest:
        """Return the GenerationRequest that runs this state.

        Every patch point of a value set here is pinned as an override taken from the checked
        graph, so keys without a GenerationRequest field (cfg, denoise, ...) and the exported
        prompt text survive; the seed is pinned only when set, else JobQueue picks one.

        Raises:
            MissingImage: an image input is empty while a later one has an upload.
            WorkflowInputError: a value does not fit the workflow.
        """
        uploads = self._uploads()
        if any(image is not None for image in self.images[len(uploads) :]):
            point = self.workflow.points["image"][len(uploads)]
            raise MissingImage(
                f"Image input {len(uploads)} (node {point.node_id}) has no upload yet; "
                "images fill the workflow's image inputs in order."
            )
        graph = self.graph()
        pinned = {
            (point.node_id, point.input_name): graph[point.node_id]["inputs"][point.input_name]
            for key in KEYS
            if key != "image" and key != "seed" and (key in self.values or key == "prompt")
            for point in self.workflow.points.get(key, ())
        }
        # Every other key travels as overrides on its points (pinned above).
        fields = {key: self.values[key] for key in REQUEST_VALUES if key in self.values}
        return GenerationRequest(
            requester=requester,
            workflow=workflow_ref,
            **fields,
            images=tuple(uploads),
            overrides=MappingProxyType({**pinned, **self.overrides}),
            origin={"front_door": "http"},
        )

    def describe(self) -> dict[str, Any]:
        """Return this state as JSON for GET /workflow."""
        image_points = self.workflow.points.get("image", ())
        return {
            "workflow": {
                "name": self.workflow.name,
                "display_name": self.workflow.display_name,
                "description": self.workflow.description,
            },
            "values": dict(self.values),
            "images": [
                {
                    "input": index,
                    "node_id": point.node_id,
                    "filename": image.filename if image else None,
                    "size": len(image.data) if image else None,
                    "content_type": image.content_type if image else None,
                }
                for index, (point, image) in enumerate(zip(image_points, self.images, strict=True))
            ],
            "overrides": [
                {"node_id": node_id, "input": input_name, "value": value}
                for (node_id, input_name), value in self.overrides.items()
            ],
            "points": {
                key: [str(point) for point in points]
                for key, points in self.workflow.points.items()
                if points
            },
            "graph": self.graph(),
        }


def _set(target: dict[Any, Any], key: Any, value: Any) -> None:
    """Set a value; JSON null resets it to the workflow's own."""
    if value is None:
        target.pop(key, None)
    else:
        target[key] = value
