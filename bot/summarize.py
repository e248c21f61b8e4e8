"""Summary: the release's lede in two or three sentences, for Slack and ``query``.

Pure and extractive: the summary is the first sentences of the release that are
news, so it is in the release's own language. What is skipped: headings and date
lines, the title repeated, share and "read more" buttons, photo credits, contact
lines (e-mail, phone) and the "For inquiries, please contact" tail, in English,
French and Spanish. Sentences are split by pysbd, with a repair pass for the
abbreviations it misses in French and Spanish ("art. 5", "Sr. García").

A summary costs about ten times a language (1.4–1.5 ms a release against 0.13–0.15 ms,
issue 16): a pass makes it only for the releases Slack shows, the others' on first read
(bot.summaries).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Iterator
from difflib import SequenceMatcher
from functools import lru_cache

import pysbd
from pysbd.languages import LANGUAGE_CODES

MAX_SENTENCES = 3
# The lede is at the top: reading further costs time (pysbd is quadratic in a paragraph's
# length: a 1 MB release took minutes, issue 14) and finds nothing a summary would use.
MAX_SCAN_CHARS = 20_000
MAX_PARAGRAPH_CHARS = 3_000  # a summary is 400 characters; a longer "paragraph" is a list or a wall
MIN_FRAGMENT_CHARS = 40  # less room than this for a cut second sentence: one sentence is clearer
MIN_SENTENCE_WORDS = 3
ELLIPSIS = "…"

WHITESPACE = re.compile(r"\s+")
MARKDOWN_LINK = re.compile(r"!?\[([^\]]*)\]\([^)\s]*\)")
AUTOLINK = re.compile(r"<(?:https?|mailto):[^>\s]+>")
FOOTNOTE_MARK = re.compile(r"\[\d{1,3}\]")
# Headings, bylines, labels and buttons do not end like a sentence.
TERMINAL = re.compile(r"[.!?…][\"'’”»)\]]*$")
EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
SOCIAL_HANDLE = re.compile(r"(?:^|\s)@\w{2,}")
PHONE = re.compile(
    r"(?:\+|\b00)\d[\d\s().-]{6,}\d"
    r"|\b(?:tel|tél|phone|mobile|cell|fax|teléfono|tlf|móvil|portable)\b\.?\s*:?\s*\+?\(?\d",
    re.IGNORECASE,
)

_MONTHS = (
    "jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|sept?(?:ember)?"
    "|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?"
    "|janvier|février|fevrier|mars|avril|mai|juin|juillet|août|aout|septembre|octobre|novembre|décembre"
    "|enero|febrero|marzo|abril|mayo|junio|julio|agosto|se?ptiembre|octubre|noviembre|diciembre"
)
_WEEKDAYS = (
    "monday|tuesday|wednesday|thursday|friday|saturday|sunday"
    "|lundi|mardi|mercredi|jeudi|vendredi|samedi|dimanche"
    "|lunes|martes|miércoles|jueves|viernes|sábado|domingo"
)
DATE = (
    rf"(?:(?:{_WEEKDAYS}),?\s+)?"
    r"(?:\d{1,2}[./-]\d{1,2}[./-]\d{2,4}|\d{4}-\d{2}-\d{2}"
    rf"|\d{{1,2}}(?:st|nd|rd|th|er)?\s+(?:de\s+)?(?:{_MONTHS})\.?,?\s+(?:de(?:l)?\s+)?\d{{4}}"
    rf"|(?:{_MONTHS})\.?\s+\d{{1,2}}(?:st|nd|rd|th)?,?\s+\d{{4}})"
)
DATE_LINE = re.compile(
    r"^(?:(?:published|posted|updated|last updated|date|publié|mis à jour|publicado|actualizado|fecha)"
    rf"(?:\s+(?:on|le|el))?\s*:?\s*)?{DATE}(?:\s*[|,–—-]?\s*\d{{1,2}}[:h.]\d{{2}}\s*(?:am|pm)?)?\W*$",
    re.IGNORECASE,
)
# "GENEVA (15 March 2019) – The UN…", "Paris, La Haye, le 3 juin 2025 – La FIDH…",
# "Ginebra, 3 de mayo de 2024.- La ONU…", "20.03.2019 Threats…"
DATELINE = re.compile(
    rf"^(?:[A-ZÀ-Ý][\w'’., -]{{1,60}}?\s*[,(]\s*)?\(?(?:(?:le|el|the|on)\s+)?{DATE}\)?"
    r"\s*(?:[.:]?\s*[-–—]+|[.:,])?\s*"
    r"(?=(?-i:[A-ZÀ-Ý«“\"‘']))",
    re.IGNORECASE,
)

# Buttons, captions and links around a release: skipped wherever they are.
SKIP = re.compile(
    r"^\W*(?:"
    r"share(?:\s+(?:this|on|via)\b.*)?$|tweet\b|print\b|e-?mail this\b|read (?:more|the full|also)\b"
    r"|more information(?:\s+(?:here|is available|on)\b)?|(?:click|see) here\b|see also\b"
    r"|(?:photo|image|picture|video|caption)s?\s*(?:credit\s*)?[:©]|credits?\s*:|©|copyright\b"
    r"|follow us\b|sign up\b|subscribe\b|download\b|related\b|tags?\s*:|(?:last\s+)?updated\b"
    r"|partager\b|lire (?:la suite|aussi|plus)\b|(?:à|a) lire (?:aussi|également)\b|en savoir plus\b"
    r"|crédits?(?:\s+photo)?\s*:|suivez[- ]nous\b|publié le\b|mis à jour\b|voir aussi\b|télécharger\b"
    r"|imprimer\b|abonnez[- ]vous\b"
    r"|compart(?:ir|e)\b|(?:leer|lee|lea|seguir leyendo)\s+(?:más|mas|también)\b|más información\b"
    r"|foto\s*:|síguenos\b|publicado (?:el|en)\b|actualizado\b|ver también\b|descargar\b|imprimir\b"
    r"|suscríbete\b"
    r")",
    re.IGNORECASE,
)
# The tail of a release (contacts, notes to editors, background): past it, no lede.
TAIL = re.compile(
    r"^\W*(?:"
    r"for (?:media |press |all |further |more )?(?:inquiries|enquiries|information|details)\b"
    r"|(?:media|press) (?:contacts?|inquiries|enquiries|office)\b|contacts?\s*:"
    r"|notes? (?:to|for) (?:the )?editors?\b"
    r"|(?:background|about us)\s*:?$"
    r"|pour (?:toute |plus d['’]|de plus amples |en savoir plus)|plus d['’]informations?\b"
    r"|contacts? (?:presse|médias?)\b|(?:contexte|notes? aux (?:rédactions|rédacteurs|éditeurs))\s*:?$"
    r"|para (?:más|mayor|obtener más) información\b"
    r"|contactos? (?:de prensa|para (?:los )?medios|con (?:los )?medios)\b"
    r"|(?:antecedentes|contexto|notas? (?:para|a) (?:los )?editores)\s*:?$"
    r")",
    re.IGNORECASE,
)

# Words pysbd may end a sentence on although a name always follows (case-sensitive: "me." ends
# English sentences, "Me" is a French lawyer's title).
TITLES = frozenset(
    ("Mr", "Mrs", "Ms", "Dr", "Prof", "Sr", "Sra", "Srta", "Dra", "Dres", "Mme", "Mlle", "MM", "M", "Me",
     "Hon", "Rev", "Gen", "Sen", "Lt", "Col", "Capt", "Sgt", "Gov", "Pres")
)  # fmt: skip
# Words that are followed by a number: "art. 7", "No. 10", "núm. 36".
BEFORE_NUMBER = frozenset(
    ("art", "arts", "no", "nos", "nº", "n°", "núm", "p", "pp", "para", "paras", "vol", "ch", "cap", "sec")
)
# The word before a final full stop, after any elision ("l’art." → "art").
LAST_WORD = re.compile(r"(?:^|[\s(«“\"'’])([^\s(«“\"'’]+)\.$")
# What _key drops: \w is str.isalnum() plus "_" (re docs), so this keeps letters and digits.
NOT_ALNUM = re.compile(r"[\W_]+")


def release_text(teaser: str, content: str, full_text: str | None) -> str:
    """What the summary is made from: the page's text only when it says more than the feed."""
    feed_text = content or teaser
    return full_text if full_text and len(full_text) > len(feed_text) else feed_text


