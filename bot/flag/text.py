"""The folded copy of a release that flag rules match: same length, lower case, no accents.

A position found in the folded copy points at the same character in the original, so a
match is shown as written. Folding runs on every release, so it stays on C-speed paths:
typography to spaces with str.replace, then one bytes.translate for all of Latin-1.

Beyond Latin-1 (issue 15: Arabic, Chinese, Russian): Cyrillic loses its case (ё is е);
Arabic loses its short vowels and tatweel (the word is closed up, spaces after it), hamza
seats (أ إ آ are ا), ى/ي and ة/ه differences and the article with the particles
attached before it (و ف ب ك ل + ال, and لل), which become spaces, so that a phrase
"المحكمة الجنائية الدولية" also finds "بالمحكمة" and "للمحكمة". Scripts written without
spaces between words (Chinese, Japanese) keep their characters: there every character
is a word of its own (``UNSPACED``), which the matcher's word boundaries know.
"""

from __future__ import annotations

import functools
import re
import unicodedata

# In the folded copy these become spaces: all whitespace, hyphens and the punctuation but
# "." "/" "*" (I.C.C., ICC-01/25, the phrase syntax). Then every word that can start a
# phrase follows a plain space (or starts the text), which the anchor scan looks for.
_SPACED = "\n\r\t\f\v\x1c\x1d\x1e\x1f'\"`()[]{}<>#-,;:!?@&+=|~^%$\\_"
_TYPOGRAPHY = "’‘“”„–—‐‑…\u202f\u2009"  # beyond Latin-1 and in every release: to spaces
_NON_ASCII = re.compile("[^\x00-\x7f]")
_NO_LATIN_BASE = {"ß": "s", "æ": "a", "ø": "o", "ð": "d", "þ": "t", "œ": "o", "ł": "l", "đ": "d", "ı": "i"}
# Letters that Arabic writers (and keyboards) use for one another: folded to one.
_ARABIC_BASE = {"ى": "ي", "ة": "ه", "ٱ": "ا", "ی": "ي", "ک": "ك"}

# Characters that are words by themselves: scripts written without spaces between words.
UNSPACED = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_UNSPACED = re.compile(f"[{UNSPACED}]")
_ARABIC_LETTER = "\u0621-\u064a\u066e-\u06d3"
_ARABIC_MARK = "\u0640\u064b-\u065f\u0670\u06d6-\u06ed"  # tatweel, short vowels, Quranic marks
_ARABIC = re.compile(f"[{_ARABIC_LETTER}]")
_MARKS = re.compile(f"[{_ARABIC_MARK}]")
# The article, and the particles written onto it (و ف, then ب ك, or ل with the article's
# alif elided), at the start of a word: literal replacements, which run at C speed.
_ARTICLES = tuple(
    (f" {article}", " " * (len(article) + 1))
    for article in ("وبال", "وكال", "فبال", "فكال", "وال", "فال", "بال", "كال", "ولل", "فلل", "ال", "لل")
)
# Beyond Latin-1, the characters that folding changes: all but ASCII letters, digits and . / *,
# the letters of Cyrillic (but й ё), of Arabic (but the hamza seats, ة and ى) and of Chinese.
_PLAIN = (
    "0-9A-Za-z ./*\x00-\x08\x0e-\x1b\x7f"
    "\u0410-\u0418\u041a-\u0438\u043a-\u044f"
    "\u0621\u0627\u0628\u062a-\u063a\u0641-\u0648\u064a"
    "\u3400-\u4dbf\u4e00-\u9fff"
)
_FOLDED = re.compile(f"[^{_PLAIN}]")


@functools.lru_cache(maxsize=4096)
def _fold_char(char: str) -> str:
    """One character to one: é → e, Œ → o, ² → 2, ’ → space; a letter of another script stays."""
    if char in _SPACED:
        return " "
    if char.lower() in _NO_LATIN_BASE:
        return _NO_LATIN_BASE[char.lower()]
    if char in _ARABIC_BASE:
        return _ARABIC_BASE[char]
    base = "".join(c for c in unicodedata.normalize("NFKD", char) if not unicodedata.combining(c)).lower()
    if len(base) == 1 and (base.isascii() or base.isalpha()):
        return " " if base in _SPACED else _ARABIC_BASE.get(base, base)  # （ is (; ئ is ى with a hamza: ي
    return char.lower() if char.isalpha() and len(char.lower()) == 1 else " "


# Every Latin-1 byte to its ASCII fold: one bytes.translate folds most releases at C speed.
_LATIN_1_FOLD = bytes(ord(f) if f.isascii() else 32 for f in map(_fold_char, map(chr, range(256))))


