"""Full text: fetch a release's page and keep only its main text.

Many UN and NGO feeds carry a teaser only, and the word that matters is often in
paragraph four, so items are completed from their page. Item links come from third
parties: pages are fetched through ``bot.http.get_page`` (resolved-address check on
every hop, size cap, deadline). A failure is data (``ArticleText.error``), never an
exception, so the pass stores and flags the item on what it has meanwhile.

trafilatura and htmldate cost +128 ms and 6 MB, more than a warm pass's own work, and
most passes read no page: the pass gets this stage from its entry point
(``bot.poll.PageStages``, loaded by ``bot.cli.stages``) when it first needs it.
"""

from __future__ import annotations

import asyncio
import codecs
import logging
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from email.message import Message
from typing import Any
from urllib.parse import urljoin

import httpx
import lxml.html
import trafilatura
from htmldate import find_date
from lxml import etree
from trafilatura.settings import Document

from bot.errors import FetchError
from bot.http import HostLimiter, get_page
from bot.language import normalize_language
from bot.records import ArticleText, ParsedItem
from bot.urls import http_url_parts

logger = logging.getLogger(__name__)

HTML_TYPES = frozenset({"text/html", "application/xhtml+xml", "text/plain", ""})
# The HTML standard prescans 1024 bytes for <meta charset>, but CMS pages often put
# long comments and scripts first (miniflux's iso-8859-1-meta-after-1024 case).
META_SCAN_BYTES = 65_536
META_CHARSET = re.compile(rb"""<meta\b[^>]*?charset\s*=\s*["']?\s*([A-Za-z0-9_:.-]+)""", re.IGNORECASE)
BOMS = ((codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"))
WALL_MAX_CHARS = 1500  # a release saying "access denied" is longer than any interstitial
WALL_PHRASES = re.compile(
    r"enable javascript and cookies|enable cookies|just a moment\.\.\.|checking (?:if the site connection is secure"
    r"|your browser)|verify(?:ing)? (?:that )?you are (?:a )?human|are you a robot|access denied|you don't have "
    r"permission to access|attention required|ddos protection by|please wait while we verify|request unsuccessful"
    r"|complete the captcha|pardon our interruption",
    re.IGNORECASE,
)
WHITESPACE = re.compile(r"\s+")
# trafilatura discards site chrome by English class names (share, related, newsletter…);
# French and Spanish CMS themes name theirs in their own language.
CHROME_TOKENS = (
    "partage", "compartir", "lire-aussi", "a-lire", "articles-lies", "relacionad", "infolettre",
    "lettre-info", "boletin", "suscrip", "abonnement", "pied-de-page", "pie-de-pagina", "fil-ariane",
    "miga-de-pan", "mas-leido", "barra-lateral",
)  # fmt: skip
PRUNE_XPATH = [f"//*[contains(@class, '{token}') or contains(@id, '{token}')]" for token in CHROME_TOKENS]


async def fetch_articles(
    client: httpx.AsyncClient,
    items: Sequence[ParsedItem],
    *,
    max_bytes: int,
    allow_private: bool,
    concurrency: int,
    host_limiter: HostLimiter | None = None,
    max_redirects: int = 5,
    deadline_seconds: float = 60.0,
    gate: asyncio.Semaphore | None = None,
    metadata: bool = False,
    on_fetched: Callable[[], None] | None = None,
) -> dict[str, ArticleText]:
    """Fetch and extract each item's page, ``concurrency`` at a time; keyed by ``item.key``.

    Items without a link are left out. Every other item gets an ``ArticleText``:
    ``text`` on success, ``error`` (one line) on any failure. Pass one ``gate`` to
    calls running at once (one per feed) so that together they stay within bounds:
    the deadline of a page starts only when it passes the gate. ``metadata`` also reads
    each page's canonical URL, title, original date and language (a listing's releases).
    ``on_fetched`` is called once each page is done, whatever its outcome.
    """
    gate = gate or asyncio.Semaphore(concurrency)

    async def one(item: ParsedItem, url: str) -> tuple[str, ArticleText]:
        async with gate:
            article = await fetch_article(
                client,
                url,
                max_bytes=max_bytes,
                allow_private=allow_private,
                host_limiter=host_limiter,
                max_redirects=max_redirects,
                deadline_seconds=deadline_seconds,
                metadata=metadata,
            )
        if on_fetched is not None:
            on_fetched()
        return item.key, article

    jobs = [one(item, item.url) for item in items if item.url]
    return dict(await asyncio.gather(*jobs))


async def fetch_article(
    client: httpx.AsyncClient,
    url: str,
    *,
    max_bytes: int,
    allow_private: bool,
    host_limiter: HostLimiter | None = None,
    max_redirects: int = 5,
    deadline_seconds: float = 60.0,
    metadata: bool = False,
) -> ArticleText:
    """One page → its main text (and with ``metadata`` what else it says of itself), or the
    reason there is none."""
    try:
        page = await get_page(
            client,
            url,
            max_bytes=max_bytes,
            allow_private=allow_private,
            max_redirects=max_redirects,
            host_limiter=host_limiter,
            headers={"Accept": "text/html,application/xhtml+xml;q=0.9,*/*;q=0.5"},
            deadline_seconds=deadline_seconds,
        )
    except FetchError as exc:
        logger.info("article %s: %s", url, exc)
        return ArticleText(url=url, text=None, error=str(exc))
    if not 200 <= page.status < 300:
        return ArticleText(url=url, text=None, error=f"HTTP {page.status}")
    media_type, charset = _content_type(page.headers.get("content-type", ""))
    if media_type not in HTML_TYPES:
        return ArticleText(url=url, text=None, error=f"not an HTML page ({media_type})")
    # trafilatura is CPU-bound (lxml + heuristics): keep the event loop serving other fetches.
    text = await asyncio.to_thread(extract_text, page.body, page.final_url, charset=charset)
    if not text:
        return ArticleText(url=url, text=None, error="no article text found on the page")
    if looks_like_wall(text):
        return ArticleText(url=url, text=None, error="the page is a bot wall or cookie interstitial, not the release")
    article = ArticleText(url=url, text=text)
    if metadata:
        article = await asyncio.to_thread(add_page_metadata, article, page.body, page.final_url, charset)
    return article


def add_page_metadata(article: ArticleText, html: bytes, url: str, charset: str | None = None) -> ArticleText:
    """The page's canonical URL, title (og:title, else <h1>), original date and language.

    The date is the *original* publication date (htmldate, ``original_date=True``): a
    release page's modified date would make an old statement look new.
    """
    try:
        root = lxml.html.document_fromstring(decode_html(html, charset))
    except (ValueError, etree.LxmlError):
        return article
    article = replace(
        article,
        canonical_url=_canonical(root, url),
        title=_meta(root, "og:title") or _first_text(root, "h1"),
        language=normalize_language(root.get("lang")),
    )
    # Last: htmldate cleans the tree it is given.
    found = find_date(root, url=url, original_date=True, extensive_search=False, outputformat="%Y-%m-%dT%H:%M:%S%z")
    return replace(article, published=_aware(found))


def _canonical(root: Any, url: str) -> str | None:
    for link in root.iter("link"):
        if "canonical" in (link.get("rel") or "").lower().split() and (link.get("href") or "").strip():
            canonical = urljoin(url, link.get("href").strip()).split("#", 1)[0]
            return canonical if http_url_parts(canonical) is not None else None
    return None


def _meta(root: Any, name: str) -> str | None:
    for meta in root.iter("meta"):
        if name in ((meta.get("property") or "").lower(), (meta.get("name") or "").lower()):
            content = WHITESPACE.sub(" ", meta.get("content") or "").strip()
            if content:
                return content
    return None


def _first_text(root: Any, tag: str) -> str | None:
    for element in root.iter(tag):
        text = WHITESPACE.sub(" ", element.text_content()).strip()
        if text:
            return text
    return None


def _aware(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    # A date without a time comes back naive: midnight UTC.
    return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)


def looks_like_wall(text: str) -> bool:
    """A challenge, cookie or refusal page served in place of the release (Cloudflare's
    "Just a moment…", "Please enable JavaScript and cookies", Akamai's "Access Denied"):
    short, and saying so. Its text replaced good teasers in Slack (issue 14)."""
    return len(text) <= WALL_MAX_CHARS and bool(WALL_PHRASES.search(text))


def _content_type(header: str) -> tuple[str, str | None]:
    """'text/html; charset=ISO-8859-1' → ('text/html', 'ISO-8859-1')."""
    if not header.strip():
        return "", None
    message = Message()
    message["content-type"] = header
    charset = message.get_param("charset")
    return message.get_content_type(), charset if isinstance(charset, str) else None


def extract_text(html: bytes, url: str | None = None, *, charset: str | None = None) -> str | None:
    """The main text of an article page: paragraphs separated by blank lines, or None.

    ``charset`` is the one the HTTP Content-Type named, if any. Navigation, cookie
    banners, share buttons, footers and comments are left out (trafilatura).
    """
    try:
        document = trafilatura.bare_extraction(
            decode_html(html, charset),
            url=url,
            include_comments=False,
            include_images=False,
            include_links=False,
            with_metadata=False,
            prune_xpath=PRUNE_XPATH,
        )
    except (ValueError, etree.LxmlError) as exc:
        logger.info("article %s: extraction failed: %s", url, exc)
        return None
    if not isinstance(document, Document) or document.body is None:
        return None
    text = "\n\n".join(_paragraphs(document.body))
    return text or None


def decode_html(html: bytes, charset: str | None = None) -> str | bytes:
    """Bytes → text: BOM, valid UTF-8, then the declared charset (HTTP, then <meta>).

    Valid UTF-8 wins over a declaration because servers and templates often declare
    ISO-8859-1 for UTF-8 bytes, while latin-1 text is practically never valid UTF-8.
    With nothing declared, the bytes are left to trafilatura's detector.
    """
    for bom, encoding in BOMS:
        if html.startswith(bom):
            return html.decode(encoding, errors="replace")
    try:
        return html.decode("utf-8")
    except UnicodeDecodeError:
        pass
    for declared in (charset, _meta_charset(html)):
        known = _known_encoding(declared)
        if known:
            return html.decode(known, errors="replace")
    return html


def _meta_charset(html: bytes) -> str | None:
    match = META_CHARSET.search(html, 0, META_SCAN_BYTES)
    return match.group(1).decode("ascii") if match else None


def _known_encoding(name: str | None) -> str | None:
    if not name:
        return None
    try:
        encoding = codecs.lookup(name.strip().strip("\"'")).name
    except LookupError:
        return None
    # The HTML standard maps latin-1 labels to windows-1252 (its superset with curly quotes),
    # and a UTF-16 label on bytes that are not UTF-16 to UTF-8.
    if encoding in ("latin-1", "iso8859-1", "ascii"):
        return "cp1252"
    return None if encoding.startswith("utf-16") else encoding


def _paragraphs(body: etree._Element) -> Iterator[str]:
    """trafilatura's XML body → one string per paragraph, heading, list item or table row."""
    for element in body:
        if element.tag == "list":
            parts = [_flat(item) for item in element.iter("item")]
        elif element.tag == "table":
            parts = [" | ".join(filter(None, map(_flat, row.iter("cell")))) for row in element.iter("row")]
        else:
            parts = [_flat(element)]
        yield from (part for part in parts if part)


def _flat(element: etree._Element) -> str:
    return WHITESPACE.sub(" ", " ".join(element.itertext())).strip()
