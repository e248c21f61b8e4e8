"""The listing stage: newsroom listing pages → the releases they list (pure)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bot.listing.releases import extract_listing
from bot.listing.selectors import SelectorSyntaxError, compile_selector
from bot.records import ListingRule
from tests.newsroom import LAYOUTS, listing_html, release

BASE = "https://newsroom.example"
NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
RELEASES = [release(index, now=NOW) for index in range(1, 6)]


@pytest.mark.parametrize("layout_name", list(LAYOUTS), ids=list(LAYOUTS))
def test_every_listed_release_is_found_with_its_title_and_no_chrome_link(layout_name: str) -> None:
    layout = LAYOUTS[layout_name]

    listing = extract_listing(listing_html(layout, RELEASES).encode(), BASE + layout.listing_path)

    assert listing.error is None
    assert [r.url for r in listing.releases] == [BASE + layout.listed(r) for r in RELEASES]
    assert [r.title for r in listing.releases] == [r.title for r in RELEASES]
    assert [r.position for r in listing.releases] == list(range(len(RELEASES)))
    expected_dates = [r.published for r in RELEASES] if layout.listing_dates else [None] * len(RELEASES)
    assert [r.published for r in listing.releases] == expected_dates


def test_a_single_release_listing_is_still_a_listing() -> None:
    layout = LAYOUTS["wordpress"]

    listing = extract_listing(listing_html(layout, RELEASES[:1]), BASE + layout.listing_path)

    assert [r.title for r in listing.releases] == [RELEASES[0].title]


def test_selectors_replace_the_automatic_choice() -> None:
    layout = LAYOUTS["drupal"]
    rule = ListingRule(items="div.views-row", link="h3 a", title="h3", date="time")

    listing = extract_listing(listing_html(layout, RELEASES), BASE + layout.listing_path, rule)

    assert [(r.url, r.title, r.published) for r in listing.releases] == [
        (BASE + layout.listed(r), r.title, r.published) for r in RELEASES
    ]


def test_a_title_selector_alone_picks_the_text_inside_the_automatic_containers() -> None:
    layout = LAYOUTS["wordpress"]

    listing = extract_listing(listing_html(layout, RELEASES), BASE + layout.listing_path,
                              ListingRule(title="div.entry-summary p"))

    assert listing.releases[0].title == RELEASES[0].body()[0][:120]


@pytest.mark.parametrize(
    ("rule", "reason"),
    [
        (ListingRule(items="div.nothing-here"), 'items = "div.nothing-here" matches nothing'),
        (ListingRule(items="div.views-row", link="h4 a"), 'link = "h4 a" inside items = "div.views-row"'),
    ],
    ids=["items", "link"],
)
def test_a_selector_matching_nothing_is_a_one_line_failure(rule: ListingRule, reason: str) -> None:
    url = BASE + "/en/press-releases"

    listing = extract_listing(listing_html(LAYOUTS["drupal"], RELEASES), url, rule)

    assert listing.releases == ()
    assert listing.error == f"no release links found on {url}: {reason}"


def test_a_page_without_a_listing_says_what_to_set() -> None:
    about = """<html><body><nav><a href="/en/about-us/team">Team</a></nav>
    <main><h1>About us</h1><p>We defend human rights.</p>
    <ul class="links"><li><a href="/en">Home</a></li><li><a href="/en/contact">Contact</a></li></ul>
    </main></body></html>"""

    listing = extract_listing(about, BASE + "/en/about-us")

    assert listing.releases == ()
    assert listing.error == f'no release links found on {BASE}/en/about-us: set items = "li"'
    assert "\n" not in listing.error


def test_an_empty_page_is_a_failure_not_a_crash() -> None:
    assert extract_listing(b"  ", BASE + "/news").error == f"no release links found on {BASE}/news: the page is empty"


def test_a_date_written_in_the_container_is_the_listings_date() -> None:
    html = """<html><body><main><ul>
    <li><a href="/news/2026/first-statement">First statement</a> <span>28 November 2026</span></li>
    <li><a href="/news/2026/second-statement">Second statement</a> <span>2026-11-27</span></li>
    </ul></main></body></html>"""

    listing = extract_listing(html, BASE + "/news")

    assert [r.published for r in listing.releases] == [
        datetime(2026, 11, 28, tzinfo=UTC),
        datetime(2026, 11, 27, tzinfo=UTC),
    ]


def test_links_to_other_sites_files_and_the_listing_itself_are_no_releases() -> None:
    html = """<html><body><main><ul>
    <li><a href="https://elsewhere.example/news/a/b">Elsewhere</a></li>
    <li><a href="/news/report.pdf">Report (PDF)</a></li>
    <li><a href="/news?page=2">Next</a></li>
    <li><a href="https://www.newsroom.example/news/kept-one">Kept one</a></li>
    <li><a href="/news/kept-two#comments">Kept two</a></li>
    </ul></main></body></html>"""

    listing = extract_listing(html, BASE + "/news")

    assert [r.url for r in listing.releases] == [
        "https://www.newsroom.example/news/kept-one",
        f"{BASE}/news/kept-two",
    ]


def test_a_bad_selector_is_refused_with_where_it_is_wrong() -> None:
    with pytest.raises(SelectorSyntaxError, match="bad CSS selector 'div\\['"):
        compile_selector("div[")
