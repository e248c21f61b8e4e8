# ruff: noqa: E501  (HTML fixtures read better one element a line)
"""A local newsroom site for tests: three listing layouts and their release pages.

Each layout has the chrome real newsrooms have: navigation, a header and footer, a
sidebar of "most read" links (to releases the listing does not list), tag links and
pagination. ``mount`` serves a listing and its release pages on a ``FeedServer``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from html import escape

from tests.feedserver import FeedServer

HTML = "text/html; charset=utf-8"
FILLER = (
    "The statement was issued in Geneva after consultations with the States concerned and with "
    "civil society organisations that followed the session of the Human Rights Council closely."
)


@dataclass(frozen=True)
class Release:
    slug: str
    title: str
    published: datetime
    paragraphs: tuple[str, ...] = ()
    # Where the listing links (layout default when None) and the page's canonical URL path.
    listed_path: str | None = None
    canonical_path: str | None = None

    def body(self) -> tuple[str, ...]:
        if self.paragraphs:
            return self.paragraphs
        return (
            f"{self.title}. The office published this release on {self.published:%d %B %Y}.",
            FILLER,
            "Experts recalled the obligations of every State under international human rights law and "
            "asked for a prompt and transparent answer to the communication they sent.",
            "They will continue to follow the situation closely and remain available to the authorities "
            "for technical advice on bringing the legislation into line with international standards.",
        )


def release(index: int, title: str | None = None, *, age: timedelta | None = None, now: datetime | None = None,
            **options: object) -> Release:
    moment = (now or datetime.now(UTC)).replace(microsecond=0) - (age if age is not None else timedelta(hours=index))
    return Release(slug=f"release-{index}", title=title or f"Statement number {index} on the situation",
                   published=moment, **options)  # type: ignore[arg-type]


@dataclass
class Layout:
    name: str
    listing_path: str
    release_path: str  # format with {r} (the Release)
    canonical_path: str  # format with {r}
    listing_dates: bool
    render: object = field(repr=False)

    def listed(self, item: Release) -> str:
        return item.listed_path or self.release_path.format(r=item)

    def canonical(self, item: Release) -> str:
        return item.canonical_path or self.canonical_path.format(r=item)


def _page(title: str, body_class: str, header: str, main: str, sidebar: str, footer: str) -> str:
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title>
<link rel="stylesheet" href="/assets/site.css"></head>
<body class="{body_class}">
<a href="#main-content" class="skip-link">Skip to main content</a>
{header}
{main}
{sidebar}
{footer}
<script>window.dataLayer = [{{"page": "listing"}}];</script>
</body></html>"""


# -- Drupal: a views list with <time datetime> (OHCHR's shape) --------------------------


def drupal_listing(releases: Sequence[Release], layout: Layout) -> str:
    rows = "".join(
        f"""
  <div class="views-row views-row-{index + 1} {'views-row-odd' if index % 2 == 0 else 'views-row-even'}">
    <div class="views-field views-field-field-image"><a href="{layout.listed(r)}"><img src="/img/{r.slug}.jpg" alt=""></a></div>
    <div class="views-field views-field-title"><h3 class="field-content"><a href="{layout.listed(r)}">{escape(r.title)}</a></h3></div>
    <div class="views-field views-field-created"><time datetime="{r.published.isoformat().replace('+00:00', 'Z')}">{r.published:%d %B %Y}</time></div>
    <div class="views-field views-field-tags"><a href="/en/taxonomy/term/{100 + index}">Human rights defenders</a>
      <a href="/en/countries/asia-region/valdoria">Valdoria</a></div>
  </div>"""
        for index, r in enumerate(releases)
    )
    header = """<header role="banner" class="site-header"><a href="/en" class="logo">UN Human Rights</a>
<nav role="navigation" aria-label="Main"><ul class="menu"><li><a href="/en/about-us">About us</a></li>
<li><a href="/en/countries/asia-region/valdoria">Valdoria</a></li><li><a href="/en/news/media-centre">Media centre</a></li>
<li><a href="/en/press-releases/2026/01/navigation-highlight">Highlight of the month</a></li></ul></nav></header>
<div class="breadcrumb"><a href="/en">Home</a> › <a href="/en/news">News</a></div>"""
    main = f"""<main role="main" id="main-content"><h1>Press releases</h1>
<div class="view view-press-releases view-id-press_releases">
<div class="view-filters"><form action="/en/press-releases"><input name="keys"></form></div>
<div class="view-content">{rows}
</div>
<nav class="pager" role="navigation" aria-label="Pagination"><ul class="pager__items">
<li><a href="?page=1">Next page</a></li><li><a href="/en/press-releases?page=29">Last page</a></li></ul></nav>
</div></main>"""
    sidebar = """<aside class="layout-sidebar-second"><div class="block block-views-block-most-read">
<h2>Most read</h2><ul>
<li><a href="/en/press-releases/2025/03/most-read-one">Experts alarmed by a wave of arrests</a></li>
<li><a href="/en/press-releases/2025/04/most-read-two">High Commissioner deplores reprisals</a></li></ul></div></aside>"""
    footer = """<footer role="contentinfo"><ul><li><a href="/en/about-us/contact">Contact</a></li>
<li><a href="/en/about-us/privacy-policy">Privacy policy</a></li>
<li><a href="/en/press-releases/2024/01/footer-archive-note">Archive note</a></li></ul></footer>"""
    return _page("Press releases | OHCHR", "path-press-releases has-sidebar", header, main, sidebar, footer)