def summary_of(title: str, teaser: str, content: str, full_text: str | None, language: str | None) -> str:
    """A stored release's summary ("" when its text has no lede), in a pass and on first read alike."""
    return summarize(release_text(teaser, content, full_text), title=title, language=language)


def summarize(text: str, *, title: str = "", language: str | None = None, max_chars: int = 400) -> str:
    """The lede of ``text``: 2–3 sentences, at most ``max_chars`` characters ("" if none).

    When the first sentence leaves too little room for a whole second one, the second
    is cut at a word boundary and ends with "…"; a first sentence longer than
    ``max_chars`` is cut the same way.
    """
    segmenter = _segmenter(_pysbd_language(language))
    text = _head(text, MAX_SCAN_CHARS)
    chosen = _fit(_lede_sentences(text, title, segmenter, prose_only=True), max_chars)
    if not chosen:
        # A teaser cut off mid-sentence by its feed has no paragraph that ends like one.
        chosen = _fit(_lede_sentences(text, title, segmenter, prose_only=False), max_chars)
    return " ".join(chosen)


def _lede_sentences(text: str, title: str, segmenter: pysbd.Segmenter, *, prose_only: bool) -> Iterator[str]:
    paragraphs = [_drop_title(paragraph, title) for paragraph in _paragraphs(_strip_markup(text))]
    repeated = {key for key, count in Counter(map(_key, paragraphs)).items() if count > 1}
    seen = False
    for paragraph in paragraphs:
        if _is_tail(paragraph):
            if seen:
                return
            continue
        if _key(paragraph) in repeated or _same_text(paragraph, title) or DATE_LINE.match(paragraph):
            continue
        if prose_only and not TERMINAL.search(paragraph):
            continue
        for sentence in _sentences(paragraph, segmenter):
            if _is_tail(sentence) and seen:
                return
            if _is_lede(sentence, title):
                seen = True
                yield sentence


