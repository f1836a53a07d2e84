"""Message bodies for the fake Discord: Discord's limits, attachment bookkeeping and edits."""

from __future__ import annotations

import copy
import mimetypes
import re
from typing import TYPE_CHECKING, Any

from aiohttp import web

from tests.fakes.discord_payloads import FLAG_COMPONENTS_V2, error, form_errors, now_iso

if TYPE_CHECKING:
    from tests.fakes.discord import FakeDiscord
    from tests.fakes.discord_http import RecordedCall

Problem = tuple[str, str, str]

_MENTION = re.compile(r"<@!?(\d+)>")
SELECTS = {3, 5, 6, 7, 8}
_CREATE_FLAGS = (1 << 2) | (1 << 6) | (1 << 12) | FLAG_COMPONENTS_V2
_TOO_LONG = "BASE_TYPE_MAX_LENGTH"


def _too_long(path: str, limit: int) -> Problem:
    return (path, _TOO_LONG, f"Must be {limit} or fewer in length.")


def check(body: dict[str, Any], call: RecordedCall, *, creating: bool) -> web.Response | None:
    """Answer 400 like Discord when ``body`` breaks a documented limit, else None."""
    problems: list[Problem] = []
    content = body.get("content") or ""
    if len(content) > 2000:
        problems.append(_too_long("content", 2000))
    if len(call.files) > 10:
        problems.append(("attachments", _TOO_LONG, "Must be 10 or fewer in length."))
    problems += _embed_problems(body.get("embeds") or [])
    problems += _component_problems(body.get("components") or [], int(body.get("flags") or 0))
    if problems:
        return error(400, 50035, "Invalid Form Body", form_errors(problems))
    has_anything = content or body.get("embeds") or call.files or body.get("components")
    if creating and not (has_anything or body.get("sticker_ids") or body.get("poll")):
        return error(400, 50006, "Cannot send an empty message")
    return None


def _embed_problems(embeds: list[dict[str, Any]]) -> list[Problem]:
    problems: list[Problem] = []
    if len(embeds) > 10:
        problems.append(_too_long("embeds", 10))
    total = 0
    for i, embed in enumerate(embeds):
        texts = [
            (f"embeds.{i}.title", embed.get("title"), 256),
            (f"embeds.{i}.description", embed.get("description"), 4096),
            (f"embeds.{i}.footer.text", (embed.get("footer") or {}).get("text"), 2048),
            (f"embeds.{i}.author.name", (embed.get("author") or {}).get("name"), 256),
        ]
        fields = embed.get("fields") or []
        if len(fields) > 25:
            problems.append(_too_long(f"embeds.{i}.fields", 25))
        for j, item in enumerate(fields):
            texts.append((f"embeds.{i}.fields.{j}.name", item.get("name"), 256))
            texts.append((f"embeds.{i}.fields.{j}.value", item.get("value"), 1024))
            if not item.get("name") or not item.get("value"):
                problems.append((f"embeds.{i}.fields.{j}", "BASE_TYPE_REQUIRED", "Required."))
        for path, text, limit in texts:
            total += len(text or "")
            if len(text or "") > limit:
                problems.append(_too_long(path, limit))
    if total > 6000:
        problems.append(
            ("embeds", "MAX_EMBED_SIZE_EXCEEDED", "Embed size exceeds maximum size of 6000")
        )
    return problems


