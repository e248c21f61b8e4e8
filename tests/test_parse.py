"""Parse stage: every dialect, item identity, links, dates, text, and what is not a feed."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.errors import ParseError
from bot.parse import html_to_text, parse_feed, source_key
from bot.records import ParsedFeed, ParsedItem
from tests.conftest import SHARED

CORPUS = SHARED / "corpus" / "feeds"
FEED_URL = "https://rights.example.org/feeds/press.xml"
XML = "application/xml"


def parse(body: str | bytes, url: str = FEED_URL, content_type: str | None = XML) -> ParsedFeed:
    data = body.encode() if isinstance(body, str) else body
    return parse_feed(data, url=url, content_type=content_type)


def assert_well_formed(feed: ParsedFeed) -> None:
    """What every later stage relies on, whatever the feed looked like."""
    for item in feed.items:
        assert isinstance(item, ParsedItem)
        assert item.key and isinstance(item.key, str) and len(item.key) <= 500
        assert all(isinstance(text, str) for text in (item.title, item.teaser, item.content))
        for moment in (item.published, item.updated):
            assert moment is None or moment.utcoffset() == UTC.utcoffset(None)
        assert item.url is None or urlsplit(item.url).scheme in ("http", "https")
        assert "<script" not in (item.title + item.teaser + item.content).lower()
    assert len({item.key for item in feed.items}) == len(feed.items)


def rss20(*items: str, channel: str = "") -> str:
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n<rss version="2.0" '
        'xmlns:content="http://purl.org/rss/1.0/modules/content/"><channel>'
        f"<title>Rights Watch</title><link>https://rights.example.org/</link>{channel}"
        + "".join(f"<item>{item}</item>" for item in items)
        + "</channel></rss>"
    )


# --- dialects --------------------------------------------------------------------------------------

DIALECTS = {
    "rss090": """<?xml version="1.0"?>
<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" xmlns="http://my.netscape.com/rdf/simple/0.9/">
<channel><title>Rights Watch</title><link>https://rights.example.org/</link><description>d</description></channel>
<item><title>Defenders face reprisals</title><link>https://rights.example.org/news/1</link></item>
</rdf:RDF>""",
    "rss091": """<?xml version="1.0"?>
<!DOCTYPE rss PUBLIC "-//Netscape Communications//DTD RSS 0.91//EN"
 "http://my.netscape.com/publish/formats/rss-0.91.dtd">
<rss version="0.91"><channel><title>Rights Watch</title><link>https://rights.example.org/</link>
<description>d</description><language>en</language>
<item><title>Defenders face reprisals</title><link>https://rights.example.org/news/1</link>
<description>Teaser text.</description></item></channel></rss>""",
    "rss092": """<?xml version="1.0"?>
<rss version="0.92"><channel><title>Rights Watch</title><link>https://rights.example.org/</link>
<description>d</description>
<item><title>Defenders face reprisals</title><link>https://rights.example.org/news/1</link>
<description>Teaser text.</description></item></channel></rss>""",
    "rss10": """<?xml version="1.0"?>
<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" xmlns="http://purl.org/rss/1.0/"
 xmlns:dc="http://purl.org/dc/elements/1.1/">
<channel rdf:about="https://rights.example.org/"><title>Rights Watch</title>
<link>https://rights.example.org/</link><description>d</description>
<items><rdf:Seq><rdf:li rdf:resource="https://rights.example.org/news/1"/></rdf:Seq></items></channel>
<item rdf:about="https://rights.example.org/news/1"><title>Defenders face reprisals</title>
<link>https://rights.example.org/news/1</link><description>Teaser text.</description>
<dc:date>2026-11-02T10:00:00+01:00</dc:date></item></rdf:RDF>""",
    "rss20": rss20(
        "<title>Defenders face reprisals</title><link>https://rights.example.org/news/1</link>"
        "<guid isPermaLink='false'>rw-1</guid><pubDate>Mon, 02 Nov 2026 09:00:00 GMT</pubDate>"
        "<description>Teaser text.</description>"
        "<content:encoded><![CDATA[<p>Teaser text.</p><p>Full body.</p>]]></content:encoded>"
    ),
    "atom03": """<?xml version="1.0"?>
