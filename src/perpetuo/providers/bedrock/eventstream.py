"""AWS event-stream framing (`application/vnd.amazon.eventstream`), decoded incrementally.

Each message is: total length (4 bytes, big-endian, the whole message), headers length (4),
prelude CRC32 (4, of the first 8 bytes), headers, payload, message CRC32 (4, of everything
before it). A header is name length (1), name, value type (1) and a value whose size the
type gives (strings and byte arrays carry a 2-byte length). CRCs are the gzip CRC32.

The decoder takes the body as it arrives and yields each message once its last byte is in:
it never holds more than one message plus the start of the next. The prelude is checked as
soon as its 12 bytes are in, so a corrupt length is refused before anything is buffered for
it; a message longer than the cap, a CRC that does not match or a body that ends inside a
message is an error, never a short answer. `encode_message` writes the same framing (for
mocks and benchmarks).
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass

from perpetuo.schema.errors import UpstreamError, UpstreamErrorKind
from perpetuo.transport.errors import ResponseTooLarge

_PRELUDE = struct.Struct(">III")
_PRELUDE_SIZE = 12
_MIN_MESSAGE = 16  # prelude and message CRC, no headers, no payload
_crc32 = zlib.crc32

# value type -> fixed value size (None: 2-byte length then the bytes)
_FIXED_SIZES: dict[int, int | None] = {
    0: 0,  # true
    1: 0,  # false
    2: 1,  # byte
    3: 2,  # short
    4: 4,  # integer
    5: 8,  # long
    6: None,  # byte array
    7: None,  # string
    8: 8,  # timestamp (ms since the epoch)
    9: 16,  # uuid
}
_INTEGERS = {2: ">b", 3: ">h", 4: ">i", 5: ">q", 8: ">q"}

HeaderValue = bool | int | bytes | str
# A stream repeats a few header blocks (one per event type): each is parsed once. The dicts
# are shared between messages, so readers must not change them.
_seen: dict[bytes, dict[str, HeaderValue]] = {}
_SEEN_MAX = 256


@dataclass(slots=True)
class Message:
    headers: dict[str, HeaderValue]  # shared with other messages: read only
    payload: bytes


def corrupt(what: str) -> UpstreamError:
    return UpstreamError(
        UpstreamErrorKind.BAD_RESPONSE, f"upstream event stream is corrupt: {what}"
    )


class EventStreamParser:
    """Bytes in (`feed`), complete messages out; `close` checks nothing was left halfway.

    Messages are read straight from each network read; only the start of a message cut
    across reads is kept, until the bytes its prelude announced are all in."""

    def __init__(self, max_message_bytes: int) -> None:
        self._limit = max_message_bytes
        self._pending = bytearray()
        self._need = 0  # bytes the pending start must reach before it is parsed again

    def feed(self, data: bytes) -> list[Message]:
        pending = self._pending
        if pending:
            pending += data
            if len(pending) < self._need:
                return []
            data = bytes(pending)
            pending.clear()
        messages: list[Message] = []
        pos, end = 0, len(data)
        view = memoryview(data)
        while end - pos >= _PRELUDE_SIZE:
            total, headers_size, crc = _PRELUDE.unpack_from(data, pos)
            if _crc32(view[pos : pos + 8]) != crc:
                raise corrupt("prelude checksum mismatch")
            if total < _MIN_MESSAGE or headers_size > total - _MIN_MESSAGE:
                raise corrupt(f"impossible lengths (message {total}, headers {headers_size})")
            if total > self._limit:
                raise ResponseTooLarge("event-stream message", self._limit)
            if end - pos < total:
                self._need = total
                break
            stop = pos + total
            if _crc32(view[pos : stop - 4]) != int.from_bytes(data[stop - 4 : stop], "big"):
                raise corrupt("message checksum mismatch")
            headers_end = pos + _PRELUDE_SIZE + headers_size
            raw = data[pos + _PRELUDE_SIZE : headers_end]
            headers = _seen.get(raw)
            if headers is None:
                headers = _headers(raw, 0, len(raw))
                if len(_seen) >= _SEEN_MAX:
                    _seen.clear()
                _seen[raw] = headers
            messages.append(Message(headers, data[headers_end : stop - 4]))
            pos = stop
        else:
            self._need = _PRELUDE_SIZE
        if pos < end:
            pending += view[pos:]
        return messages

    def close(self) -> None:
        if self._pending:
            raise corrupt("the stream ended inside a message")


def _headers(data: bytes, pos: int, end: int) -> dict[str, HeaderValue]:
    """The headers in data[pos:end]. Strings (what AWS sends) take the short path."""
    headers: dict[str, HeaderValue] = {}
    try:
        while pos < end:
            size = data[pos]
            name = data[pos + 1 : pos + 1 + size].decode()
            pos += 1 + size
            kind = data[pos]
            if kind == 7 or kind == 6:
                length = (data[pos + 1] << 8) | data[pos + 2]
                raw = data[pos + 3 : pos + 3 + length]
                pos += 3 + length
                headers[name] = raw.decode() if kind == 7 else raw
            else:
                fixed = _FIXED_SIZES[kind]
                assert fixed is not None
                raw = data[pos + 1 : pos + 1 + fixed]
                pos += 1 + fixed
                if kind < 2:
                    headers[name] = kind == 0
                elif kind in _INTEGERS:
                    headers[name] = struct.unpack(_INTEGERS[kind], raw)[0]
                else:
                    headers[name] = raw
            if pos > end:
                raise IndexError
    except (IndexError, KeyError, struct.error, UnicodeDecodeError):
        raise corrupt("unreadable headers") from None
    return headers


def encode_message(headers: dict[str, str], payload: bytes) -> bytes:
    """One message with string-valued headers (what AWS services send)."""
    encoded = b"".join(
        bytes([len(name)])
        + name.encode()
        + b"\x07"
        + struct.pack(">H", len(value.encode()))
        + value.encode()
        for name, value in headers.items()
    )
    total = _MIN_MESSAGE + len(encoded) + len(payload)
    prelude = struct.pack(">II", total, len(encoded))
    head = prelude + struct.pack(">I", _crc32(prelude))
    body = head + encoded + payload
    return body + struct.pack(">I", _crc32(body))