def _fit(sentences: Iterable[str], max_chars: int) -> list[str]:
    chosen: list[str] = []
    used = 0
    for sentence in sentences:
        gap = 1 if chosen else 0
        if used + gap + len(sentence) <= max_chars:
            chosen.append(sentence)
            used += gap + len(sentence)
        else:
            room = max_chars - used - gap
            if len(chosen) < 2 and (room >= MIN_FRAGMENT_CHARS or not chosen):
                chosen.append(_cut(sentence, room))
            break
        if len(chosen) == MAX_SENTENCES:
            break
    return chosen


def _cut(sentence: str, room: int) -> str:
    """Cut at the last word boundary that leaves room for the ellipsis."""
    head = sentence[: max(room - len(ELLIPSIS), 0) + 1]
    head = head[: head.rfind(" ")] if " " in head else head[: room - len(ELLIPSIS)]
    return head.rstrip(" ,;:–—-(") + ELLIPSIS


def _head(text: str, limit: int) -> str:
    """At most ``limit`` characters from the start, ending at a paragraph or sentence end if one is near."""
    if len(text) <= limit:
        return text
    head = text[:limit]
    for boundary in ("\n\n", ". ", "\n"):
        end = head.rfind(boundary)
        if end > limit // 2:
            return head[: end + 1]
    return head


def _strip_markup(text: str) -> str:
    """Markdown links and footnote marks that scraped releases carry ("[letter](#)", "[1]")."""
    text = MARKDOWN_LINK.sub(r"\1", text)
    text = AUTOLINK.sub("", text)
    return FOOTNOTE_MARK.sub("", text).replace("\u00ad", "")


def _paragraphs(text: str) -> list[str]:
    """Blank lines separate paragraphs; a single line break is one too after a full stop.

    Other single line breaks are soft (text wrapped mid-sentence).
    """
    paragraphs: list[str] = []
    for block in re.split(r"\n\s*\n", text):
        current: list[str] = []
        for line in block.splitlines():
            current.append(line)
            if TERMINAL.search(line.rstrip()):
                paragraphs.append(WHITESPACE.sub(" ", " ".join(current)).strip())
                current = []
        paragraphs.append(WHITESPACE.sub(" ", " ".join(current)).strip())
    return [_head(paragraph, MAX_PARAGRAPH_CHARS).strip() for paragraph in paragraphs if paragraph]


def _key(text: str) -> str:
    return NOT_ALNUM.sub("", text.casefold())


def _is_tail(text: str) -> bool:
    return bool(TAIL.match(text))


def _same_text(text: str, title: str) -> bool:
    if not title:
        return False
    text_key, title_key = _key(text), _key(title)
    if text_key == title_key:
        return True
    matcher = SequenceMatcher(None, text_key, title_key)
    # Cheaper upper bounds of ratio() first, as difflib.get_close_matches does: from the
    # lengths alone, then from the letters; ratio() itself is quadratic.
    return matcher.real_quick_ratio() >= 0.9 and matcher.quick_ratio() >= 0.9 and matcher.ratio() >= 0.9


def _drop_title(paragraph: str, title: str) -> str:
    """A title glued to the lede by a soft line break."""
    title = title.strip()
    if title and len(paragraph) > len(title) and paragraph.casefold().startswith(title.casefold()):
        return paragraph[len(title) :].lstrip(" .:–—-")
    return paragraph


def _is_lede(sentence: str, title: str) -> bool:
    return (
        len(sentence.split()) >= MIN_SENTENCE_WORDS
        and not SKIP.match(sentence)
        and not _is_tail(sentence)
        and not EMAIL.search(sentence)
        and not PHONE.search(sentence)
        and not SOCIAL_HANDLE.search(sentence)
        and not DATE_LINE.match(sentence)
        and not _same_text(sentence, title)
    )


def _sentences(paragraph: str, segmenter: pysbd.Segmenter) -> Iterator[str]:
    pieces = [piece.strip() for piece in segmenter.segment(paragraph)]
    merged: list[str] = []
    for piece in filter(None, pieces):
        if merged and _continues(merged[-1], piece):
            merged[-1] = f"{merged[-1]} {piece}"
        else:
            merged.append(piece)
    for index, sentence in enumerate(merged):
        yield DATELINE.sub("", sentence, count=1) if index == 0 else sentence


def _continues(previous: str, piece: str) -> bool:
    """Whether pysbd split after an abbreviation ("Sr. | García", "l'art. | 5")."""
    match = LAST_WORD.search(previous)
    if not match:
        return False
    word = match.group(1)
    if word in TITLES or (len(word) == 1 and word.isupper()):
        return True
    return word.casefold() in BEFORE_NUMBER and piece[:1].isdigit()


def _pysbd_language(language: str | None) -> str:
    code = (language or "en").split("-")[0].split("_")[0].lower()
    return code if code in LANGUAGE_CODES else "en"


@lru_cache(maxsize=16)
def _segmenter(language: str) -> pysbd.Segmenter:
    return pysbd.Segmenter(language=language, clean=False)
