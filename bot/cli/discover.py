"""``pressbot feeds discover URL``: find a site's feed, else propose a page source.

Prints TOML ready to paste into feeds.toml: the feeds the page advertises
(``<link rel="alternate">``) and those answering at the common paths, each checked
(parses, item count, newest date); where none answers, a ``page = true`` source with
the first releases it would extract, as comments. Stores nothing, opens no database.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urljoin, urlsplit

import click

from bot.cli import CommandError, ConfigClickError, load_settings
from bot.urls import http_url_parts

if TYPE_CHECKING:
    from bot.config import Settings
    from bot.records import FetchResult, Listing

# Where CMSs serve their feeds: WordPress (/feed/, ?feed=rss2), Drupal (/rss.xml), Hugo
# (/index.xml), Jekyll (/feed.xml), Ghost (/rss/), SPIP (spip.php?page=backend), Joomla
# (?format=feed&type=rss on any category list).
SITE_PATHS = (
    "/feed", "/feed/", "/rss.xml", "/feed.xml", "/index.xml", "/atom.xml", "/rss", "/rss/", "/?feed=rss2",
    "/spip.php?page=backend", "/index.php?format=feed&type=rss",
)  # fmt: skip
PAGE_SUFFIXES = ("/feed/", "/rss.xml", "?format=feed&type=rss")
SHOWN_RELEASES = 5


@dataclass
class Candidate:
    url: str
    found: str  # "advertised" or "common path"
    ok: bool = False
    items: int = 0
    newest: str | None = None
    title: str | None = None
    error: str | None = None
    digest: str | None = None  # of the body: one feed reached under two URLs is one feed


@dataclass
class Discovery:
    url: str
    final_url: str
    name: str
    candidates: list[Candidate] = field(default_factory=list)
    listing: Listing | None = None

    @property
    def feeds(self) -> list[Candidate]:
        unique: dict[str, Candidate] = {}
        for candidate in self.candidates:
            if candidate.ok:
                unique.setdefault(candidate.digest or candidate.url, candidate)
        return list(unique.values())


def candidate_urls(page_url: str, advertised: Sequence[str]) -> list[tuple[str, str]]:
    """Advertised feeds first, then the common paths on the site and under the page."""
    parts = urlsplit(page_url)
    root = f"{parts.scheme}://{parts.netloc}"
    page = page_url.split("?", 1)[0].split("#", 1)[0].rstrip("/")
    urls = [(url, "advertised") for url in advertised]
    urls += [(urljoin(root, path), "common path") for path in SITE_PATHS]
    if parts.path.strip("/"):
        urls += [(page + suffix, "common path") for suffix in PAGE_SUFFIXES]
    return _first_of_each(urls)


def _first_of_each(urls: Sequence[tuple[str, str]]) -> list[tuple[str, str]]:
    first: dict[str, str] = {}
    for url, how in urls:
        first.setdefault(url, how)
    return list(first.items())


async def _get(settings: Settings, url: str) -> Any:
    from bot.errors import FetchError
    from bot.http import client_for, get_page

    limits = settings.fetch_limits
    async with client_for(limits) as client:
        try:
            return await get_page(client, url, max_bytes=limits.max_bytes, allow_private=limits.allow_private,
                                  max_redirects=limits.max_redirects, deadline_seconds=limits.deadline_seconds,
                                  headers={"Accept": "text/html,application/xhtml+xml;q=0.9,*/*;q=0.5"})
        except FetchError as exc:
            raise CommandError(f"{url}: {exc}") from exc


async def _fetch_candidates(settings: Settings, urls: Sequence[str]) -> list[FetchResult]:
    from bot.fetch import fetch_feeds
    from bot.http import client_for
    from bot.records import FeedToFetch

    wanted = [FeedToFetch(feed_id=index, name=url, url=url) for index, url in enumerate(urls)]
    async with client_for(settings.fetch_limits) as client:
        return await fetch_feeds(client, wanted, settings.fetch_limits)


def check_candidate(url: str, found: str, result: FetchResult) -> Candidate:
    from bot.errors import ParseError
    from bot.parse import parse_feed

    candidate = Candidate(url=url, found=found, error=result.error)
    if result.error or result.body is None:
        return candidate
    try:
        parsed = parse_feed(result.body, url=result.final_url or url, content_type=result.content_type)
    except ParseError as exc:
        candidate.error = str(exc)
        return candidate
    dates = [item.published for item in parsed.items if item.published]
    candidate.ok, candidate.items, candidate.title = True, len(parsed.items), parsed.title
    candidate.newest = max(dates).isoformat() if dates else None
    candidate.digest = result.content_hash
    candidate.error = None
    return candidate


def discover_site(settings: Settings, url: str) -> Discovery:
    from bot.listing.releases import advertised_feeds, extract_listing, site_title

    page = asyncio.run(_get(settings, url))
    if not 200 <= page.status < 300:
        raise CommandError(f"{url}: HTTP {page.status}")
    content_type = page.headers.get("content-type")
    name = site_title(page.body, content_type=content_type) or urlsplit(page.final_url).netloc
    discovery = Discovery(url=url, final_url=page.final_url, name=name)
    wanted = candidate_urls(page.final_url, advertised_feeds(page.body, page.final_url, content_type=content_type))
    results = asyncio.run(_fetch_candidates(settings, [candidate for candidate, _how in wanted]))
    discovery.candidates = [check_candidate(u, how, r) for (u, how), r in zip(wanted, results, strict=True)]
    if not discovery.feeds:
        discovery.listing = extract_listing(page.body, page.final_url, content_type=content_type)
    return discovery


# -- output ------------------------------------------------------------------------------


def _toml_string(text: str) -> str:
    # A JSON string is a valid TOML basic string: same quotes and escapes.
    return json.dumps(text, ensure_ascii=False)


def _feed_block(candidate: Candidate, name: str, *, commented: bool) -> list[str]:
    newest = f", newest {candidate.newest[:10]}" if candidate.newest else ""
    lines = ["[[feeds]]", f"name = {_toml_string(candidate.title or name)}", f"url = {_toml_string(candidate.url)}"]
    note = f"# {candidate.found}: {candidate.items} items{newest}"
    return [note, *(f"# {line}" for line in lines)] if commented else [*lines, note]


def _page_block(discovery: Discovery) -> list[str]:
    listing = discovery.listing
    assert listing is not None
    lines = ["[[feeds]]", f"name = {_toml_string(discovery.name)}", f"url = {_toml_string(discovery.final_url)}",
             "page = true  # a listing page, not a feed"]
    if listing.error:
        return [*lines, f"# {listing.error}"]
    lines.append(f"# the first of {len(listing.releases)} releases it lists:")
    for release in listing.releases[:SHOWN_RELEASES]:
        date = release.published.strftime("%Y-%m-%d") if release.published else "(date from its page)"
        lines += [f"#   {date}  {release.title or '(title from its page)'}", f"#       {release.url}"]
    return lines


def discovery_toml(discovery: Discovery, today: datetime) -> str:
    checked = len(discovery.candidates)
    lines = [f"# pressbot feeds discover {discovery.url} ({today:%Y-%m-%d}): {checked} candidate feed URLs checked"]
    feeds = discovery.feeds
    if feeds:
        lines += ["", *_feed_block(feeds[0], discovery.name, commented=False)]
        for other in feeds[1:]:
            lines += ["", *_feed_block(other, discovery.name, commented=True)]
    else:
        lines += ["# no feed found: none advertised, none at the common paths; a page source instead:", "",
                  *_page_block(discovery)]
    return "\n".join(lines) + "\n"


def discovery_json(discovery: Discovery) -> dict[str, Any]:
    listing = discovery.listing
    proposed = None
    if listing is not None:
        proposed = {
            "name": discovery.name,
            "url": discovery.final_url,
            "page": True,
            "error": listing.error,
            "releases": [
                {"url": r.url, "title": r.title, "published": r.published.isoformat() if r.published else None}
                for r in listing.releases[:SHOWN_RELEASES]
            ],
            "release_count": len(listing.releases),
        }
    return {
        "url": discovery.url,
        "final_url": discovery.final_url,
        "feeds": [
            {"url": c.url, "found": c.found, "title": c.title, "items": c.items, "newest": c.newest}
            for c in discovery.feeds
        ],
        "checked": [{"url": c.url, "found": c.found, "ok": c.ok, "error": c.error} for c in discovery.candidates],
        "proposed_page": proposed,
    }


@click.command()
@click.argument("url")
@click.option("--json", "as_json", is_flag=True, help="One JSON object instead of TOML.")
def discover(url: str, as_json: bool) -> None:
    """Find URL's feeds (advertised or at the common paths), checked; else propose a page source.

    Prints TOML to paste into feeds.toml. Stores nothing.
    """
    if http_url_parts(url) is None:
        raise ConfigClickError(f"{url!r} is not an http(s) URL")
    discovery = discover_site(load_settings(), url)
    if as_json:
        click.echo(json.dumps(discovery_json(discovery), ensure_ascii=False, indent=2))
    else:
        click.echo(discovery_toml(discovery, datetime.now(UTC)), nl=False)
