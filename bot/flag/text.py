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
    folded = _latin_1(text)
    return folded if isinstance(folded, str) else None


def fold_parts(parts: list[str]) -> tuple[list[str], str, str, bool]:
    """The parts of a release (NFC beyond Latin-1), joined by blank lines, the folded copy,
    and whether some of its characters are words by themselves (Chinese, Japanese)."""
    text = "\n\n".join(parts)
    folded = _latin_1(text)
    if isinstance(folded, str):
        return parts, text, folded, False
    script = text[folded]  # the first letter beyond Latin-1 says which path to try first
    parts = [unicodedata.normalize("NFC", part) for part in parts]  # é as e + ´ must be one letter
    text = "\n\n".join(parts)
    if "\u0600" <= script <= "\u06ff":
        return parts, text, *_fold_arabic(text)
    if _UNSPACED.match(script):
        return parts, text, *_fold_any(text)
    return parts, text, *fold_wide(text)


def _latin_1(text: str) -> str | int:
    """fold_latin_1, or where the first character beyond Latin-1 and typography is."""
    for _ in range(2):
        try:
            return text.encode("latin-1").translate(_LATIN_1_FOLD).decode("latin-1")
        except UnicodeEncodeError as exc:
            if text[exc.start] not in _TYPOGRAPHY:  # Arabic, Cyrillic…: known at the first letter
                return exc.start
        for char in _TYPOGRAPHY:
            text = text.replace(char, " ")
    raise AssertionError("unreachable: typography is gone after the first pass")


def fold_text(text: str) -> str:
    """The folded copy: lower case, no accents, separators as spaces; as long as ``text``.

    ``text`` is expected in NFC (é as one letter, not e + ´), as match_flags gives it.
    """
    folded = fold_latin_1(text)
    return fold_wide(text)[0] if folded is None else folded


def fold_wide(text: str) -> tuple[str, bool]:
    """fold_text for a text beyond Latin-1 (fold_latin_1 gave None), and whether some of its
    characters are words by themselves (Chinese, Japanese)."""
    # Most such releases are Russian or Arabic. A text that fits in cp1251 has no Arabic or
    # Chinese, one in cp1256 no Cyrillic or Chinese: the code page tells which scripts are
    # there and folds the text at C speed, as the general path would (_code_page).
    try:
        encoded = text.encode("cp1251")
    except UnicodeEncodeError as exc:
        if "\u0600" <= text[exc.start] <= "\u06ff":
            return _fold_arabic(text)
        return _fold_any(text)
    if _CP1251[2][0] in encoded:
        return _fold_any(text)
    return encoded.translate(_CP1251[1]).decode("cp1251"), False


def _fold_arabic(text: str) -> tuple[str, bool]:
    """fold_wide for a text whose first letter beyond cp1251 is Arabic."""
    try:
        encoded = text.encode("cp1256")
    except UnicodeEncodeError:
        return _fold_any(text)
    if _CP1256[2][0] in encoded or _ARABIC.search(text) is None:
        return _fold_any(text)
    if _MARKS.search(text):
        encoded = _close_up_words(text).encode("cp1256")
    folded = b" " + encoded.translate(_CP1256[1])  # so that the first word follows a space too
    for article, spaces in _ARTICLE_BYTES:  # one byte a letter: the same replacements, faster
        folded = folded.replace(article, spaces)
    return folded[1:].decode("cp1256"), False  # no Chinese in cp1256


def _fold_any(text: str) -> tuple[str, bool]:
    """fold_wide for any text: Chinese, mixed scripts, a character beyond the code pages."""
    # Which scripts are there, from the first bytes of their characters in UTF-8: a bytes
    # search is much faster than a regex over the whole text.
    utf8 = text.encode("utf-8", "surrogatepass")
    unspaced = any(lead in utf8 for lead in _UNSPACED_LEADS) and _UNSPACED.search(text) is not None
    arabic = any(lead in utf8 for lead in _ARABIC_LEADS) and _ARABIC.search(text) is not None
    if arabic and _MARKS.search(text):
        text = _close_up_words(text)
    codepage = None
    if not unspaced:
        codepage = _CP1256 if arabic else _CP1251 if any(lead in utf8 for lead in _CYRILLIC_LEADS) else None
    text = _fold_characters(text, codepage)
    if not arabic:
        return text, unspaced
    text = " " + text  # so that the first word follows a space too
    for article, spaces in _ARTICLES:
        text = text.replace(article, spaces)
    return text[1:], unspaced


def _fold_characters(text: str, codepage: tuple[str, bytes, tuple[bytes, ...]] | None) -> str:
    """Each character to its fold; in a Cyrillic or Arabic code page, at C speed."""
    if codepage is not None:
        name, table, unsafe = codepage
        try:
            encoded = text.encode(name)
        except UnicodeEncodeError:  # another script too: the slow path
            pass
        else:
            if not any(byte in encoded for byte in unsafe):
                return encoded.translate(table).decode(name)
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


# Russian and Arabic releases fit in these (Arabic with French accents); one that does not
# takes the slow path.
_CP1251, _CP1256 = _code_page("cp1251"), _code_page("cp1256")
_ARTICLE_BYTES = tuple((article.encode("cp1256"), spaces.encode()) for article, spaces in _ARTICLES)


def _close_up_words(text: str) -> str:
    """Each Arabic word with marks without them, then as many spaces: the same length.

    Marks are few, so each is looked at from where it is (a regex tried at every letter
    would cost more than the rest of the fold): its word runs right in the text and left in
    the text reversed.
    """
    parts, done, reversed_text = [], 0, text[::-1]
    for mark in _MARKS.finditer(text):
        if mark.start() < done:
            continue  # in a word already closed up
        before = _WORD_RUN.match(reversed_text, len(text) - mark.start())
        start = max(done, mark.start() - (before.end() - before.start()) if before else mark.start())
        after = _WORD_RUN.match(text, mark.end())
        end = after.end() if after else mark.end()
        word = text[start:end]
        letters = _MARKS.sub("", word)
        parts += [text[done:start], letters, " " * (len(word) - len(letters))]
        done = end
    return "".join(parts) + text[done:]


# The characters of an Arabic word: its letters, tatweel and its marks (not Quranic ones).
_WORD_RUN = re.compile("[\u0621-\u065f\u066e-\u06d3\u0670]+")


# The first bytes in UTF-8 of the characters of a script.
_ARABIC_LEADS = (b"\xd8", b"\xd9", b"\xda", b"\xdb")  # U+0600 to U+06FF
_CYRILLIC_LEADS = (b"\xd0", b"\xd1", b"\xd2", b"\xd3")  # U+0400 to U+04FF
_UNSPACED_LEADS = (b"\xe3", b"\xe4", b"\xe5", b"\xe6", b"\xe7", b"\xe8", b"\xe9", b"\xef")  # U+3000-U+9FFF, U+F000-