<feed version="0.3" xmlns="http://purl.org/atom/ns#"><title>Rights Watch</title>
<link rel="alternate" type="text/html" href="https://rights.example.org/"/>
<modified>2026-11-02T09:00:00Z</modified>
<entry><title>Defenders face reprisals</title>
<link rel="alternate" type="text/html" href="https://rights.example.org/news/1"/>
<id>tag:rights.example.org,2026:1</id><issued>2026-11-02T09:00:00Z</issued>
<modified>2026-11-02T09:00:00Z</modified><summary>Teaser text.</summary></entry></feed>""",
    "atom10": """<?xml version="1.0"?>
<feed xmlns="http://www.w3.org/2005/Atom"><title>Rights Watch</title><id>urn:rw</id>
<updated>2026-11-02T09:00:00Z</updated>
<entry><title>Defenders face reprisals</title><link href="https://rights.example.org/news/1"/>
<id>tag:rights.example.org,2026:1</id><published>2026-11-02T04:00:00-05:00</published>
<updated>2026-11-03T09:00:00Z</updated><summary>Teaser text.</summary>
<content type="html">&lt;p&gt;Teaser text.&lt;/p&gt;&lt;p&gt;Full body.&lt;/p&gt;</content></entry></feed>""",
}
DATED = {"rss10", "rss20", "atom03", "atom10"}


@pytest.mark.parametrize("dialect", DIALECTS, ids=list(DIALECTS))
def test_every_dialect_gives_the_same_item(dialect: str) -> None:
    feed = parse(DIALECTS[dialect])

    assert_well_formed(feed)
    assert feed.title == "Rights Watch"
    (item,) = feed.items
    assert (item.title, item.url) == ("Defenders face reprisals", "https://rights.example.org/news/1")
    assert item.teaser in ("Teaser text.", "")
    if dialect in DATED:
        assert item.published == datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


def test_full_content_is_kept_apart_from_the_teaser() -> None:
    (item,) = parse(DIALECTS["atom10"]).items

    assert item.teaser == "Teaser text."
    assert item.content == "Teaser text.\n\nFull body."
    assert item.updated == datetime(2026, 11, 3, 9, 0, tzinfo=UTC)


CORPUS_DIALECTS = {
    "heise-de_rss090-netscape-rdf_de.xml": 60,
    "rome_rss091-netscape-dtd.xml": 2,
    "oreilly-example_rss092.rss": 2,
    "rome_rss093.xml": 2,
    "rome_rss094.xml": 2,
    "gmane-list_rss10-rdf.rss": 5,
    "nhs-northwest-news_rss20_gov-press.rss": 2,
    "rome_atom03.xml": 2,
    "usgs-earthquakes_atom10_georss_gov.xml": 6,
}


def corpus_file(name: str) -> bytes:
    if not CORPUS.is_dir():
        pytest.skip("../shared/corpus/feeds is absent")
    return (CORPUS / name).read_bytes()


@pytest.mark.parametrize(("name", "count"), CORPUS_DIALECTS.items(), ids=list(CORPUS_DIALECTS))
def test_corpus_dialects(name: str, count: int) -> None:
    feed = parse(corpus_file(name), url=f"https://feeds.example.org/{name}")

    assert_well_formed(feed)
    assert len(feed.items) == count
    assert all(item.title for item in feed.items)


CORPUS_FILES = sorted(p.name for p in CORPUS.iterdir() if p.name != "MANIFEST.md") if CORPUS.is_dir() else []
NOT_FEEDS = {
    "fp_illformed_rss-empty-document.xml",
    "not-a-feed_html-document-moved.rss",
    "page_latin1-meta-charset-after-1024-bytes.html",
    "page_wikipedia-article-miniflux.html",
    "rome_opml20_bloglines.opml",
    "fp_illformed_rss-incomplete-cdata.xml",  # truncated
}


@pytest.mark.parametrize(
    "name", CORPUS_FILES or [pytest.param("", marks=pytest.mark.skip(reason="../shared is absent"))]
)
def test_every_corpus_file_is_a_feed_or_a_parse_error(name: str) -> None:
    body = corpus_file(name)

    if name in NOT_FEEDS:
        with pytest.raises(ParseError):
            parse(body, url=f"https://feeds.example.org/{name}")
    else:
        assert_well_formed(parse(body, url=f"https://feeds.example.org/{name}"))


# --- identity --------------------------------------------------------------------------------------

UN_NEWS = """<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0" xml:base="https://news.un.org/en/"><channel><title>UN News</title>
<link>https://news.un.org/en/</link>{items}</channel></rss>"""


