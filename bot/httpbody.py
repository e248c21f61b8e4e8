"""Content-Encoding decoded here, every layer capped as its bytes are produced.

httpx decodes each chunk in one ``decompress`` call, unbounded: a 2 KB response with
``Content-Encoding: gzip, gzip`` inflates to gigabytes inside a single call before a
size check can run (issue 14). Here each layer is a ``zlib.decompressobj`` asked for
at most ``_STEP`` bytes at a time, and every layer's output counts against the cap,
so memory stays within a few steps whatever the nesting.
"""

from __future__ import annotations

import zlib
from collections.abc import AsyncIterator, Iterator

from bot.errors import FetchError

_STEP = 64 * 1024
_MAX_LAYERS = 3  # gzip over deflate is the most seen in the wild; more is an attack
_GZIP = zlib.MAX_WBITS | 16
_IDENTITY = frozenset({"", "identity"})


class _Layer:
    """One ``gzip`` or ``deflate`` coding, decoded in bounded steps."""

    def __init__(self, coding: str, url: str, max_bytes: int) -> None:
        self.coding = coding
        self.url = url
        self.max_bytes = max_bytes
        self.produced = 0
        self.started = False
        self._decompressor = self._new()

    def _new(self, raw: bool = False) -> zlib._Decompress:
        if self.coding == "gzip":
            return zlib.decompressobj(_GZIP)
        # RFC 9110 §8.4.1.2 says zlib-wrapped; some servers send raw deflate (httpx tries both too).
        return zlib.decompressobj(-zlib.MAX_WBITS if raw else zlib.MAX_WBITS)

    def feed(self, data: bytes) -> Iterator[bytes]:
        while True:
            try:
                out = self._decompressor.decompress(data, _STEP)
            except zlib.error as exc:
                if self.coding == "deflate" and not self.started:
                    self._decompressor = self._new(raw=True)
                    self.started = True
                    continue
                raise FetchError(self.url, f"{self.coding} body cannot be decoded: {exc}") from exc
            self.started = True
            data = self._decompressor.unconsumed_tail
            if self._decompressor.eof:
                # Concatenated gzip members are one body (RFC 1952 §2.2); trailing bytes
                # after a deflate stream are ignored, as browsers do.
                rest = self._decompressor.unused_data
                data = rest if self.coding == "gzip" and rest.strip(b"\x00") else b""
                if data:
                    self._decompressor = self._new()
            yield from self._counted(out)
            # A full step may leave output pending inside zlib even with no input left.
            if not data and (len(out) < _STEP or self._decompressor.eof):
                return

    def _counted(self, out: bytes) -> Iterator[bytes]:
        if out:
            self.produced += len(out)
            if self.produced > self.max_bytes:
                raise FetchError(self.url, f"body too large: over {self.max_bytes} bytes once decoded")
            yield out


def codings(header: str | None, url: str) -> list[str]:
    """The Content-Encoding codings in the order to undo them (last applied first)."""
    names = [name.strip().lower() for name in (header or "").split(",")]
    names = ["gzip" if name == "x-gzip" else name for name in names if name not in _IDENTITY]
    for name in names:
        if name not in ("gzip", "deflate"):
            raise FetchError(url, f"unsupported Content-Encoding {name!r} (we ask for gzip or deflate)")
    if len(names) > _MAX_LAYERS:
        raise FetchError(url, f"refused: {len(names)} stacked Content-Encodings (at most {_MAX_LAYERS})")
    return list(reversed(names))


async def decoded_chunks(
    raw: AsyncIterator[bytes], header: str | None, url: str, max_bytes: int
) -> AsyncIterator[bytes]:
    """The body of ``raw`` with its Content-Encoding undone, never more than ``max_bytes`` per layer."""
    layers = [_Layer(coding, url, max_bytes) for coding in codings(header, url)]

    def through(data: bytes, index: int) -> Iterator[bytes]:
        if index == len(layers):
            yield data
            return
        for out in layers[index].feed(data):
            yield from through(out, index + 1)

    async for chunk in raw:
        for out in through(chunk, 0):
            yield out
