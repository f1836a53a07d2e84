"""Bad input through every Discord entry point: a clear private refusal, nothing sent to ComfyUI.

Slash options, attachments, mentions, the "Use as input" form and the job buttons, each through
the loopback FakeDiscord driving the real discord.py client.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from bot.discord.client import ComfyBot
from tests.bad_input import (
    Sent,
    bad_input,
    eps,
    huge_canvas_png,
    in_format,
    multipage_tiff,
    not_an_image,
    png,
    truncated_png,
)
from tests.discord_env import (  # noqa: F401  # fixtures
    EPHEMERAL,
    Response,
    Services,
    bot_fixture,
    services_fixture,
    webhook_of,
)
from tests.fakes.comfy import FakeComfy
from tests.fakes.discord import FakeDiscord, Interaction
from tests.fakes.discord_messages import walk

pytestmark = bad_input

Act = Callable[[FakeDiscord, int], Awaitable[str]]


@dataclass(frozen=True)
class Case:
    """One bad input: how it is given, the refusal expected (a regex), the settings it needs."""

    name: str
    act: Act
    refusal: str
    env: dict[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        return self.name


async def refusal_of(fake: FakeDiscord, ix: Interaction) -> str:
    """Return the private text the bot answered an interaction with."""
    answer = await ix.wait_response()
    if answer["type"] == Response.channel_message.value:
        assert answer["data"]["flags"] & EPHEMERAL, answer
        return str(answer["data"]["content"])
    assert answer["type"] == Response.deferred_channel_message.value, answer
    is_webhook = webhook_of(ix)
    call = await fake.wait_for(
        lambda c: (
            is_webhook(c) and c.method == "POST" and bool((c.json or {}).get("flags", 0) & 64)
        ),
        timeout=10,
    )
    return str(call.json["content"])


def slash(options: dict[str, Any], files: dict[str, tuple[bytes, str, str]] | None = None) -> Act:
    """Invoke /generate with `options`; `files` become attachment options (data, name, type)."""

    async def act(fake: FakeDiscord, user: int) -> str:
        given = dict(options)
        for option, (data, name, content_type) in (files or {}).items():
            given[option] = fake.add_attachment(data, name, content_type)
        return await refusal_of(fake, await fake.slash("generate", given, user_id=user))

    return act


def command(name: str, options: dict[str, Any], subcommand: str | None = None) -> Act:
    """Invoke another slash command."""

    async def act(fake: FakeDiscord, user: int) -> str:
        ix = await fake.slash(name, options, user_id=user, subcommand=subcommand)
        return await refusal_of(fake, ix)

    return act


def image(
    data: bytes,
    name: str = "in.png",
    content_type: str = "image/png",
    *,
    options: dict[str, Any] | None = None,
) -> Act:
    """Invoke /generate on the image workflow with one attachment (and more `options`)."""
    given = {"prompt": "x", "workflow": "demo", **(options or {})}
    return slash(given, {"image": (data, name, content_type)})


def mention(data: bytes, name: str = "in.png", content_type: str = "image/png") -> Act:
    """Post a message mentioning the bot with one attachment; return the bot's reply."""

    async def act(fake: FakeDiscord, user: int) -> str:
        attachment = fake.add_attachment(data, name, content_type)
        posted = await fake.post_message(
            "make it pop", user_id=user, attachments=[attachment], mentions_bot=True
        )
        reply = await fake.wait_for(
            lambda c: (
                c.method == "POST"
                and c.path.endswith("/messages")
                and str((c.json.get("message_reference") or {}).get("message_id")) == posted["id"]
            ),
            timeout=10,
        )
        return str(reply.json["content"])

    return act


def use_as_input(data: bytes, name: str = "in.png", content_type: str = "image/png") -> Act:
    """Open "Use as input" on a message with one attachment, submit the form if one opens."""

    async def act(fake: FakeDiscord, user: int) -> str:
        attachment = fake.add_attachment(data, name, content_type)
        posted = await fake.post_message("look", user_id=user, attachments=[attachment])
        menu = await fake.message_command("Use as input", int(posted["id"]), user_id=user)
        answer = await menu.wait_response()
        if answer["type"] != Response.modal.value:
            return await refusal_of(fake, menu)
        modal = answer["data"]
        [text] = [c for c in walk(modal["components"]) if c.get("type") == 4]
        submitted = await fake.submit_modal(
            modal["custom_id"], {text["custom_id"]: "as a watercolour"}, user_id=user
        )
        return await refusal_of(fake, submitted)

    return act


def click(custom_id: str) -> Act:
    """Click a job button carrying `custom_id` on a message of the bot's."""

    async def act(fake: FakeDiscord, user: int) -> str:
        posted = await fake.post_message("an old reply", user_id=fake.bot_user_id)
        message = fake.messages[int(posted["id"])]
        message["components"] = [
            {
                "type": 1,
                "components": [{"type": 2, "style": 2, "label": "B", "custom_id": custom_id}],
            }
        ]
        return await refusal_of(fake, await fake.click(int(posted["id"]), custom_id, user_id=user))

    return act


