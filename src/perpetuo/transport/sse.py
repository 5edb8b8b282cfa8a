"""Server-sent events: decode an upstream byte stream, encode events for clients.

Lines are split on bytes, so a multi-byte UTF-8 character cut across network chunks is
reassembled before decoding.
"""

from __future__ import annotations

from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass


@dataclass(slots=True)
class SSEEvent:
    data: str
    event: str = ""
    id: str = ""


class SSEDecoder:
    """Events of an SSE byte stream, per the WHATWG event-stream parsing rules.

    Every complete event in a network read is parsed at once, so `has_pending` can tell the
    caller that more events are ready without waiting (used to coalesce client writes)."""

    def __init__(self, chunks: AsyncIterator[bytes]) -> None:
        self._chunks = chunks
        self._buffer = b""
        self._ready: deque[SSEEvent] = deque()
        self._data: list[str] = []
        self._event = ""
        self._last_id = ""

    def has_pending(self) -> bool:
        return bool(self._ready)

    def __aiter__(self) -> AsyncIterator[SSEEvent]:
        return self._events()

    async def _events(self) -> AsyncIterator[SSEEvent]:
        async for chunk in self._chunks:
            self._feed(chunk)
            while self._ready:
                yield self._ready.popleft()
        self._finish()
        while self._ready:
            yield self._ready.popleft()

    def _feed(self, chunk: bytes) -> None:
        buffer = self._buffer + chunk
        while (cut := _line_end(buffer)) is not None:
            self._line(buffer[: cut[0]].decode("utf-8", "replace"))
            buffer = buffer[cut[1] :]
        self._buffer = buffer

    def _line(self, line: str) -> None:
        if not line:
            if self._data:
                self._ready.append(SSEEvent("\n".join(self._data), self._event, self._last_id))
            self._data, self._event = [], ""
            return
        if line.startswith(":"):
            return
        name, _, value = line.partition(":")
        if value.startswith(" "):
            value = value[1:]
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event = value
        elif name == "id":
            self._last_id = value

    def _finish(self) -> None:
        """A final event without its blank line still counts."""
        if self._buffer.strip():
            for raw in self._buffer.decode("utf-8", "replace").splitlines():
                self._line(raw)
        self._buffer = b""
        self._line("")


def decode_sse(chunks: AsyncIterator[bytes]) -> AsyncIterator[SSEEvent]:
    return aiter(SSEDecoder(chunks))


def _line_end(buffer: bytes) -> tuple[int, int] | None:
    """(end of line, start of next line) for the first line terminator, if complete."""
    lf = buffer.find(b"\n")
    cr = buffer.find(b"\r")
    if cr == -1 and lf == -1:
        return None
    if cr == -1 or (lf != -1 and lf < cr):
        return lf, lf + 1
    if cr + 1 == len(buffer):
        return None  # could be the first half of CRLF: wait for more
    return (cr, cr + 2) if buffer[cr + 1 : cr + 2] == b"\n" else (cr, cr + 1)


def encode_data(payload: bytes) -> bytes:
    return b"data: " + payload + b"\n\n"


DONE = b"data: [DONE]\n\n"
