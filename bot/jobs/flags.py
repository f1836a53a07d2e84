"""Midjourney-style flags inside a prompt (`--ar 16:9 --seed 7 --no text`), parsed into values.

Flags work the same from the slash command and from a chat mention, so the parser sees only text.
Phones turn `--` into an em dash, so `—ar` counts as `--ar`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from bot.errors import BotError
from bot.jobs.aspect import ASPECTS
from bot.workflows.sidecar import SEED_LIMIT

MAX_COUNT = 4
MAX_STEPS = 200  # as /generate's steps option
FLAGS = ("ar", "seed", "no", "steps", "count")
_ALIASES = {"aspect": "ar"}
# A flag starts a word: `--name` or `—name` after the start or a space; it runs to the next flag.
_FLAG = re.compile(r"(?:(?<=\s)|^)(?:--|—)([A-Za-z][\w-]*)")


class BadFlag(BotError):
    """A prompt flag is unknown, repeated, missing its value or has a bad one."""


@dataclass(frozen=True, slots=True)
class PromptFlags:
    """A prompt with its flags taken out: the text left, and what each flag asked for."""

    prompt: str
    aspect: str | None = None
    seed: int | None = None
    steps: int | None = None
    count: int | None = None
    no: str | None = None  # added to the negative prompt


def parse_flags(text: str) -> PromptFlags:
    """Split `text` into the prompt and its flags.

    Raises:
        BadFlag: naming the flag that is unknown, given twice, empty or out of range.
    """
    matches = list(_FLAG.finditer(text))
    prompt = text[: matches[0].start()] if matches else text
    values: dict[str, str] = {}
    for index, match in enumerate(matches):
        end = matches[index + 1].start() if index + 1 < len(matches) else len(text)
        name = match[1].lower()
        name = _ALIASES.get(name, name)
        if name not in FLAGS:
            known = ", ".join(f"--{flag}" for flag in FLAGS)
            raise BadFlag(f"Unknown flag --{match[1]}; the flags are {known}.")
        if name in values:
            raise BadFlag(f"The flag --{name} is given twice.")
        value = text[match.end() : end].strip()
        if not value:
            raise BadFlag(f"The flag --{name} needs a value, e.g. {_EXAMPLES[name]}.")
        values[name] = value
    return PromptFlags(
        prompt=" ".join(prompt.split()),
        aspect=_aspect(values["ar"]) if "ar" in values else None,
        seed=_whole("seed", values["seed"], 0, SEED_LIMIT) if "seed" in values else None,
        steps=_whole("steps", values["steps"], 1, MAX_STEPS) if "steps" in values else None,
        count=_whole("count", values["count"], 1, MAX_COUNT) if "count" in values else None,
        no=_negative(values["no"]) if "no" in values else None,
    )


_EXAMPLES = {
    "ar": "--ar 16:9",
    "seed": "--seed 1234",
    "no": "--no blurry, text",
    "steps": "--steps 30",
    "count": "--count 4",
}


def _whole(name: str, value: str, low: int, high: int) -> int:
    if not value.isascii() or not value.isdigit():
        raise BadFlag(f"--{name} takes a whole number, not {value!r} (e.g. {_EXAMPLES[name]}).")
    number = int(value)
    if not low <= number <= high:
        raise BadFlag(f"--{name} must be between {low} and {high}, not {number}.")
    return number


def _aspect(value: str) -> str:
    ratio = value.replace(" ", "").replace("/", ":").replace("x", ":")
    if ratio not in ASPECTS:
        raise BadFlag(
            f"--ar {value} is not an aspect ratio I know; use one of {', '.join(ASPECTS)}."
        )
    return ratio


def _negative(value: str) -> str:
    terms = [term.strip() for term in value.split(",") if term.strip()]
    if not terms:
        raise BadFlag(f"The flag --no needs something to avoid, e.g. {_EXAMPLES['no']}.")
    return ", ".join(terms)
