"""Prompt flags (--ar, --seed, --no, --steps, --count): good and bad flags, and merging (pure)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.discord.options import request_values
from bot.errors import user_message
from bot.jobs.flags import BadFlag, PromptFlags, parse_flags
from bot.workflows.library import load_workflow


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a red fox", PromptFlags("a red fox")),
        ("  a   red fox  ", PromptFlags("a red fox")),
        ("a fox --ar 16:9", PromptFlags("a fox", aspect="16:9")),
        ("a fox --aspect 9:16", PromptFlags("a fox", aspect="9:16")),
        ("a fox --ar 21/9", PromptFlags("a fox", aspect="21:9")),
        ("a fox --seed 42", PromptFlags("a fox", seed=42)),
        ("a fox --seed 18446744073709551615", PromptFlags("a fox", seed=2**64 - 1)),
        ("a fox --steps 30 --count 4", PromptFlags("a fox", steps=30, count=4)),
        ("a fox --no blurry, text", PromptFlags("a fox", no="blurry, text")),
        ("a fox --no blurry,, text ,", PromptFlags("a fox", no="blurry, text")),
        (
            "a fox --no text --ar 3:2 --seed 1",
            PromptFlags("a fox", aspect="3:2", seed=1, no="text"),
        ),
        ("a fox —ar 4:3 —seed 5", PromptFlags("a fox", aspect="4:3", seed=5)),
        ("a fox --AR 1:1", PromptFlags("a fox", aspect="1:1")),
        ("--seed 3", PromptFlags("", seed=3)),
        ("an x--y plot", PromptFlags("an x--y plot")),  # not at a word start: not a flag
        ("a fox - a hound", PromptFlags("a fox - a hound")),
    ],
)
def test_good_flags(text: str, expected: PromptFlags) -> None:
    assert parse_flags(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a fox --size 5", "Unknown flag --size; the flags are --ar, --seed, --no, --steps"),
        ("a fox --ar", "The flag --ar needs a value, e.g. --ar 16:9."),
        ("a fox --ar 5:4", "--ar 5:4 is not an aspect ratio I know; use one of 1:1, 4:3"),
        ("a fox --ar wide", "--ar wide is not an aspect ratio"),
        ("a fox --seed -1", "--seed takes a whole number, not '-1'"),
        ("a fox --seed 1.5", "--seed takes a whole number, not '1.5'"),
        ("a fox --seed 18446744073709551616", "--seed must be between 0 and 18446744073709551615"),
        ("a fox --steps 0", "--steps must be between 1 and 200, not 0."),
        ("a fox --steps many", "--steps takes a whole number, not 'many'"),
        ("a fox --count 5", "--count must be between 1 and 4, not 5."),
        ("a fox --count 2 --count 3", "The flag --count is given twice."),
        ("a fox --ar 1:1 --aspect 4:3", "The flag --ar is given twice."),
        ("a fox --no , ,", "The flag --no needs something to avoid"),
        ("a fox --seed \uff14\uff12", "--seed takes a whole number"),  # full-width digits
    ],
)
def test_bad_flags_name_the_flag(text: str, message: str) -> None:
    with pytest.raises(BadFlag) as info:
        parse_flags(text)
    assert message in user_message(info.value)


def test_options_win_over_flags_and_no_terms_join_the_negative() -> None:
    txt2img = load_workflow(Path(__file__).resolve().parents[1] / "workflows" / "txt2img.json")
    values = request_values(txt2img, "a fox --seed 1 --ar 16:9 --no Text, logo", seed=9)
    assert values == {
        "prompt": "a fox",
        "seed": 9,
        "aspect": "16:9",
        "negative": "blurry, low quality, watermark, text, logo",
    }
    given = request_values(txt2img, "a fox --no logo", negative="dark")
    assert given["negative"] == "dark, logo"
    assert request_values(txt2img, "a fox") == {"prompt": "a fox"}
