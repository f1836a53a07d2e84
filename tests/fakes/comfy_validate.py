"""POST /prompt validation, mirroring ComfyUI's validate_prompt / validate_inputs error shapes."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tests.fakes.comfy_catalog import Catalog

INNER_TRACEBACK = [
    '  File "/srv/ComfyUI/execution.py", line 808, in validate_inputs\n',
    '  File "/srv/ComfyUI/execution.py", line 788, in validate_inputs\n',
]
# Classes with a VALIDATE_INPUTS(image) that checks the file exists (and skips the combo check).
_IMAGE_FILE_CLASSES = ("LoadImage", "LoadImageMask")
_CONVERTERS: dict[str, Callable[[Any], Any]] = {
    "INT": int,
    "FLOAT": float,
    "STRING": str,
    "BOOLEAN": bool,
}
Reasons = list[dict[str, Any]]


@dataclass(slots=True)
class Validation:
    """The outcome: `error` is None when at least one output validated."""

    error: dict[str, Any] | None
    outputs: list[str] = field(default_factory=list)
    node_errors: dict[str, Any] = field(default_factory=dict)


def _error(kind: str, message: str, details: str, **extra: Any) -> dict[str, Any]:
    return {"type": kind, "message": message, "details": details, "extra_info": extra}


def is_link(value: Any) -> bool:
    """Tell whether an input value is a link `[node_id, output_index]` (ComfyUI's is_link)."""
    return (
        isinstance(value, list)
        and len(value) == 2
        and isinstance(value[0], str)
        and isinstance(value[1], int | float)
    )


def _types_match(received: Any, wanted: Any) -> bool:
    if received == "*" or wanted == "*" or received == wanted:
        return True
    if not isinstance(received, str) or not isinstance(wanted, str):
        return isinstance(wanted, list) or wanted == "COMBO"
    return bool({t.strip() for t in received.split(",")} & {t.strip() for t in wanted.split(",")})


def validate_prompt(
    prompt: dict[str, Any],
    catalog: Catalog,
    file_exists: Callable[[str], bool],
    targets: list[str] | None = None,
) -> Validation:
    """Validate a prompt; converts widget values in place, as ComfyUI does."""
    outputs = []
    for node_id in prompt:
        if "class_type" not in prompt[node_id]:
            msg = "Cannot execute because a node is missing the class_type property."
            return Validation(_error("invalid_prompt", msg, f"Node ID '#{node_id}'"))
        class_type = prompt[node_id]["class_type"]
        if class_type not in catalog.classes:
            msg = f"Cannot execute because node {class_type} does not exist."
            return Validation(_error("invalid_prompt", msg, f"Node ID '#{node_id}'"))
        if catalog.is_output(class_type) and (targets is None or node_id in targets):
            outputs.append(node_id)
    if not outputs:
        return Validation(_error("prompt_no_outputs", "Prompt has no outputs", ""))
    return _Validator(prompt, catalog, file_exists).run(outputs)


class _Validator:
    def __init__(
        self, prompt: dict[str, Any], catalog: Catalog, file_exists: Callable[[str], bool]
    ) -> None:
        self.prompt = prompt
        self.catalog = catalog
        self.file_exists = file_exists
        self.validated: dict[str, tuple[bool, Reasons]] = {}

    def run(self, outputs: list[str]) -> Validation:
        good: list[str] = []
        failures: list[Reasons] = []
        node_errors: dict[str, Any] = {}
        for output in outputs:
            try:
                valid, reasons = self.node(output)
            except Exception as exc:
                reasons = [
                    _error(
                        "exception_during_validation",
                        "Exception when validating node",
                        str(exc),
                        exception_type=type(exc).__name__,
                        traceback=INNER_TRACEBACK[:1],
                    )
                ]
                valid = False
                self.validated[output] = (False, reasons)
            if valid:
                good.append(output)
                continue
            failures.append(reasons)
            for node_id, (node_valid, node_reasons) in self.validated.items():
                if node_valid or not node_reasons:
                    continue
                entry = node_errors.setdefault(
                    node_id,
                    {
                        "errors": node_reasons,
                        "dependent_outputs": [],
                        "class_type": self.prompt[node_id]["class_type"],
                    },
                )
                entry["dependent_outputs"].append(output)
        if good:
            return Validation(None, good, node_errors)
        details = "\n".join(f"{r['message']}: {r['details']}" for rs in failures for r in rs)
        msg = "Prompt outputs failed validation"
        return Validation(_error("prompt_outputs_failed_validation", msg, details), [], node_errors)

    def node(self, node_id: str) -> tuple[bool, Reasons]:
        if node_id in self.validated:
            return self.validated[node_id]
        node = self.prompt[node_id]
        inputs = node["inputs"]
        spec = self.catalog.classes[node["class_type"]]["input"]
        custom = node["class_type"] in _IMAGE_FILE_CLASSES
        errors: Reasons = []
        valid = True
        for category in ("required", "optional"):
            for name, config in spec.get(category, {}).items():
                if name not in inputs:
                    if category == "required":
                        error = _error(
                            "required_input_missing",
                            "Required input is missing",
                            name,
                            input_name=name,
                        )
                        errors.append(error)
                    continue
                info = [config[0], config[1] if len(config) > 1 else {}]
                if isinstance(inputs[name], list):
                    valid = self._link(name, inputs[name], info, errors) and valid
                elif not (custom and name == "image"):
                    self._value(inputs, name, info, errors)
        if (
            custom
            and isinstance(inputs.get("image"), str)
            and not self.file_exists(inputs["image"])
        ):
            details = f"image - Invalid image file: {inputs['image']}"
            errors.append(
                _error(
                    "custom_validation_failed",
                    "Custom validation failed for node",
                    details,
                    input_name="image",
                )
            )
        result = (not errors and valid, errors)
        self.validated[node_id] = result
        return result

    def _link(self, name: str, value: list[Any], info: list[Any], errors: Reasons) -> bool:
        if len(value) != 2:
            msg = "Bad linked input, must be a length-2 list of [node_id, slot_index]"
            errors.append(
                _error(
                    "bad_linked_input",
                    msg,
                    name,
                    input_name=name,
                    input_config=info,
                    received_value=value,
                )
            )
            return True
        # Deliberately outside the try: a missing linked node raises into the caller's
        # validation, which is how ComfyUI ends up blaming the node that holds the bad link.
        source_id = value[0]
        received = self.catalog.outputs(self.prompt[source_id]["class_type"])[value[1]]
        if not _types_match(received, info[0]):
            details = f"{name}, received_type({received}) mismatch input_type({info[0]})"
            errors.append(
                _error(
                    "return_type_mismatch",
                    "Return type mismatch between linked nodes",
                    details,
                    input_name=name,
                    input_config=info,
                    received_type=received,
                    linked_node=value,
                )
            )
            return True
        try:
            return self.node(source_id)[0]
        except Exception as exc:
            reason = _error(
                "exception_during_inner_validation",
                "Exception when validating inner node",
                str(exc),
                input_name=name,
                input_config=info,
                exception_message=str(exc),
                exception_type=type(exc).__name__,
                traceback=INNER_TRACEBACK,
                linked_node=value,
            )
            self.validated[source_id] = (False, [reason])
            return False

    def _value(self, inputs: dict[str, Any], name: str, info: list[Any], errors: Reasons) -> None:
        kind, extra = info
        value = inputs[name]
        if isinstance(value, dict) and "__value__" in value:
            value = inputs[name] = value["__value__"]
        if isinstance(kind, str) and kind in _CONVERTERS:
            try:
                value = inputs[name] = _CONVERTERS[kind](value)
            except Exception as exc:
                errors.append(
                    _error(
                        "invalid_input_type",
                        f"Failed to convert an input value to a {kind} value",
                        f"{name}, {value}, {exc}",
                        input_name=name,
                        input_config=info,
                        received_value=value,
                        exception_message=str(exc),
                    )
                )
                return
        if "min" in extra and value < extra["min"]:
            errors.append(
                _error(
                    "value_smaller_than_min",
                    f"Value {value} smaller than min of {extra['min']}",
                    name,
                    input_name=name,
                    input_config=info,
                    received_value=value,
                )
            )
            return
        if "max" in extra and value > extra["max"]:
            errors.append(
                _error(
                    "value_bigger_than_max",
                    f"Value {value} bigger than max of {extra['max']}",
                    name,
                    input_name=name,
                    input_config=info,
                    received_value=value,
                )
            )
            return
        if isinstance(kind, list) or kind == "COMBO":
            options = kind if isinstance(kind, list) else extra.get("options", [])
            if value not in options:
                shown = f"(list of length {len(options)})" if len(options) > 20 else str(options)
                errors.append(
                    _error(
                        "value_not_in_list",
                        "Value not in list",
                        f"{name}: '{value}' not in {shown}",
                        input_name=name,
                        input_config=None if len(options) > 20 else info,
                        received_value=value,
                    )
                )
