"""The flag stage: does a release mention reprisals, the ICC, or any flag a user defines?

Rules are data (``[flags.<name>]`` in ``config/pressbot.toml``, whose comments document
the format). ``compile_rules`` validates and compiles them once (``config.load`` does it);
``match_flags`` is pure and explains each flag with the phrase as written and its
sentence; ``evaluate`` scores the rules on labeled releases (``pressbot flags test``).

    text.py     the folded copy of a release that phrases match
    phrases.py  the phrase syntax, and phrase sets tried only where their anchors are
    rules.py    compiling and validating the [flags] table
    match.py    matching a release, and scoring labeled ones
"""

from bot.flag.match import MAX_MATCHES_PER_FLAG, evaluate, match_flags
from bot.flag.phrases import phrase_anchors, phrase_regex
from bot.flag.rules import LANGUAGES, FlagRules, compile_rules
from bot.flag.text import fold_text

__all__ = [
    "LANGUAGES",
    "MAX_MATCHES_PER_FLAG",
    "FlagRules",
    "compile_rules",
    "evaluate",
    "fold_text",
    "match_flags",
    "phrase_anchors",
    "phrase_regex",
]
