"""ReplyLocation: the journal's form of a Discord reply, and the one rule for the token's life."""

from __future__ import annotations

from dataclasses import replace

import pytest

from bot.discord.reply import TOKEN_MARGIN, ReplyLocation, token_lives

MARGIN = TOKEN_MARGIN.total_seconds()
INTERACTION = ReplyLocation(
    channel_id=5,
    guild_id=7,
    message_id=9,
    application_id=11,
    token="interaction-token-abc",
    token_expires=10_000.0,
    filesize_limit=8_000_000,
)


def test_an_interaction_reply_round_trips_through_the_journal_form():
    stored = INTERACTION.to_dict()
    assert stored == {
        "via": "interaction",
        "guild_id": 7,
        "channel_id": 5,
        "message_id": 9,
        "filesize_limit": 8_000_000,
        "application_id": 11,
        "token": "interaction-token-abc",
        "token_expires": 10_000.0,
    }
    assert ReplyLocation.from_dict(stored | {"requester_id": "42"}) == INTERACTION


def test_a_reply_without_its_token_is_a_channel_message():
    channel = INTERACTION.without_token()
    assert channel.to_dict() == {
        "via": "channel",
        "guild_id": 7,
        "channel_id": 5,
        "message_id": 9,
        "filesize_limit": 8_000_000,
    }
    assert ReplyLocation.from_dict(channel.to_dict()) == channel
    assert not channel.has_webhook


@pytest.mark.parametrize(
    "origin",
    [{}, {"front_door": "http"}, {"via": "channel"}, {"via": "carrier pigeon", "channel_id": 5}],
)
def test_an_origin_that_names_no_discord_reply_is_none(origin):
    assert ReplyLocation.from_dict(origin) is None


def test_a_channel_origin_ignores_a_stray_token():
    origin = {"via": "channel", "channel_id": "5", "token": "old", "application_id": "11"}
    location = ReplyLocation.from_dict(origin)
    assert location == ReplyLocation(channel_id=5)
    assert location is not None
    assert location.filesize_limit > 0


def test_the_token_lives_until_the_margin_before_it_expires():
    assert token_lives(1000.0, now=1000.0 - MARGIN - 0.001)
    assert not token_lives(1000.0, now=1000.0 - MARGIN)
    assert not token_lives(1000.0, now=2000.0)


def test_the_webhook_is_used_only_while_the_token_lives(monkeypatch):
    monkeypatch.setattr("bot.discord.reply.time.time", lambda: 10_000.0 - MARGIN - 1)
    assert INTERACTION.has_webhook
    monkeypatch.setattr("bot.discord.reply.time.time", lambda: 10_000.0 - MARGIN)
    assert not INTERACTION.has_webhook


def test_the_link_and_repr():
    assert INTERACTION.link == "https://discord.com/channels/7/5/9"
    assert ReplyLocation(channel_id=5, message_id=9).link == "https://discord.com/channels/@me/5/9"
    assert ReplyLocation(channel_id=5).link is None
    assert "interaction-token-abc" not in repr(INTERACTION)


def test_a_private_reply_keeps_being_private_in_the_journal_form():
    private = replace(INTERACTION, is_private=True)
    stored = private.to_dict()
    assert stored["private"] is True
    assert ReplyLocation.from_dict(stored) == private
    assert ReplyLocation.from_dict(private.without_token().to_dict()).is_private
    assert "private" not in INTERACTION.to_dict()