def fold_latin_1(text: str) -> str | None:
    """The folded copy of a text within Latin-1 (after typography), at C speed; else None."""
    for _ in range(2):
        try:
            return text.encode("latin-1").translate(_LATIN_1_FOLD).decode("latin-1")
        except UnicodeEncodeError as exc:
            if text[exc.start] not in _TYPOGRAPHY:  # Arabic, Cyrillic…: known at the first letter
                return None
        for char in _TYPOGRAPHY:
            text = text.replace(char, " ")
    return None


def fold_text(text: str) -> str:
    """The folded copy: lower case, no accents, separators as spaces; as long as ``text``.

    ``text`` is expected in NFC (é as one letter, not e + ´), as match_flags gives it.
    """
    folded = fold_latin_1(text)
    return fold_wide(text) if folded is None else folded


def fold_wide(text: str) -> str:
    """fold_text for a text beyond Latin-1 (fold_latin_1 gave None)."""
    arabic = _has(text, _ARABIC_LEADS, _ARABIC)
    if arabic and _MARKS.search(text):
        text = _close_up_words(text)
    text = _fold_characters(text)
    if not arabic:
        return text
    text = " " + text  # so that the first word follows a space too
    for article, spaces in _ARTICLES:
        text = text.replace(article, spaces)
    return text[1:]


def _fold_characters(text: str) -> str:
    """Each character to its fold; in a Cyrillic or Arabic code page, at C speed."""
    for codepage, table, unsafe in _CODE_PAGES:
        try:
            encoded = text.encode(codepage)
        except UnicodeEncodeError:
            continue
        if not any(byte in encoded for byte in unsafe):
            return encoded.translate(table).decode(codepage)
    for char in set(_FOLDED.findall(text)):  # punctuation, Ł, Ω, й, أ, ★…: what folding changes
        text = text.replace(char, _fold_char(char))
    return text.lower()  # what is left lowers one to one: A-Z, А-Я


def _code_page(codepage: str) -> tuple[str, bytes, tuple[bytes, ...]]:
    """A byte table that folds a text in this code page as _fold_characters' slow path does,
    and the bytes whose fold is not in the code page (µ is Greek μ)."""
    table, unsafe = bytearray(range(256)), []
    for byte in range(256):
        try:
            char = bytes([byte]).decode(codepage)
        except UnicodeDecodeError:
            continue  # never in an encoded text
        folded = (char if _FOLDED.match(char) is None else _fold_char(char)).lower()
        try:
            (table[byte],) = folded.encode(codepage)
        except (UnicodeEncodeError, ValueError):
            unsafe.append(bytes([byte]))
    return codepage, bytes(table), tuple(unsafe)


def _close_up_words(text: str) -> str:
    """Each Arabic word with marks without them, then as many spaces: the same length.

    Marks are few, so each is looked at from where it is (a regex tried at every letter
    would cost more than the rest of the fold).
    """
    parts, done = [], 0
    for mark in _MARKS.finditer(text):
        if mark.start() < done:
            continue  # in a word already closed up
        start = mark.start()
        while start > done and text[start - 1] in _ARABIC_WORD_CHARS:
            start -= 1
        end = mark.end()
        while end < len(text) and text[end] in _ARABIC_WORD_CHARS:
            end += 1
        word = text[start:end]
        letters = _MARKS.sub("", word)
        parts += [text[done:start], letters, " " * (len(word) - len(letters))]
        done = end
    return "".join(parts) + text[done:]


_ARABIC_WORD_CHARS = frozenset(
    chr(code) for code in (*range(0x0621, 0x064B), *range(0x066E, 0x06D4), 0x0640, *range(0x064B, 0x0660), 0x0670)
)


def has_unspaced(text: str) -> bool:
    """Whether some characters of ``text`` are words by themselves (Chinese, Japanese)."""
    return _has(text, _UNSPACED_LEADS, _UNSPACED)


# The first bytes of those characters in UTF-8: a bytes search for them is much faster than a
# regex over the whole text (a Russian release has no Arabic letter and no Chinese one).
_ARABIC_LEADS = (b"\xd8", b"\xd9", b"\xda", b"\xdb")  # U+0600 to U+06FF
_UNSPACED_LEADS = (b"\xe3", b"\xe4", b"\xe5", b"\xe6", b"\xe7", b"\xe8", b"\xe9", b"\xef")  # U+3000-U+9FFF, U+F000-


def _has(text: str, leads: tuple[bytes, ...], letters: re.Pattern[str]) -> bool:
    encoded = text.encode("utf-8", "surrogatepass")
    return any(lead in encoded for lead in leads) and letters.search(text) is not None


# Russian and Arabic releases fit in these (Arabic with French accents); a release that
# does not, or mixes scripts, takes the slow path.
_CODE_PAGES = (_code_page("cp1251"), _code_page("cp1256"))
