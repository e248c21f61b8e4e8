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
Rajaraman & Ullman, *Mining of Massive Datasets* §3.4): 126 min-hashes cut into 42
bands of 3, each band hashed to one 64-bit key that store keeps in an indexed table
(``item_bands``), so finding candidates is one index lookup however large the archive. Two texts share a
band key with probability 1 − (1 − J³)⁴², 0.996 at Jaccard 0.5 and 0.29 at 0.2, so
boilerplate-heavy copies are found and store checks each candidate's exact score.
"""

from __future__ import annotations

import hashlib
import re
import struct
import unicodedata

SHINGLE_WORDS = 3
BANDS = 42
ROWS = 3
PERMUTATIONS = BANDS * ROWS
# Below this the text is a teaser or a title: too little to tell copies from releases
# on one subject (about 25 words).
MIN_SHINGLES = 20

_WORD = re.compile(r"\w+")
# Fixed keys: signatures must agree across processes, workers and versions of pressbot.
_PERSONS = tuple(f"pressbot-mh{index}".encode() for index in range(-(-PERMUTATIONS // 16)))
_WORDS = f">{16 * len(_PERSONS)}I"


def main_text(teaser: str, content: str, full_text: str | None) -> str:
    """The text copies are compared on: the page's main text or the feed's content (the
    longer), else the teaser (a site's own teaser beside a full text is its boilerplate)."""
    body = full_text if full_text and len(full_text) > len(content) else content
    return body or teaser


def shingles(text: str) -> frozenset[int]:
    """The 32-bit hashes of the text's word 3-grams, case and accents folded."""
    folded = unicodedata.normalize("NFKD", text.casefold())
    words = [word for word in _WORD.findall(folded) if not word.isdigit() or len(word) > 1]
    grams = (" ".join(words[start : start + SHINGLE_WORDS]) for start in range(len(words) - SHINGLE_WORDS + 1))
    return frozenset(int.from_bytes(hashlib.blake2b(gram.encode(), digest_size=4).digest()) for gram in grams)


def signature(hashes: frozenset[int]) -> tuple[int, ...]:
    """The MinHash signature: per permutation, the least hash of the shingles.

    Each shingle's 126 hashes are the 32-bit words of eight keyed BLAKE2b digests
    (a random function each, so the minima are min-wise independent); the minima are
    taken column by column in C (``map(min, zip(…))``), ten times faster than a loop.
    """
    rows = [_permuted(value) for value in hashes]
    return tuple(map(min, zip(*rows, strict=True)))


def _permuted(value: int) -> tuple[int, ...]:
    data = value.to_bytes(4)
    digests = b"".join(hashlib.blake2b(data, digest_size=64, person=person).digest() for person in _PERSONS)
    return struct.unpack(_WORDS, digests)[:PERMUTATIONS]


def band_keys(hashes: frozenset[int]) -> list[int]:
    """One signed 64-bit key per band (it fits a BIGINT); empty for a text too short to compare."""
    if len(hashes) < MIN_SHINGLES:
        return []
    values = signature(hashes)
    keys = []
    for band in range(BANDS):
        packed = struct.pack(f">{ROWS + 1}I", band, *values[band * ROWS : (band + 1) * ROWS])
        keys.append(int.from_bytes(hashlib.blake2b(packed, digest_size=8).digest(), signed=True))
    return keys


def similarity(first: frozenset[int], second: frozenset[int]) -> float:
    """The share of the shorter text's shingles found in the other (0 for a text too short)."""
    if min(len(first), len(second)) < MIN_SHINGLES:
        return 0.0
    return len(first & second) / min(len(first), len(second))