def un_news_item(link: str, title: str, teaser: str = "Teaser.") -> str:
    return (
        f"<item><title>{title}</title><link>{link}</link><guid isPermaLink='true'>{link}</guid>"
        f"<description><![CDATA[{teaser}]]></description>"
        "<pubDate>Mon, 02 Nov 2026 09:00:00 -0400</pubDate></item>"
    )


REDIRECTOR = "https://news.un.org/feed/view/en/story/2026/11/1165432"
CANONICAL = "https://news.un.org/en/story/2026/11/1165432"


def test_un_news_story_has_one_key_under_either_url() -> None:
    via_redirector = parse(UN_NEWS.format(items=un_news_item(REDIRECTOR, "Rights chief alarmed")))
    canonical = parse(UN_NEWS.format(items=un_news_item(CANONICAL, "Rights chief alarmed")))

    assert via_redirector.items[0].key == canonical.items[0].key == "un-news:1165432"
    assert via_redirector.items[0].published == datetime(2026, 11, 2, 13, 0, tzinfo=UTC)


def test_un_news_story_twice_in_one_feed_is_one_item() -> None:
    items = un_news_item(REDIRECTOR, "Rights chief alarmed") + un_news_item(
        CANONICAL, "Rights chief alarmed by reprisals", teaser="A longer teaser about the same story."
    )

    feed = parse(UN_NEWS.format(items=items))

    (item,) = feed.items
    assert item.key == "un-news:1165432"
    assert item.teaser == "A longer teaser about the same story."  # the fuller copy


def test_press_release_and_live_blog_of_one_meeting_are_one_item() -> None:
    feed = parse(
        rss20(
            "<title>Security Council Adopts Resolution 2799 (2026)</title>"
            "<link>https://press.un.org/en/2026/sc16444.doc.htm</link>"
            "<description>The Security Council today adopted a resolution on the situation.</description>",
            "<title>Security Council: 9999th meeting (live)</title>"
            "<link>https://press.un.org/en/blog/sc16444</link><description>Live.</description>",
            "<title>Secretary-General's message</title>"
            "<link>https://press.un.org/en/2026/sgsm22901.doc.htm</link><description>Message.</description>",
        ),
        url="https://press.un.org/en/rss.xml",
    )

    assert [item.key for item in feed.items] == ["un-press:sc16444", "un-press:sgsm22901"]
    assert feed.items[0].url == "https://press.un.org/en/2026/sc16444.doc.htm"


@pytest.mark.parametrize(
    ("url", "key"),
    [
        (REDIRECTOR, "un-news:1165432"),
        ("https://news.un.org/fr/story/2026/11/1165433", "un-news:1165433"),
        ("https://press.un.org/en/2026/SGSM22901.doc.htm", "un-press:sgsm22901"),
        ("https://press.un.org/fr/2026/cs15000.doc.htm", "un-press:cs15000"),
        ("https://press.un.org/en/content/secretary-general", None),
        ("https://rights.example.org/news/1", None),
        (None, None),
    ],
    ids=["un-news", "un-news-fr", "press-upper", "press-fr", "press-no-symbol", "other", "none"],
)
def test_source_keys(url: str | None, key: str | None) -> None:
    assert source_key(url) == key


SAME_GUID = (
    "<title>{title}</title><link>https://moe.example.gov/spotlight/</link>"
    "<guid isPermaLink='false'>https://moe.example.gov/spotlight/</guid>"
    "<description>{title}: details.</description><pubDate>{date} Sep 2009 10:00:00 +0800</pubDate>"
)


def same_guid(title: str, date: int) -> str:
    return SAME_GUID.format(title=title, date=date)


def test_items_sharing_one_guid_but_different_text_are_distinct() -> None:
    feed = parse(rss20(same_guid("Schools", 25), same_guid("Seminar", 17)))

    assert [item.title for item in feed.items] == ["Schools", "Seminar"]
    assert len({item.key for item in feed.items}) == 2


def test_keys_of_items_sharing_a_guid_do_not_shift_when_one_is_prepended() -> None:
    before = parse(rss20(same_guid("Schools", 25), same_guid("Seminar", 17)))
    after = parse(rss20(same_guid("Awards", 28), same_guid("Schools", 25), same_guid("Seminar", 17)))

    keys_after = {item.title: item.key for item in after.items}
    assert {item.title: item.key for item in before.items}.items() <= keys_after.items()


def test_moe_sg_feed_keeps_all_four_releases() -> None:
    feed = parse(corpus_file("moe-sg-spotlight_rss20_feedburner-split-pi_gov.xml"))

    assert_well_formed(feed)
    assert len(feed.items) == 4
    assert feed.items[0].teaser.startswith("MOE will be building 11 new primary schools")