def walk(components: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Flatten a component tree (rows, sections, labels, containers)."""
    found: list[dict[str, Any]] = []
    for component in components:
        found.append(component)
        children = list(component.get("components") or [])
        for key in ("component", "accessory"):
            if component.get(key):
                children.append(component[key])
        found += walk(children)
    return found


def _component_problems(components: list[dict[str, Any]], flags: int) -> list[Problem]:
    problems: list[Problem] = []
    if flags & FLAG_COMPONENTS_V2:
        if len(walk(components)) > 40:
            problems.append(_too_long("components", 40))
    else:
        if len(components) > 5:
            problems.append(_too_long("components", 5))
        for i, row in enumerate(components):
            children = row.get("components") or []
            selects = sum(1 for c in children if c.get("type") in SELECTS)
            if (
                row.get("type") != 1
                or not 1 <= len(children) <= 5
                or (selects and len(children) > 1)
            ):
                problems.append((f"components.{i}", "COMPONENT_LAYOUT_WIDTH_EXCEEDED", "Bad row."))
    seen: set[str] = set()
    for component in walk(components):
        is_link = component.get("type") == 2 and component.get("style") in (5, 6)
        if component.get("type") in (2, *SELECTS) and not is_link:
            custom_id = component.get("custom_id") or ""
            if not 1 <= len(custom_id) <= 100 or custom_id in seen:
                problems.append(("components", "COMPONENT_CUSTOM_ID_INVALID", repr(custom_id)))
            seen.add(custom_id)
        if len(component.get("label") or "") > 80:
            problems.append(_too_long("components.label", 80))
    return problems


def apply(
    fake: FakeDiscord, message: dict[str, Any], body: dict[str, Any], call: RecordedCall
) -> None:
    """Apply a create or edit ``body`` (plus the call's files) to the stored ``message``."""
    if "content" in body:
        message["content"] = body["content"] or ""
        message["mentions"] = [
            fake.users[int(uid)]
            for uid in _MENTION.findall(message["content"])
            if int(uid) in fake.users
        ]
    if "embeds" in body:
        message["embeds"] = copy.deepcopy(body["embeds"] or [])
    if "components" in body:
        message["components"] = copy.deepcopy(body["components"] or [])
    if "flags" in body and body["flags"] is not None:
        message["flags"] |= int(body["flags"]) & _CREATE_FLAGS
    if "attachments" in body or call.files:
        message["attachments"] = _attachments(fake, message, body, call)
    _resolve_embed_urls(message["embeds"], message["attachments"])


def mark_edited(message: dict[str, Any]) -> None:
    """Stamp an edit time."""
    message["edited_timestamp"] = now_iso()


def _attachments(
    fake: FakeDiscord, message: dict[str, Any], body: dict[str, Any], call: RecordedCall
) -> list[dict[str, Any]]:
    # payload_json.attachments lists new files by their files[n] index and existing ones by id;
    # an existing attachment left out of the list is removed, as on Discord.
    uploads = dict(zip(call.file_indices, call.files, strict=True))
    current = {str(a["id"]): a for a in message["attachments"]}
    is_ephemeral = bool(message["flags"] & (1 << 6))
    result: list[dict[str, Any]] = []
    if "attachments" not in body:
        result += message["attachments"]
    used: set[int] = set()
    for entry in body.get("attachments") or []:
        key = str(entry.get("id"))
        if key.isdigit() and int(key) in uploads and int(key) not in used:
            used.add(int(key))
            name, data, sent_type = uploads[int(key)]
            filename = entry.get("filename") or name
            content_type = mimetypes.guess_type(filename)[0] or sent_type
            result.append(
                fake.store_file(
                    data,
                    filename,
                    content_type,
                    description=entry.get("description"),
                    is_ephemeral=is_ephemeral,
                )
            )
        elif key in current:
            result.append(current[key])
    for index, (name, data, sent_type) in uploads.items():
        if index not in used:
            content_type = mimetypes.guess_type(name)[0] or sent_type
            result.append(fake.store_file(data, name, content_type, is_ephemeral=is_ephemeral))
    return result


def _resolve_embed_urls(embeds: list[dict[str, Any]], attachments: list[dict[str, Any]]) -> None:
    # Discord rewrites attachment://name in embeds to the uploaded file's URL.
    by_name = {a["filename"]: a for a in attachments}
    for embed in embeds:
        embed.setdefault("type", "rich")
        targets = [(embed.get(key), "url", "proxy_url") for key in ("image", "thumbnail")]
        targets += [(embed.get(key), "icon_url", "proxy_icon_url") for key in ("footer", "author")]
        for media, url_key, proxy_key in targets:
            url = (media or {}).get(url_key) or ""
            attachment = by_name.get(url.removeprefix("attachment://"))
            if media is None or not url.startswith("attachment://") or attachment is None:
                continue
            media[url_key] = attachment["url"]
            media[proxy_key] = attachment["proxy_url"]
            if url_key == "url" and "width" in attachment:
                media["width"], media["height"] = attachment["width"], attachment["height"]
