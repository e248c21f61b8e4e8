"""The folded copy of a release that flag rules match: same length, lower case, no accents.

A position found in the folded copy points at the same character in the original, so a
match is shown as written. Folding runs on every release, so it stays on C-speed paths:
typography to spaces with str.replace, then one bytes.translate for all of Latin-1.
"""

from __future__ import annotations

import functools
import re
import unicodedata

# In the folded copy these become spaces: line breaks, hyphens and the punctuation but
# "." "/" "*" (I.C.C., ICC-01/25, the phrase syntax). Then every word that can start a
# phrase follows a plain space (or starts the text), which re finds fast as a literal prefix.
_SPACED = "\n\r\t\f\v'\"`()[]{}<>#-,;:!?@&+=|~^%$\\_"
_TYPOGRAPHY = "’‘“”„–—‐‑…\u202f\u2009"  # beyond Latin-1 and in every release: to spaces
_NON_ASCII = re.compile("[^\x00-\x7f]")
_NO_LATIN_BASE = {"ß": "s", "æ": "a", "ø": "o", "ð": "d", "þ": "t", "œ": "o", "ł": "l", "đ": "d", "ı": "i"}


@functools.lru_cache(maxsize=4096)
def _fold_char(char: str) -> str:
    """One character to one: é → e, Œ → o, ² → 2, ’ → space; a letter of another script stays."""
    if char in _SPACED:
        return " "
    if char.lower() in _NO_LATIN_BASE:
        return _NO_LATIN_BASE[char.lower()]
    base = "".join(c for c in unicodedata.normalize("NFKD", char) if not unicodedata.combining(c)).lower()
    if len(base) == 1 and (base.isascii() or base.isalpha()):
        return base
    return char.lower() if char.isalpha() and len(char.lower()) == 1 else " "


# Every Latin-1 byte to its ASCII fold: one bytes.translate folds most releases at C speed.
_LATIN_1_FOLD = bytes(ord(f) if f.isascii() else 32 for f in map(_fold_char, map(chr, range(256))))


def fold_latin_1(text: str) -> str | None:
    """The folded copy of a text within Latin-1 (after typography), at C speed; else None."""
    if not text.isascii():
        for char in _TYPOGRAPHY:
            text = text.replace(char, " ")
    try:
        return text.encode("latin-1").translate(_LATIN_1_FOLD).decode("latin-1")
    except UnicodeEncodeError:
        return None


def fold_text(text: str) -> str:
    """The folded copy: lower case, no accents, separators as spaces; as long as ``text``.

    ``text`` is expected in NFC (é as one letter, not e + ´), as match_flags gives it.
    """
    folded = fold_latin_1(text)
    if folded is not None:
        return folded
    for char in set(_NON_ASCII.findall(text)):  # Ł, Ω, ж, ★…: character by character
        text = text.replace(char, _fold_char(char))
    return text.lower().translate(dict.fromkeys(map(ord, _SPACED), " "))
