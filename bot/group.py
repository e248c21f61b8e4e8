"""Copies of one release across feeds: shingles, MinHash bands and similarity. Pure.

A release republished by another source (ReliefWeb reposting OHCHR, one joint NGO
letter on three sites) keeps its main text and gains the other site's header, teaser,
"About …" and contacts. So the text compared is the main text without the title, as
sets of word shingles, and the score is the share of the *shorter* copy's shingles
that the other copy has: the Jaccard similarity of the two once the longer copy's own
additions (its boilerplate) are left out. On tests/data/group-pairs.jsonl plain
Jaccard reaches 0.8 for only half the republished pairs, while no pair of different
releases on one subject scores above 0.35 either way (tests/test_group.py pins it).

Candidates come from MinHash locality-sensitive hashing (Broder 1997; Leskovec,
Rajaraman & Ullman, *Mining of Massive Datasets* §3.4): 63 min-hashes cut into 21 bands
of 3, each band hashed to one 64-bit key that store keeps in an indexed table
(``item_bands``), so finding candidates is an index lookup however large the archive.
Two texts share a band key with probability 1 − (1 − J³)²¹: 0.94 at Jaccard 0.5, 0.999
at 0.66 (the most boilerplate-laden copy in the pairs), 0.16 at 0.2; store then checks
each candidate's exact score, so a chance candidate costs a comparison, never a group.
"""

from __future__ import annotations

import hashlib
import re
import struct
import unicodedata

SHINGLE_WORDS = 3
BANDS = 21
ROWS = 3
PERMUTATIONS = BANDS * ROWS  # of the 64 bins
# Below this the text is a teaser or a title: too little to tell copies from releases
# on one subject (about 25 words).
MIN_SHINGLES = 20
# Copies are compared on the first 100,000 characters of their main text (a press release
# has 2–20 KB): the word list of a 10 MB release took ~90 MB and 1.3 s (issue 14), and two
# texts that agree that far are copies whatever follows.
MAX_COMPARED_CHARS = 100_000

_WORD = re.compile(r"\w+")
_BINS = 64
_VALUE_BITS = 58  # a 64-bit shingle hash: 6 bits of bin, 58 of value
_VALUE_MASK = (1 << _VALUE_BITS) - 1
_DISTANCE = 1 << _VALUE_BITS  # a densified value never equals a genuine one
_EMPTY = 1 << 72


def main_text(teaser: str, content: str, full_text: str | None) -> str:
    """The text copies are compared on: the page's main text or the feed's content (the
    longer), else the teaser (a site's own teaser beside a full text is its boilerplate)."""
    body = full_text if full_text and len(full_text) > len(content) else content
    return body or teaser


def text_digest(text: str) -> bytes:
    """A main text's identity: whether band keys worked out elsewhere are still its own."""
    return hashlib.blake2b(text.encode(), digest_size=16).digest()


def shingles(text: str) -> frozenset[int]:
    """The 64-bit hashes of the word 3-grams of the text's first ``MAX_COMPARED_CHARS``
    characters, case and accents folded (BLAKE2b: the same in every process, whatever
    PYTHONHASHSEED)."""
    folded = unicodedata.normalize("NFKD", text[:MAX_COMPARED_CHARS].casefold())
    words = [word for word in _WORD.findall(folded) if not word.isdigit() or len(word) > 1]
    grams = (" ".join(words[start : start + SHINGLE_WORDS]) for start in range(len(words) - SHINGLE_WORDS + 1))
    return frozenset(int.from_bytes(hashlib.blake2b(gram.encode(), digest_size=8).digest()) for gram in grams)


def signature(hashes: frozenset[int]) -> tuple[int, ...]:
    """The MinHash signature by one-permutation hashing (Li, Owen & Zhang 2012).

    The top 6 bits of each shingle's hash pick one of 64 bins, the rest is its value,
    and each bin keeps its least value; an empty bin takes the next filled bin's value
    to its right, offset by the distance (rotation densification, Shrivastava & Li
    2014), which keeps P(two signatures agree in a bin) = Jaccard. One pass over the
    shingles instead of one per permutation: a pass with grouping stays within 10% of
    one without (benchmarks/grouping.py).
    """
    bins = [_EMPTY] * _BINS
    for value in hashes:
        index, rest = value >> _VALUE_BITS, value & _VALUE_MASK
        if rest < bins[index]:
            bins[index] = rest
    if _EMPTY in bins and len(hashes):
        filled = list(bins)
        for index in range(_BINS):
            step = 1
            while filled[index] == _EMPTY:
                nearest = bins[(index + step) % _BINS]
                if nearest != _EMPTY:
                    filled[index] = nearest + step * _DISTANCE
                step += 1
        bins = filled
    return tuple(bins[:PERMUTATIONS])


def band_keys(hashes: frozenset[int]) -> list[int]:
    """One signed 64-bit key per band (it fits a BIGINT); empty for a text too short to compare."""
    if len(hashes) < MIN_SHINGLES:
        return []
    values = signature(hashes)
    keys = []
    for band in range(BANDS):
        packed = struct.pack(f">I{ROWS}Q", band, *values[band * ROWS : (band + 1) * ROWS])
        keys.append(int.from_bytes(hashlib.blake2b(packed, digest_size=8).digest(), signed=True))
    return keys


def similarity(first: frozenset[int], second: frozenset[int]) -> float:
    """The share of the shorter text's shingles found in the other (0 for a text too short)."""
    if min(len(first), len(second)) < MIN_SHINGLES:
        return 0.0
    return len(first & second) / min(len(first), len(second))
