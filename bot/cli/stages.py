"""The pass's page stages, loaded when a pass first reads a listing or a page (``bot.poll.PageStages``)."""

from __future__ import annotations

from bot.poll import PageStages


def load_page_stages() -> PageStages:
    # Imported here, where start-up is tuned: htmldate and trafilatura cost +128 ms and
    # 6 MB, more than a warm pass's own work, and most passes read no listing or page.
    from bot import fulltext
    from bot.listing import releases

    return PageStages(parse_listing=releases.parse_listing, fetch_articles=fulltext.fetch_articles)
