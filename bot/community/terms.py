"""Banned terms: words, phrases and regular expressions matched through a normalisation.

Both the text and each plain term are normalised the same way: Unicode compatibility forms,
diacritics dropped, case folded, common letter-for-digit swaps undone (`n00d3` -> `noode`...) and
runs of spaces collapsed. A plain term matches whole words only ("cat" is not in "category").
A term written `/like this/` is a regular expression, searched (case-insensitively) in the
normalised text and in the text as given.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

MAX_TERM_LENGTH = 200

# "1" stands for both i and l, so the text is tried both ways (see `_variants`).
_SWAPS = str.maketrans(
    {"0": "o", "3": "e", "4": "a", "@": "a", "5": "s", "$": "s", "7": "t", "8": "b", "9": "g"}
)
_WORD = "a-z0-9"


class BadTerm(ValueError):
    """A banned term that cannot be used (an empty word, a broken regular expression)."""


def normalise(text: str) -> str:
    """Return `text` folded for matching: no diacritics, no case, digits read as letters."""
    decomposed = unicodedata.normalize("NFKD", text)
    bare = "".join(c for c in decomposed if not unicodedata.combining(c))
    folded = bare.casefold().replace("ß", "ss").translate(_SWAPS)
    return " ".join(folded.split())


def _variants(text: str) -> tuple[str, ...]:
    folded = normalise(text)
    if "1" not in folded:
        return (folded,)
    return (folded.replace("1", "i"), folded.replace("1", "l"))


@dataclass(frozen=True, slots=True)
class Term:
    """One banned term as the server admin wrote it, compiled for matching."""

    written: str
    pattern: re.Pattern[str]
    is_regex: bool

    @classmethod
    def parse(cls, written: str) -> Term:
        """Compile a term: `/.../` is a regular expression, anything else a word or phrase.

        Raises:
            BadTerm: empty, too long, or an invalid regular expression.
        """
        text = written.strip()
        if len(text) > MAX_TERM_LENGTH:
            raise BadTerm(f"A banned term may be at most {MAX_TERM_LENGTH} characters long.")
        if len(text) > 2 and text.startswith("/") and text.endswith("/"):
            try:
                return cls(text, re.compile(text[1:-1], re.IGNORECASE), is_regex=True)
            except re.error as exc:
                raise BadTerm(f"{text} is not a valid regular expression: {exc}.") from None
        word = _variants(text)[0]
        if not word:
            raise BadTerm("A banned term cannot be empty.")
        escaped = re.escape(word).replace(r"\ ", r"\s+")
        return cls(text, re.compile(rf"(?<![{_WORD}]){escaped}(?![{_WORD}])"), is_regex=False)

    def found_in(self, text: str, variants: tuple[str, ...] | None = None) -> bool:
        """Tell whether this term occurs in `text` (whose normalised `variants` may be given)."""
        candidates = _variants(text) if variants is None else variants
        if self.is_regex:
            candidates = (text, *candidates)
        return any(self.pattern.search(candidate) for candidate in candidates)


@dataclass(frozen=True, slots=True)
class TermMatch:
    """Which banned term was found, and in which field of the request."""

    term: str
    field: str


@dataclass(frozen=True, slots=True)
class BannedTerms:
    """A server's list of banned terms; the plain ones are searched as one pattern."""

    terms: tuple[Term, ...] = ()
    _words: re.Pattern[str] | None = field(default=None, compare=False, repr=False)
    _written: Mapping[str, str] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def parse(cls, written: Iterable[str]) -> BannedTerms:
        """Compile every term, skipping blank entries.

        Raises:
            BadTerm: naming the first term that cannot be used.
        """
        terms = tuple(Term.parse(term) for term in written if term.strip())
        plain = {_variants(t.written)[0]: t.written for t in terms if not t.is_regex}
        if not plain:
            return cls(terms)
        # Longest first, so that "big cat" is named rather than "big" where both are banned.
        alternatives = "|".join(re.escape(w) for w in sorted(plain, key=len, reverse=True))
        pattern = re.compile(rf"(?<![{_WORD}])(?:{alternatives})(?![{_WORD}])")
        return cls(terms, pattern, plain)

    def __len__(self) -> int:
        return len(self.terms)

    def find(self, fields: Mapping[str, str | None]) -> TermMatch | None:
        """Return a banned term found in any of the fields (prompt, negative, ...), if any."""
        for name, text in fields.items():
            if not text:
                continue
            variants = _variants(text)  # once per field, not once per term
            if self._words is not None:
                for variant in variants:
                    if (found := self._words.search(variant)) is not None:
                        return TermMatch(self._written[found.group()], name)
            for term in self.terms:
                if term.is_regex and term.found_in(text, variants):
                    return TermMatch(term.written, name)
        return None