# -- WordPress: an archive of <article> elements ----------------------------------------


def wordpress_listing(releases: Sequence[Release], layout: Layout) -> str:
    articles = "".join(
        f"""
<article id="post-{500 + index}" class="post-{500 + index} post type-post status-publish format-standard hentry category-news tag-reprisals">
  <header class="entry-header"><h2 class="entry-title"><a href="{layout.listed(r)}" rel="bookmark">{escape(r.title)}</a></h2>
  <div class="entry-meta"><span class="posted-on"><a href="{layout.listed(r)}" rel="bookmark"><time class="entry-date published" datetime="{r.published.isoformat()}">{r.published:%B %d, %Y}</time></a></span></div></header>
  <div class="entry-summary"><p>{escape(r.body()[0][:120])}</p>
  <a class="more-link" href="{layout.listed(r)}">Continue reading</a></div>
  <footer class="entry-footer"><span class="cat-links"><a href="/category/news/" rel="category tag">News</a></span>
  <span class="tags-links"><a href="/tag/reprisals/" rel="tag">Reprisals</a></span></footer>
</article>"""
        for index, r in enumerate(releases)
    )
    header = """<header id="masthead" class="site-header"><p class="site-title"><a href="/">ISHR</a></p>
<nav id="site-navigation" class="main-navigation"><ul id="primary-menu" class="menu">
<li class="menu-item"><a href="/about/">About</a></li><li class="menu-item"><a href="/latest-updates/">Latest updates</a></li>
<li class="menu-item"><a href="/what-we-do/advocacy-at-the-un/">Advocacy at the UN</a></li></ul></nav></header>"""
    main = f"""<div id="content" class="site-content"><main id="main" class="site-main">
<header class="page-header"><h1 class="page-title">Latest updates</h1></header>{articles}
<nav class="navigation pagination" aria-label="Posts"><div class="nav-links">
<a class="page-numbers" href="/latest-updates/page/2/">2</a><a class="next page-numbers" href="/latest-updates/page/2/">Next</a></div></nav>
</main></div>"""
    sidebar = """<aside id="secondary" class="widget-area"><section id="recent-posts-2" class="widget widget_recent_entries">
<h2 class="widget-title">Most read</h2><ul>
<li><a href="/latest-updates/most-read-reprisals-report/">Reprisals report: what you need to know</a></li>
<li><a href="/latest-updates/most-read-academy/">Apply to the Human Rights Defender Advocacy Programme</a></li></ul></section>
<section class="widget widget_tag_cloud"><a href="/tag/icc/">ICC</a> <a href="/tag/reprisals/">Reprisals</a></section></aside>"""
    footer = """<footer id="colophon" class="site-footer"><a href="/privacy-policy/">Privacy policy</a>
<a href="/latest-updates/footer-annual-report/">Annual report</a></footer>"""
    return _page("Latest updates – ISHR", "archive category has-sidebar", header, main, sidebar, footer)