PNG = png()
CASES = [
    Case("slash unknown workflow", slash({"prompt": "x", "workflow": "nope"}), r"nope"),
    Case("slash workflow path", slash({"prompt": "x", "workflow": "../demo.json"}), r"demo"),
    Case("slash steps on a workflow without", image(PNG, options={"steps": 20}), r"steps"),
    Case(
        "slash image workflow without image", slash({"prompt": "x", "workflow": "demo"}), r"image"
    ),
    Case("slash seed on a workflow without", image(PNG, options={"seed": 5}), r"seed"),
    Case(
        "slash steps over the range",
        slash({"prompt": "x", "workflow": "slow", "steps": 501}),
        r"steps",
    ),
    Case(
        "slash width not a multiple of 8",
        slash({"prompt": "x", "workflow": "slow", "width": 100}),
        r"width",
    ),
    Case(
        "slash image on a text workflow",
        slash({"prompt": "x", "workflow": "slow"}, {"image": (PNG, "a.png", "image/png")}),
        r"image",
    ),
    Case(
        "slash second image on a one-image workflow",
        slash(
            {"prompt": "x", "workflow": "demo"},
            {"image": (PNG, "a.png", "image/png"), "image2": (PNG, "b.png", "image/png")},
        ),
        r"image",
    ),
    Case("attachment text named .png", image(not_an_image()), r"in\.png"),
    Case(
        "attachment not an image type",
        image(b"hello", "notes.txt", "text/plain"),
        r"notes\.txt is not an image",
    ),
    Case("attachment over the size limit", image(PNG), r"limit", {"MAX_INPUT_IMAGE_BYTES": "10"}),
    Case("attachment truncated PNG", image(truncated_png()), r"in\.png"),
    Case(
        "channel not allowed",
        slash({"prompt": "x"}),
        r"only take requests in <#1>",
        {"ALLOWED_CHANNEL_IDS": "1"},
    ),
    Case("role not allowed", slash({"prompt": "x"}), r"role", {"ALLOWED_ROLE_IDS": "1"}),
    Case("mention with text named .png", mention(not_an_image()), r"in\.png"),
    Case(
        "mention with an image over the limit",
        mention(PNG),
        r"limit",
        {"MAX_INPUT_IMAGE_BYTES": "10"},
    ),
    Case("mention with a truncated PNG", mention(truncated_png()), r"in\.png"),
    Case(
        "mention in a channel not allowed",
        mention(PNG),
        r"only take requests in <#1>",
        {"ALLOWED_CHANNEL_IDS": "1"},
    ),
    Case("form on text named .png", use_as_input(not_an_image()), r"in\.png"),
    Case(
        "form on an image over the limit",
        use_as_input(PNG),
        r"limit",
        {"MAX_INPUT_IMAGE_BYTES": "10"},
    ),
    Case(
        "form on a message without an image",
        use_as_input(b"hi", "a.txt", "text/plain"),
        r"no image",
    ),
    Case("button reroll of an unknown job", click("comfycord:reroll:comfycord-nope"), r"no longer"),
    Case("button retry of an unknown job", click("comfycord:retry:comfycord-nope"), r"no longer"),
    Case("button cancel of an unknown job", click("comfycord:cancel:comfycord-nope"), r"(?i)job"),
]


CASES += [
    Case("attachment multi-page TIFF", image(multipage_tiff(), "a.tif", "image/tiff"), r"a\.tif"),
    Case("attachment QOI named .png", image(in_format("QOI")), r"in\.png"),
    Case("mention with ICO named .png", mention(in_format("ICO")), r"in\.png"),
    Case("form on TGA named .png", use_as_input(in_format("TGA")), r"in\.png"),
    Case(
        "/history everyone without Manage Server",
        command("history", {"everyone": True}),
        r"Manage Server",
    ),
    Case("/history without a journal", command("history", {}), r"no job history"),
    Case(
        "/comfy status by a member", command("comfy", {}, "status"), r"(?i)permission|Manage Server"
    ),
    Case(
        "/comfy reload by a member", command("comfy", {}, "reload"), r"(?i)permission|Manage Server"
    ),
    Case(
        "slash height not a multiple of 8",
        slash({"prompt": "x", "workflow": "slow", "height": 4095}),
        r"height",
    ),
    Case("mention with a huge canvas PNG", mention(huge_canvas_png()), r"in\.png"),
    Case("mention with EPS named .png", mention(eps()), r"in\.png"),
    Case("form on EPS named .png", use_as_input(eps()), r"in\.png"),
    Case("form on a truncated PNG", use_as_input(truncated_png()), r"in\.png"),
    Case("attachment huge canvas PNG", image(huge_canvas_png()), r"in\.png"),
    Case("attachment EPS named .png", image(eps()), r"in\.png"),
    Case("form on a huge canvas PNG", use_as_input(huge_canvas_png()), r"in\.png"),
]


@pytest.fixture(name="env")
def env_fixture(case: Case) -> dict[str, str]:
    """Return the settings a case needs."""
    return case.env


@pytest.mark.parametrize("case", CASES, ids=str)
async def test_bad_discord_input_is_refused_and_nothing_reaches_comfyui(
    case: Case, fake_discord: FakeDiscord, fake_comfy: FakeComfy, bot: ComfyBot
) -> None:
    user = fake_discord.add_user("mallory")
    sent = Sent(fake_comfy)

    text = await case.act(fake_discord, user)

    assert re.search(case.refusal, text), text
    assert "went wrong on our side" not in text
    assert sent.posts() == []
