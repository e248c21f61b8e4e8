"""The feed the deployment tests poll: an ICC release, a reprisal release and a cricket one.

The shipped rules must flag the first two and not the International Cricket Council.
Links point back at the local feed server, so even a full-text fetch stays on 127.0.0.1.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

from tests.feedserver import FeedServer

RELEASES = {
    "icc": ("ICC judges issue arrest warrant",
            "Judges of the International Criminal Court issued an arrest warrant for a former minister."),
    "reprisal": ("Defenders face reprisals after Geneva session",
                 "Several human rights defenders faced reprisals for cooperating with the UN."),
    "cricket": ("ICC announces tour schedule",
                "The International Cricket Council (ICC) announced the T20 World Cup schedule in Dubai."),
}
EXPECTED_FLAGS = {"icc": ["icc"], "reprisal": ["reprisal"], "cricket": []}


def serve_releases(server: FeedServer, path: str = "/releases.xml") -> str:
    """Add the feed (dated just now, so its first pass alerts on it) and return its URL."""
    now = datetime.now(UTC)
    items = []
    for index, (key, (title, text)) in enumerate(RELEASES.items()):
        link = server.url(f"/release/{key}")
        server.add(f"/release/{key}", f"<html><body><article><p>{text}</p></article></body></html>",
                   content_type="text/html; charset=utf-8")
        date = format_datetime(now - timedelta(minutes=index), usegmt=True)
        items.append(f"<item><title>{title}</title><link>{link}</link><guid isPermaLink=\"false\">{key}</guid>"
                     f"<pubDate>{date}</pubDate><description>{text}</description></item>")
    return server.add(path, '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel>'
                      f"<title>Releases</title><link>{server.base}/</link>{''.join(items)}</channel></rss>")


def titles_by_key() -> dict[str, str]:
    return {title: key for key, (title, _text) in RELEASES.items()}
