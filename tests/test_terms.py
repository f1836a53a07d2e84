"""Banned terms: the normalisation table (case, diacritics, digit swaps), words and regexes."""

import pytest

from bot.community.terms import BadTerm, BannedTerms, TermMatch, normalise

TERMS = BannedTerms.parse(["nsfw", "kill", "big cat", "café", "/n[a@]ked/", "/gore\\b/"])


@pytest.mark.parametrize(
    ("text", "term"),
    [
        ("NSFW art", "nsfw"),  # case
        ("NsFw", "nsfw"),
        ("n5fw", "nsfw"),  # a digit for a letter
        ("n$fw", "nsfw"),  # a sign for a letter
        ("k1ll", "kill"),  # 1 read as i ...
        ("ki11", "kill"),  # ... and as l
        ("ǹšfw", "nsfw"),  # diacritics
        ("\uff4e\uff53\uff46\uff57", "nsfw"),  # full-width compatibility forms
        ("cafe au lait", "café"),  # the term's diacritic is dropped too
        ("CAFÉ", "café"),
        ("a Big   Cat", "big cat"),  # a phrase across any run of spaces
        ("nsfw-ish", "nsfw"),  # punctuation ends a word
        ("(nsfw)", "nsfw"),
        ("nãked", "/n[a@]ked/"),  # a regex sees the normalised text
        ("n@ked", "/n[a@]ked/"),  # ... and the text as given
        ("GORE", "/gore\\b/"),  # regexes ignore case
        ("g0re", "/gore\\b/"),
    ],
)
def test_a_banned_term_is_found_through_the_normalisation(text, term):
    assert TERMS.find({"prompt": text}) == TermMatch(term, "prompt")


@pytest.mark.parametrize(
    "text", ["category", "skilled", "cafes", "bigcat", "a big dog", "", "gorean"]
)
def test_a_word_inside_another_word_is_no_match(text):
    assert TERMS.find({"prompt": text}) is None


def test_the_first_field_with_a_term_is_named():
    found = TERMS.find({"prompt": "a fox", "negative": None, "flags": "--kill"})
    assert found == TermMatch("kill", "flags")


@pytest.mark.parametrize(
    ("raw", "folded"),
    [("Ünïcödé", "unicode"), ("l33t 5p34k", "leet speak"), ("  many   spaces ", "many spaces")],
)
def test_normalise(raw, folded):
    assert normalise(raw) == folded


@pytest.mark.parametrize(
    ("term", "message"),
    [("/(unclosed/", "not a valid regular expression"), ("x" * 201, "at most 200")],
)
def test_a_term_that_cannot_be_used_is_refused_with_a_reason(term, message):
    with pytest.raises(BadTerm, match=message):
        BannedTerms.parse([term])


def test_blank_entries_are_skipped():
    assert len(BannedTerms.parse(["", "  ", "word"])) == 1


def test_the_longer_of_two_overlapping_terms_is_named():
    terms = BannedTerms.parse(["big", "big cat"])
    assert terms.find({"prompt": "a BIG cat"}) == TermMatch("big cat", "prompt")
    assert terms.find({"prompt": "a big dog"}) == TermMatch("big", "prompt")


def test_only_regexes_or_nothing():
    assert BannedTerms.parse(["/x+y/"]).find({"prompt": "axxy"}) == TermMatch("/x+y/", "prompt")
    assert BannedTerms().find({"prompt": "anything"}) is None
