"""Article pages → main text, over a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from bot.fulltext import decode_html, extract_text, fetch_articles
from bot.http import make_client
from bot.language import detect_language
from bot.poll import needs_full_text
from bot.records import ArticleText, ParsedItem
from tests.feedserver import FeedServer

PAGES = Path(__file__).parent / "pages"


def item(key: str, url: str | None, content: str = "", teaser: str = "") -> ParsedItem:
    return ParsedItem(key=key, url=url, title=key, teaser=teaser, content=content, published=None, updated=None)


def fetch(
    items: Sequence[ParsedItem],
    *,
    allow_private: bool = True,
    max_bytes: int = 1_000_000,
    timeout: float = 2.0,
    **options: Any,
) -> dict[str, ArticleText]:
    async def run() -> dict[str, ArticleText]:
        client = make_client(timeout=timeout, connect_timeout=1.0, concurrency=4, allow_private=allow_private)
        async with client:
            return await fetch_articles(
                client,
                items,
                max_bytes=max_bytes,
                allow_private=allow_private,
                concurrency=4,
                **options,
            )

    return asyncio.run(run())


@dataclass(frozen=True)
class PageCase:
    file: str
    content_type: str
    body: tuple[str, ...]  # phrases of the release's own paragraphs
    chrome: tuple[str, ...]  # navigation, cookie banner, share buttons, related, newsletter, footer


PAGE_CASES = [
    PageCase(
        "en_release.html",
        "text/html; charset=utf-8",
        body=(
            "Valdoria must immediately release three human rights defenders",
            "held without charge for eleven days",
            "‘Detaining people for speaking to a UN treaty body is a textbook case of intimidation,’",
            # the flag phrase is only in paragraph four, never in a title or teaser
            "pattern of reprisals against the lawyers of the Valdoria Bar Association",
        ),
        chrome=(
            "We use cookies", "Accept all cookies", "Manage preferences", "About us", "What we do",
            "Donate now", "Search the site", "Français", "Share this", "LinkedIn", "Credit: ISHR",
            "Related news", "Eastmark: Human Rights Council", "Applications open",
            "Sign up to our newsletter", "delivered to your inbox", "Rue de Varembé", "Privacy policy",
            "Follow us", "All rights reserved",
        ),
    ),
    PageCase(
        # windows-1252 bytes, declared ISO-8859-1 in a <meta> past the first 1024 bytes,
        # and no charset in the HTTP header
        "fr_release.html",
        "text/html",
        body=(
            "demandent au Bureau du Procureur de la Cour pénale internationale",
            "« cesser de parler aux étrangers »",
            "Ces pratiques relèvent de l’intimidation et des représailles",
            "En vertu de l’art. 68 du Statut de Rome",
        ),
        chrome=(
            "Ce site utilise des cookies", "Tout accepter", "Qui sommes-nous", "Faire un don",
            "Communiqués de presse", "Partager", "Courriel", "À lire aussi", "Eastmark", "Plus de 1 500",
            "Abonnez-vous", "Recevez chaque mois", "passage de la Main d’Or", "Mentions légales",
            "Suivez-nous", "Tous droits réservés",
        ),
    ),
    PageCase(
        "es_release.html",
        "text/html; charset=utf-8",
        body=(
            "confirmó hoy los cargos por crímenes de lesa humanidad",
            "El Sr. Daniel Okafor, abogado de las víctimas",
            "varios testigos denunciaron represalias por su cooperación con la Fiscalía",
            "«Las víctimas de Zembara han demostrado una enorme valentía», afirmó.",
        ),
        chrome=(
            "Utilizamos cookies", "Aceptar todas", "Quiénes somos", "Transparencia", "Justicia internacional",
            "Compartir en", "WhatsApp", "Lo más leído", "Convocatoria", "Suscríbase", "Av. Los Sauces",
            "Aviso legal", "Síguenos", "Todos los derechos reservados",
        ),
    ),
]  # fmt: skip


@pytest.mark.parametrize("case", PAGE_CASES, ids=lambda case: case.file)
def test_fetch_articles_keeps_the_release_and_drops_the_site_around_it(feed_server: FeedServer, case: PageCase) -> None:
    url = feed_server.add("/news/release", (PAGES / case.file).read_bytes(), content_type=case.content_type)

    article = fetch([item("r1", url)])["r1"]

    assert article.error is None
    assert article.url == url
    assert article.text is not None
    for phrase in case.body:
        assert phrase in article.text
    leaked = [phrase for phrase in case.chrome if phrase in article.text]
    assert leaked == []
    assert "\n\n" in article.text and "\n\n\n" not in article.text
    assert "\ufffd" not in article.text and "Ã" not in article.text  # no mojibake


def test_fetch_articles_keys_by_item_and_leaves_out_items_without_link(feed_server: FeedServer) -> None:
    url = feed_server.add("/a", (PAGES / "en_release.html").read_bytes(), content_type="text/html")

    articles = fetch([item("with-link", url), item("no-link", None)])

    assert set(articles) == {"with-link"}


def test_huge_page_is_cut_off_and_the_others_are_still_fetched(feed_server: FeedServer) -> None:
    huge = feed_server.add("/huge", huge=60_000_000)  # streamed without Content-Length
    good = feed_server.add("/good", (PAGES / "es_release.html").read_bytes(), content_type="text/html")

    started = time.monotonic()
    articles = fetch([item("huge", huge), item("good", good)], max_bytes=1_000_000)

    assert time.monotonic() - started < 5
    assert articles["huge"].text is None
    assert "too large" in (articles["huge"].error or "")
    assert articles["good"].error is None


def test_page_that_never_finishes_is_cut_off_by_the_deadline(feed_server: FeedServer) -> None:
    trickle = feed_server.add("/trickle", trickle=True)  # a byte every 0.1 s: the read timeout never fires
    good = feed_server.add("/good", (PAGES / "en_release.html").read_bytes(), content_type="text/html")

    started = time.monotonic()
    articles = fetch([item("trickle", trickle), item("good", good)], deadline_seconds=1.0)

    assert time.monotonic() - started < 4
    assert articles["trickle"].text is None
    assert "timeout" in (articles["trickle"].error or "")
    assert articles["good"].error is None


def test_page_that_never_answers_times_out(feed_server: FeedServer) -> None:
    url = feed_server.add("/hang", (PAGES / "en_release.html").read_bytes(), hang=5.0)

    started = time.monotonic()
    article = fetch([item("hang", url)], timeout=0.5)["hang"]

    assert time.monotonic() - started < 3
    assert article.text is None
    assert "timeout" in (article.error or "").lower()


def test_link_to_loopback_is_refused_unless_private_networks_are_allowed(feed_server: FeedServer) -> None:
    url = feed_server.add("/a", (PAGES / "en_release.html").read_bytes(), content_type="text/html")

    article = fetch([item("local", url)], allow_private=False)["local"]

    assert article.text is None
    assert "refused" in (article.error or "")
    assert feed_server.hits["/a"] == 0  # not even one request reached the server


@pytest.mark.parametrize(
    ("route", "error"),
    [
        ({"body": b"gone", "status": 404, "content_type": "text/html"}, "HTTP 404"),
        ({"body": b"%PDF-1.7", "content_type": "application/pdf"}, "not an HTML page (application/pdf)"),
        ({"body": b"<html><body></body></html>", "content_type": "text/html"}, "no article text"),
    ],
    ids=["not-found", "pdf", "empty-page"],
)
def test_pages_without_article_text_are_recorded_as_errors(
    feed_server: FeedServer, route: dict[str, Any], error: str
) -> None:
    url = feed_server.add("/page", **route)

    article = fetch([item("x", url)])["x"]

    assert article.text is None
    assert error in (article.error or "")


@pytest.mark.parametrize(
    ("content", "feed_full_text", "teaser_chars", "url", "expected"),
    [
        ("", False, 400, "https://example.org/a", True),
        ("Short teaser.", False, 400, "https://example.org/a", True),
        ("x" * 400, False, 400, "https://example.org/a", False),
        ("x" * 5000, True, 400, "https://example.org/a", True),
        ("", True, 400, None, False),
        ("", False, 0, "https://example.org/a", False),
        ("   \n\n  " + "y" * 10 + "   ", False, 20, "https://example.org/a", True),
    ],
    ids=[
        "empty-content", "teaser", "long-content", "feed-says-full-text", "no-link", "rule-off",
        "whitespace-not-counted",
    ],
)  # fmt: skip
def test_needs_full_text(
    content: str, feed_full_text: bool, teaser_chars: int, url: str | None, expected: bool
) -> None:
    subject = item("k", url, content=content)

    assert needs_full_text(subject, feed_full_text=feed_full_text, teaser_chars=teaser_chars) is expected


def test_extract_text_reads_meta_charset_past_the_first_1024_bytes(shared: Path) -> None:
    page = shared / "corpus" / "feeds" / "page_latin1-meta-charset-after-1024-bytes.html"

    assert extract_text(page.read_bytes()) == "Café"


def test_extract_text_of_a_real_wikipedia_page_has_the_article_and_not_the_chrome(shared: Path) -> None:
    page = shared / "corpus" / "feeds" / "page_wikipedia-article-miniflux.html"

    text = extract_text(page.read_bytes(), "https://fr.wikipedia.org/wiki/Miniflux")

    assert text is not None
    assert "Miniflux est un agrégateur de flux RSS minimaliste." in text
    assert "Miniflux vérifie les en-têtes HTTP" in text
    for chrome in ("Aller au contenu", "Créer un compte", "Se connecter", "Menu principal", "Rechercher"):
        assert chrome not in text
    assert detect_language(text, None) == "fr"


def test_http_charset_is_used_when_the_page_declares_none() -> None:
    html = "<html><body><article><p>Représailles contre les défenseurs à Genève.</p></article></body></html>"

    text = extract_text(html.encode("cp1252"), charset="windows-1252")

    assert text == "Représailles contre les défenseurs à Genève."


def test_valid_utf8_wins_over_a_wrong_latin1_declaration() -> None:
    html = '<html><head><meta charset="iso-8859-1"></head><body><p>Ginebra – represalias</p></body></html>'

    assert decode_html(html.encode("utf-8")) == html


@pytest.mark.parametrize(
    ("text", "declared", "expected"),
    [
        ("Les experts de l’ONU ont condamné les représailles contre les défenseurs.", None, "fr"),
        ("Los expertos de la ONU condenaron las represalias contra los defensores.", "en", "es"),
        ("UN experts condemned the reprisals against defenders who cooperated with the UN.", "fr", "en"),
        ("Too short", "en-US", "en"),
        ("Trop court", "fr_FR", "fr"),
        ("", "ES", "es"),
        ("Too short", None, None),
        ("Too short", "not a language", None),
    ],
    ids=["fr", "es-over-declared", "en-over-declared", "short-declared-region", "underscore", "upper", "none",
         "junk-declared"],
)  # fmt: skip
def test_detect_language(text: str, declared: str | None, expected: str | None) -> None:
    assert detect_language(text, declared) == expected


def test_a_shared_gate_bounds_calls_running_at_once(feed_server: FeedServer) -> None:
    page = (PAGES / "en_release.html").read_bytes()
    urls = [feed_server.add(f"/slow{n}", page, content_type="text/html", hang=0.3) for n in range(4)]

    async def run() -> list[dict[str, ArticleText]]:
        gate = asyncio.Semaphore(1)
        async with make_client(timeout=2.0, connect_timeout=1.0, concurrency=4, allow_private=True) as client:
            calls = [
                fetch_articles(client, [item("k", url)], max_bytes=1_000_000, allow_private=True,
                               concurrency=4, gate=gate)
                for url in urls
            ]  # fmt: skip
            return await asyncio.gather(*calls)

    started = time.monotonic()
    results = asyncio.run(run())

    assert all(result["k"].error is None for result in results)
    assert time.monotonic() - started >= 4 * 0.3  # one page at a time across the four calls