# -- card grid, no dates on the listing (the Coalition for the ICC's shape) ---------------


def card_listing(releases: Sequence[Release], layout: Layout) -> str:
    cards = "".join(
        f"""
  <div class="card card--news">
    <a class="card__link" href="{layout.listed(r)}"><img src="/img/{r.slug}.jpg" alt="">
      <h3 class="card__title">{escape(r.title)}</h3></a>
    <p class="card__teaser">{escape(r.body()[1][:90])}</p>
    <a class="card__tag" href="/news?tag=icc">ICC</a> <a class="card__tag" href="/tags/prosecutor">Prosecutor</a>
  </div>"""
        for r in releases
    )
    header = """<div class="top-bar"><a href="/">Coalition for the ICC</a>
<div class="main-menu"><a href="/about">About</a> <a href="/news">News</a> <a href="/cases/situations/ukraine">Ukraine</a>
<a href="/news/20250101/menu-featured-story">Featured story</a></div></div>"""
    main = f"""<div class="page"><div class="content"><h1>News</h1>
<div class="card-grid">{cards}
</div>
<div class="pagination"><a href="/news?page=2">2</a> <a href="/news?page=3">3</a> <a href="/news?page=2">Next »</a></div>
</div>
<div class="sidebar"><div class="most-read"><h2>Most read</h2>
<a href="/news/20240301/most-read-rome-statute">Twenty years of the Rome Statute</a>
<a href="/news/20240302/most-read-ratification">Ratification campaign</a></div></div></div>"""
    footer = """<div class="site-footer-links"><a href="/contact">Contact</a> <a href="/news/20230101/footer-credits">Credits</a></div>"""
    return _page("News | Coalition for the ICC", "page-news", header, main, "", footer)


LAYOUTS = {
    "drupal": Layout("drupal", "/en/press-releases", "/en/press-releases/{r.published:%Y}/{r.published:%m}/{r.slug}",
                     "/en/press-releases/{r.published:%Y}/{r.published:%m}/{r.slug}", True, drupal_listing),
    "wordpress": Layout("wordpress", "/latest-updates/", "/latest-updates/{r.slug}/", "/latest-updates/{r.slug}/",
                        True, wordpress_listing),
    # Listed under a dated path, canonical without it: both spellings circulate.
    "cards": Layout("cards", "/news", "/news/{r.published:%Y%m%d}/{r.slug}", "/news/{r.slug}", False, card_listing),
}


def listing_html(layout: Layout, releases: Sequence[Release]) -> str:
    render = layout.render
    assert callable(render)
    return str(render(releases, layout))


def release_page(item: Release, layout: Layout, base: str) -> str:
    """A release page: original date in its metadata, a later modified date, a canonical link."""
    canonical = base + layout.canonical(item)
    modified = item.published + timedelta(days=2)
    paragraphs = "".join(f"<p>{escape(text)}</p>\n" for text in item.body())
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{escape(item.title)} | Newsroom</title>
<link rel="canonical" href="{canonical}">
<meta property="og:title" content="{escape(item.title)}">
<meta property="article:published_time" content="{item.published.isoformat()}">
<meta property="article:modified_time" content="{modified.isoformat()}">
<script type="application/ld+json">{{"@type": "NewsArticle", "datePublished": "{item.published.isoformat()}",
"dateModified": "{modified.isoformat()}"}}</script></head>
<body>
<div class="cookie-banner">We use cookies. <a href="/cookies">Accept all cookies</a></div>
<header><nav><a href="/">Home</a> <a href="/about">About us</a> <a href="/donate">Donate now</a></nav></header>
<main><article>
<h1>{escape(item.title)}</h1>
<div class="meta">Last updated {modified:%d %B %Y}</div>
{paragraphs}</article></main>
<footer><p>Follow us. All rights reserved.</p></footer>
</body></html>"""


def mount(server: FeedServer, layout_name: str, releases: Sequence[Release]) -> str:
    """Serve the listing and each release page; returns the listing's URL."""
    layout = LAYOUTS[layout_name]
    for item in releases:
        server.add(layout.listed(item), release_page(item, layout, server.base), content_type=HTML)
    return server.add(layout.listing_path, listing_html(layout, releases), content_type=HTML)
