"""Listing stage: a newsroom listing page → the releases it lists. Pure.

``releases`` reads a page (``parse_listing`` for the pass, ``extract_listing`` for
``feeds check`` and ``discover``), from ``page`` (the HTML), ``links`` (which links are
releases) and ``dates`` (htmldate). ``selectors`` is the one part the configuration
needs: it checks the CSS selectors without loading htmldate, and the pass loads the
rest only when a listing changed (``bot.poll.PageStages``).
"""
