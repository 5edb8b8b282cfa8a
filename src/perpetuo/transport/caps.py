"""How much an upstream may send, and the decompressor that holds a body to it.

A response is untrusted input: a provider (or whatever answers at its address) can send a
body of any size, a gzip bomb, or one SSE line that never ends. Every limit here is checked
by comparing sizes already known, so the normal path pays a few integer comparisons.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from dataclasses import dataclass

from perpetuo.transport.errors import ResponseTooLarge

MiB = 1024 * 1024
RATIO_FLOOR = 1 * MiB  # ratios are judged past this much output: small bodies vary widely
STREAM_STEP = 256 * 1024  # most output one decompress call makes while streaming
UNCOUNTED_BYTES = 1 * MiB  # each body's first MiB is its own: small answers never wait


@dataclass(frozen=True, slots=True)
class ResponseCaps:
    """Per-deployment bounds on what one upstream response may make the gateway hold (and,
    for Retry-After, believe). Built from the `upstream_limits` settings."""

    max_body_bytes: int = 32 * MiB  # a whole non-streamed body, on the wire and decoded
    max_event_bytes: int = 1 * MiB  # one SSE line, and one event's data lines together
    max_decompressed_bytes: int = 64 * MiB  # all decoded output of one response (streams too)
    max_decompression_ratio: int = 200  # decoded / compressed, past RATIO_FLOOR
    max_retry_after: float = 60.0  # seconds; not a size, but routing reads it from here


class Inflater:
    """Incremental gzip or deflate decoding that never produces more than `limit` bytes.

    Output is asked for with `max_length`, so a bomb is stopped after at most one step of
    output instead of after inflating whole; the ratio compares output with the compressed
    bytes consumed so far."""

    __slots__ = ("_decoder", "_limit", "_ratio", "compressed", "decompressed")

    def __init__(self, encoding: str, limit: int, ratio: int) -> None:
        self._decoder = zlib.decompressobj(
            16 + zlib.MAX_WBITS if encoding == "gzip" else zlib.MAX_WBITS
        )
        self._limit = limit
        self._ratio = ratio
        self.compressed = 0
        self.decompressed = 0

    @staticmethod
    def for_encoding(encoding: str, limit: int, ratio: int) -> Inflater | None:
        """An Inflater for a content-encoding we decode, None for identity (or unknown)."""
        encoding = encoding.lower()
        return Inflater(encoding, limit, ratio) if encoding in ("gzip", "deflate") else None

    def inflate(self, data: bytes) -> bytes:
        """All of `data` decoded (for bodies kept whole), still judged step by step."""
        pieces = list(self.stream(data))
        return pieces[0] if len(pieces) == 1 else b"".join(pieces)

    def stream(self, data: bytes) -> Iterator[bytes]:
        """`data` decoded in pieces of at most STREAM_STEP bytes."""
        decoder = self._decoder
        while True:
            room = self._limit - self.decompressed
            out = decoder.decompress(data, min(STREAM_STEP, room + 1))
            tail = decoder.unconsumed_tail
            self.compressed += len(data) - len(tail)  # what this step consumed
            self._count(len(out), room)
            if out:
                yield out
            if not tail:
                return
            data = tail

    def flush(self) -> bytes:
        """What the decoder still holds (at most its window: every input was drained)."""
        room = self._limit - self.decompressed
        out = self._decoder.flush()
        self._count(len(out), room)
        return out

    def _count(self, produced: int, room: int) -> None:
        if produced > room:
            raise ResponseTooLarge("decompressed body", self._limit)
        total = self.decompressed = self.decompressed + produced
        if total > RATIO_FLOOR and total > self._ratio * self.compressed:
            raise ResponseTooLarge("decompression ratio", self._ratio)


class BodyBudget:
    """Bytes of large non-streamed bodies held at once by every upstream call together.

    One body may not pass its deployment's cap; this bounds the sum, so that many large
    answers at once (a hostile upstream asked concurrently) cannot add up past it. Only the
    part of each body beyond UNCOUNTED_BYTES counts; the body that would overdraw is refused."""

    __slots__ = ("limit", "used")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0

    def take(self, amount: int) -> None:
        if self.used + amount > self.limit:
            raise ResponseTooLarge("total of large bodies being read", self.limit)
        self.used += amount

    def give_back(self, amount: int) -> None:
        self.used -= amount