def test_identical_repeated_item_is_kept_once() -> None:
    item = "<title>Statement</title><link>https://rights.example.org/s</link><guid isPermaLink='false'>s-1</guid>"

    feed = parse(rss20(item, item))

    assert [i.key for i in feed.items] == ["s-1"]


def test_item_without_guid_or_link_gets_a_stable_content_key() -> None:
    body = rss20("<title>Untitled note</title><description>Only text.</description>")

    first, again = parse(body).items[0], parse(body).items[0]

    assert first.key.startswith("sha256:") and first.key == again.key


def test_key_prefers_guid_over_link() -> None:
    link = "<title>t</title><link>https://rights.example.org/a</link>"

    (opaque,) = parse(rss20(f"{link}<guid isPermaLink='false'>g-9</guid>")).items
    (permalink,) = parse(rss20(f"{link}<guid>g-9</guid>")).items

    assert opaque.key == "g-9"
    # RSS 2.0: a guid without isPermaLink="false" is a URL, so feedparser resolves it.
    assert permalink.key == "https://rights.example.org/feeds/g-9"


# --- links, dates, feed metadata -------------------------------------------------------------------


def test_relative_links_are_made_absolute_against_the_feed_url() -> None:
    feed = parse(
        rss20(
            "<title>a</title><link>/news/1</link>",
            "<title>b</title><link>news/2</link>",
            "<title>c</title><link>javascript:alert(1)</link>",
            "<title>d</title><link>mailto:press@rights.example.org</link>",
        )
    )

    assert [item.url for item in feed.items] == [
        "https://rights.example.org/news/1",
        "https://rights.example.org/feeds/news/2",
        None,
        None,
    ]


def test_atom_links_resolve_against_xml_base() -> None:
    feed = parse(corpus_file("rome_atom10_xml-base-relative.xml"), url="https://feeds.example.org/x.xml")

    assert [item.url for item in feed.items] == [
        "http://www.example.com/blog/entry1",
        "http://www.example.com/blog/entry2",
    ]


def test_est_dates_are_converted_to_utc() -> None:
    (item,) = parse(corpus_file("rome_rss20_iso-8859-1_est-dates.xml")).items

    assert item.published == datetime(2008, 9, 3, 22, 3, 3, tzinfo=UTC)  # 17:03:03 EST


@pytest.mark.parametrize(
    ("date", "expected"),
    [
        ("Mon, 02 Nov 2026 09:00:00 EST", datetime(2026, 11, 2, 14, 0, tzinfo=UTC)),
        ("Mon, 02 Nov 2026 09:00:00 +0530", datetime(2026, 11, 2, 3, 30, tzinfo=UTC)),
        ("2026-11-02T09:00:00-04:00", datetime(2026, 11, 2, 13, 0, tzinfo=UTC)),
        ("Mon, 01 Jan 0001 00:00:00 GMT", None),
        ("next Tuesday", None),
    ],
    ids=["EST", "+0530", "iso-offset", "year-1", "garbage"],
)
def test_dates_are_aware_utc_or_none(date: str, expected: datetime | None) -> None:
    (item,) = parse(rss20(f"<title>t</title><guid>g</guid><pubDate>{date}</pubDate>")).items

    assert item.published == expected


def test_feed_language_and_ttl() -> None:
    feed = parse(rss20("<title>t</title><guid>g</guid>", channel="<language>fr-FR</language><ttl>30</ttl>"))

    assert (feed.language, feed.ttl_seconds, feed.items[0].language) == ("fr-FR", 1800, "fr-FR")


def test_a_free_text_or_overlong_language_is_not_passed_on_as_a_tag() -> None:
    # Stored in VARCHAR(20) columns: a longer value made PostgreSQL refuse the feed.
    free_text = parse(rss20("<title>t</title><guid>g</guid>", channel="<language>English (United Kingdom)</language>"))
    long_tag = parse(rss20("<title>t</title><guid>g</guid>", channel="<language>zh-Hant-TW-x-private-use</language>"))

    assert (free_text.language, free_text.items[0].language) == (None, None)
    assert (long_tag.language, long_tag.items[0].language) == ("zh", "zh")


