"""A page source's CSS selectors, compiled (cssselect through lxml). Part of the listing stage.

Apart from the reading of a page: ``config.load()`` checks every selector, and every
command reading the configuration would otherwise load htmldate (bot.listing.dates).
"""

from __future__ import annotations

from lxml import etree
from lxml.cssselect import CSSSelector, SelectorError


class SelectorSyntaxError(ValueError):
    """A CSS selector cssselect cannot read; the message says where."""


def compile_selector(selector: str) -> CSSSelector:
    """The compiled selector, or SelectorSyntaxError (config validation calls this)."""
    try:
        return CSSSelector(selector)
    except (SelectorError, etree.XPathError) as exc:
        raise SelectorSyntaxError(f"bad CSS selector {selector!r}: {exc}") from None
