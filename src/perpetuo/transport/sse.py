"""Server-sent events: decode an upstream byte stream, encode events for clients.

Lines are split on bytes, so a multi-byte UTF-8 character cut across network chunks is
reassembled before decoding. Each read is scanned once from where the last line ended and a
line cut across reads is kept in pieces, so a huge line costs linear work (never a search of
the whole buffer per read); a line or event past the cap ends the stream with
ResponseTooLarge instead of growing without bound.
"""

from __future__ import annotations

from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass

from perpetuo.transport.caps import ResponseCaps
from perpetuo.transport.errors import ResponseTooLarge

_DEFAULT_LIMIT = ResponseCaps().max_event_bytes


@dataclass(slots=True)
class SSEEvent:
    data: str
    event: str = ""
    id: str = ""


class SSEDecoder:
    """Events of an SSE byte stream, per the WHATWG event-stream parsing rules.

    Every complete event in a network read is parsed at once, so `has_pending` can tell the
    caller that more events are ready without waiting (used to coalesce client writes).
    `max_event_bytes` bounds one line and one event's data lines together."""

    def __init__(self, chunks: AsyncIterator[bytes], max_event_bytes: int = _DEFAULT_LIMIT):
        self._chunks = chunks
        self._limit = max_event_bytes
        self._partial: list[bytes] = []  # the start of a line cut across reads
        self._partial_size = 0
        self._skip_lf = False  # the last read ended on CR: a LF opening the next is its pair
        self._ready: deque[SSEEvent] = deque()
        self._data: list[str] = []
        self._data_size = 0
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
        if self._skip_lf or b"\r" in chunk:
            self._feed_lines(chunk)  # CR terminators: the general path
            return
        pos = 0
        if self._partial:  # the end of the line cut at the last read comes first
            pos = chunk.find(b"\n") + 1
            if not pos:
                self._feed_lines(chunk)
                return
            self._take(chunk[: pos - 1])
        cut = chunk.rfind(b"\n")
        if cut - pos >= self._limit:  # a line may be over the cap: checked line by line
            self._feed_lines(chunk[pos:])
            return
        if cut >= pos:
            # The common case: LF-terminated lines, all under the cap (they fit in less), so
            # the read's complete lines are decoded and split at once, not one by one. A
            # multi-byte character cut by the read is in the unfinished line kept below.
            for line in chunk[pos:cut].decode("utf-8", "replace").split("\n"):
                self._line(line)
            pos = cut + 1
        if pos < len(chunk):
            self._keep_partial(chunk[pos:])

    def _feed_lines(self, chunk: bytes) -> None:
        """Any read, line by line, with CR, LF and CRLF terminators."""
        pos, end = 0, len(chunk)
        if self._skip_lf:
            self._skip_lf = False
            if chunk[:1] == b"\n":
                pos = 1
        # Each terminator is searched for once, from where the previous line ended.
        lf = chunk.find(b"\n", pos)
        cr = chunk.find(b"\r", pos)
        while lf != -1 or cr != -1:
            if cr == -1 or (lf != -1 and lf < cr):
                cut = lf
                after = lf + 1
            else:
                cut, after = cr, cr + 1
                if after == end:
                    self._skip_lf = True  # maybe the first half of a CRLF
                elif chunk[after] == 10:
                    after += 1
            self._take(chunk[pos:cut])
            pos = after
            if lf != -1 and lf < pos:
                lf = chunk.find(b"\n", pos)
            if cr != -1 and cr < pos:
                cr = chunk.find(b"\r", pos)
        if pos < end:
            self._keep_partial(chunk[pos:] if pos else chunk)

    def _keep_partial(self, piece: bytes) -> None:
        """The start of a line the next read finishes."""
        self._partial_size += len(piece)
        if self._partial_size > self._limit:
            self._partial.clear()
            raise ResponseTooLarge("SSE line", self._limit)
        self._partial.append(piece)

    def _take(self, raw: bytes) -> None:
        """One complete line (the end of a cut one, when pieces are waiting)."""
        if self._partial:
            self._partial.append(raw)
            raw = b"".join(self._partial)
            self._partial.clear()
            self._partial_size = 0
        if len(raw) > self._limit:
            raise ResponseTooLarge("SSE line", self._limit)
        self._line(raw.decode("utf-8", "replace"))

    def _line(self, line: str) -> None:
        if not line:
            if self._data:
                self._ready.append(SSEEvent("\n".join(self._data), self._event, self._last_id))
            self._data, self._event, self._data_size = [], "", 0
            return
        if line.startswith(":"):
            return
        name, _, value = line.partition(":")
        if value.startswith(" "):
            value = value[1:]
        if name == "data":
            self._data_size += len(value) + 1
            if self._data_size > self._limit:
                self._data.clear()
                raise ResponseTooLarge("SSE event", self._limit)
            self._data.append(value)
        elif name == "event":
            self._event = value
        elif name == "id":
            self._last_id = value

    def _finish(self) -> None:
        """A final event without its blank line still counts."""
        if self._partial:
            raw = b"".join(self._partial)
            self._partial.clear()
            self._partial_size = 0
            if raw.strip():
                self._line(raw.decode("utf-8", "replace"))
        self._line("")


def decode_sse(
    chunks: AsyncIterator[bytes], max_event_bytes: int = _DEFAULT_LIMIT
) -> AsyncIterator[SSEEvent]:
    return aiter(SSEDecoder(chunks, max_event_bytes))


def encode_data(payload: bytes) -> bytes:
    return b"data: " + payload + b"\n\n"


DONE = b"data: [DONE]\n\n"