@pytest.mark.parametrize("nul", ["&#0;", "&#x0;", "\x00"], ids=["decimal", "hex", "raw"])
def test_no_nul_character_leaves_parse(nul: str) -> None:
    # PostgreSQL text cannot hold NUL: one such title made the database refuse the feed.
    body = rss20(
        f"<title>a{nul}b</title><guid>g{nul}1</guid><link>https://x.example/a{nul}b</link>"
        f"<description>c{nul}d</description>",
        channel=f"<title>T{nul}</title><language>en{nul}</language>",
    )

    feed = parse(body)

    (item,) = feed.items
    strings = [item.title, item.teaser, item.content, item.key, item.guid, item.url, item.language]
    assert not any("\x00" in text for text in [*strings, feed.title, feed.language] if text)
    assert (item.title, item.teaser) == ("a b", "c d")


def test_declared_encoding_is_honoured() -> None:
    body = rss20("<title>Déclaration à Genève</title><guid>g</guid>").replace("utf-8", "iso-8859-1")

    (item,) = parse(body.encode("iso-8859-1"), content_type="application/rss+xml").items

    assert item.title == "Déclaration à Genève"


# --- text ------------------------------------------------------------------------------------------


def test_html_becomes_plain_text_paragraphs_without_scripts() -> None:
    description = (
        "<![CDATA[<p>The <b>International <i>Criminal</i> Court</b> issued a warrant.</p>"
        "<script>alert('x')</script><!-- wp:paragraph --><p>Second&nbsp;paragraph<br>same para.</p>"
        "<ul><li>one</li><li>two</li></ul>]]>"
    )

    (item,) = parse(
        rss20(f"<title>Rights &amp;amp; Wrongs</title><guid>g</guid><description>{description}</description>")
    ).items

    assert item.teaser == (
        "The International Criminal Court issued a warrant.\n\nSecond paragraph\nsame para.\n\none\n\ntwo"
    )
    assert item.title == "Rights & Wrongs"


@pytest.mark.parametrize(
    ("html", "text"),
    [
        ("<div><p>x<i>y</i></p>z</div>", "xy\n\nz"),
        ("<table><tr><td>a</td><td>b</td></tr></table>", "a b"),
        ("<p>a<script>b</script>c</p><style>p {}</style>", "ac"),
        ("&lt;p&gt;Escaped &lt;a href='x'&gt;twice&lt;/a&gt;&lt;/p&gt;", "Escaped twice"),
        ("Contact: Jane &lt;jane@rights.example.org&gt;, 5 &lt; 6", "Contact: Jane <jane@rights.example.org>, 5 < 6"),
        ("plain   text\r\n\r\n\r\nnext", "plain text\n\nnext"),
        ("<p>wrapped\nsource line</p>", "wrapped source line"),
        ("&lt;script&gt;alert(1)&lt;/script&gt;Warning", "Warning"),
        ("a &lt;script", "a script"),
        ("<p>bell\x07 <b>x</b></p>", "bell x"),
        ("", ""),
    ],
    ids=[
        "nesting-order",
        "cells",
        "script-style",
        "double-escaped",
        "literal-angles",
        "whitespace",
        "source-newline",
        "escaped-script",
        "literal-script-start",
        "control-char",
        "empty",
    ],
)
def test_html_to_text(html: str, text: str) -> None:
    assert html_to_text(html) == text


def test_script_in_escaped_atom03_content_is_gone() -> None:
    (item,) = parse(corpus_file("fp_sanitize_atom03-script-in-cdata.xml")).items

    assert item.teaser == "safe description"


MARKUP_PIECES = st.sampled_from(
    [
        "<script>",
        "</script>",
        "<SCRIPT type='text/javascript'>",
        "<script src=//evil.example/x.js>",
        "<scr",
        "ipt>",
        "<p>",
        "</p>",
        "<b>",
        "<div class=x>",
        "<br>",
        "<!-- ",
        " -->",
        "<![CDATA[",
        "]]>",
        "<style>",
        "</style>",
        "<noscript>",
        "<svg><script>",
        "<iframe src=x>",
        "&lt;script&gt;",
        "&lt;",
        "&gt;",
        "&amp;",
        "<",
        ">",
        "script",
        "/",
    ]
)
TEXT = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=8)


@settings(max_examples=400, deadline=None)
@given(st.lists(st.one_of(MARKUP_PIECES, TEXT), max_size=30))
def test_html_to_text_never_returns_a_script_tag(pieces: list[str]) -> None:
    assert "<script" not in html_to_text("".join(pieces)).lower()


