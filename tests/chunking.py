"""Shared checks for codecs: feed a stream in pieces, account for every byte."""

from __future__ import annotations

from bia_acq.protocols.base import Chunk, Framer


def feed_in_pieces(framer: Framer, stream: bytes, cuts: list[int]) -> list[Chunk]:
    """Feed ``stream`` cut at ``cuts`` (any order, any repeats), then flush."""
    out: list[Chunk] = []
    last = 0
    for cut in [*sorted({c % (len(stream) + 1) for c in cuts}), len(stream)]:
        out += framer.feed(stream[last:cut])
        last = cut
    return out + framer.flush()


def every_chunking(stream: bytes) -> list[list[int]]:
    """Whole, halved, and byte by byte."""
    n = len(stream)
    return [[], [n // 2], list(range(n))]