@pytest.mark.parametrize(
    "html", ["&lt;&lt;script", "<&lt;script", "&lt;&lt;&lt;/script"], ids=["two", "mixed", "three-closing"]
)
def test_escaped_angle_runs_before_script_leave_no_script_tag(html: str) -> None:
    # Found by the property above: removing only the "<" next to "script" joined the one
    # before it to the word.
    assert "<script" not in html_to_text(html).lower()
    assert "</script" not in html_to_text(html).lower()


# Complete pieces only: after "<scr" or an unclosed comment a browser would not see a
# script element either, so its "body" is legitimately text or nothing.
WELL_FORMED = st.sampled_from(
    ["<p>", "</p>", "<b>", "</b>", "<br>", "<div class=x>", "</div>", "<!-- c -->", "&amp;", "&lt;", " "]
)
PLAIN = st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="<&"), max_size=8)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(WELL_FORMED, PLAIN), max_size=20), PLAIN)
def test_script_bodies_never_reach_the_text(before: list[str], after: str) -> None:
    html = "".join(before) + "<script>var PAYLOAD = 1;</script>" + after

    assert "PAYLOAD" not in html_to_text(html)


# --- not a feed ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        "<!DOCTYPE html><html><head><title>Just a moment...</title></head><body>Checking</body></html>",
        '<?xml version="1.0"?><html xmlns="http://www.w3.org/1999/xhtml"><body><p>Moved</p></body></html>',
        '<?xml version="1.0"?><opml version="2.0"><body><outline text="x"/></body></opml>',
        "just some text",
        "",
    ],
    ids=["html", "xhtml", "opml", "text", "empty"],
)
def test_what_is_not_a_feed_is_a_parse_error(body: str) -> None:
    with pytest.raises(ParseError, match="not a feed") as caught:
        parse(body)

    assert caught.value.url == FEED_URL


TRUNCATABLE = rss20(
    "<title>First release</title><link>https://rights.example.org/1</link><guid>1</guid>"
    "<description><![CDATA[<p>Défenseurs — représailles.</p>]]></description>",
    "<title>Second release</title><link>https://rights.example.org/2</link><guid>2</guid>"
    "<description>Plain teaser &amp; more.</description>",
).encode()


@pytest.mark.parametrize(
    "cut",
    [TRUNCATABLE.index(b"<item>") + 40, TRUNCATABLE.index(b"CDATA[") + 12, len(TRUNCATABLE) - 3],
    ids=["in-an-item", "in-cdata", "in-the-end-tag"],
)
def test_truncated_feed_is_a_parse_error(cut: int) -> None:
    with pytest.raises(ParseError, match="truncated XML"):
        parse(TRUNCATABLE[:cut])


@settings(max_examples=300, deadline=None)
@given(st.integers(min_value=TRUNCATABLE.index(b"<channel>"), max_value=len(TRUNCATABLE) - 1))
def test_a_feed_cut_anywhere_is_never_stored_as_complete(cut: int) -> None:
    with pytest.raises(ParseError):
        parse(TRUNCATABLE[:cut])


def test_truncation_hidden_behind_an_earlier_xml_error_is_caught() -> None:
    # A blank line before the declaration is the first error expat reports.
    with pytest.raises(ParseError, match="truncated XML"):
        parse(b"\n" + TRUNCATABLE[: TRUNCATABLE.index(b"Second release") + 6])


def test_a_complete_feed_with_trailing_whitespace_is_fine() -> None:
    assert len(parse(TRUNCATABLE + b"\n\n").items) == 2


def test_parse_error_names_the_url() -> None:
    with pytest.raises(ParseError) as caught:
        parse_feed(b"<html><body>x</body></html>", url="https://ngo.example.org/feed/")

    assert caught.value.url == "https://ngo.example.org/feed/"


def test_corpus_path_is_relative_to_the_repository() -> None:
    assert Path(__file__).resolve().parents[2] / "shared" / "corpus" / "feeds" == CORPUS


def test_a_body_that_names_a_local_file_is_not_that_file(tmp_path: Path) -> None:
    # feedparser reads bytes as a file name first: a server answering with a path had
    # that local file parsed as its feed.
    local = tmp_path / "local.xml"
    local.write_text(
        '<?xml version="1.0"?><rss version="2.0"><channel><title>Local</title><item><title>A local secret'
        "</title><guid>secret-1</guid></item></channel></rss>", encoding="utf-8"
    )
    with pytest.raises(ParseError, match="not a feed"):
        parse_feed(str(local).encode(), url="https://hostile.example/feed")
