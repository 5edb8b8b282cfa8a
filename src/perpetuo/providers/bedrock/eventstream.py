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


@dataclass(slots=True)
class Message:
    headers: dict[str, HeaderValue]
    payload: bytes


def corrupt(what: str) -> UpstreamError:
    return UpstreamError(
        UpstreamErrorKind.BAD_RESPONSE, f"upstream event stream is corrupt: {what}"
    )


class EventStreamParser:
    """Bytes in (`feed`), complete messages out; `close` checks nothing was left halfway."""

    def __init__(self, max_message_bytes: int) -> None:
        self._limit = max_message_bytes
        self._buffer = bytearray()
        self._need = 0  # total length of the message being assembled (0: prelude not read)

    def feed(self, data: bytes) -> list[Message]:
        buffer = self._buffer
        buffer += data
        messages: list[Message] = []
        start = 0
        end = len(buffer)
        while True:
            need = self._need
            if not need:
                if end - start < _PRELUDE_SIZE:
                    break
                need = self._prelude(buffer, start)
                self._need = need
            if end - start < need:
                break
            messages.append(_message(memoryview(buffer)[start : start + need]))
            start += need
            self._need = 0
        if start:
            del buffer[:start]
        return messages

    def close(self) -> None:
        if self._buffer:
            raise corrupt("the stream ended inside a message")

    def _prelude(self, buffer: bytearray, start: int) -> int:
        total, headers, crc = _PRELUDE.unpack_from(buffer, start)
        if _crc32(memoryview(buffer)[start : start + 8]) != crc:
            raise corrupt("prelude checksum mismatch")
        if total < _MIN_MESSAGE or headers > total - _MIN_MESSAGE:
            raise corrupt(f"impossible lengths (message {total}, headers {headers})")
        if total > self._limit:
            raise ResponseTooLarge("event-stream message", self._limit)
        return total


def _message(frame: memoryview) -> Message:
    total = len(frame)
    (crc,) = struct.unpack_from(">I", frame, total - 4)
    if _crc32(frame[: total - 4]) != crc:
        raise corrupt("message checksum mismatch")
    headers_end = _PRELUDE_SIZE + struct.unpack_from(">I", frame, 4)[0]
    headers = _headers(frame[_PRELUDE_SIZE:headers_end])
    return Message(headers, bytes(frame[headers_end : total - 4]))


def _headers(data: memoryview) -> dict[str, HeaderValue]:
    headers: dict[str, HeaderValue] = {}
    pos, end = 0, len(data)
    try:
        while pos < end:
            size = data[pos]
            name = bytes(data[pos + 1 : pos + 1 + size]).decode("utf-8")
            pos += 1 + size
            kind = data[pos]
            pos += 1
            fixed = _FIXED_SIZES[kind]
            if fixed is None:
                (length,) = struct.unpack_from(">H", data, pos)
                raw = bytes(data[pos + 2 : pos + 2 + length])
                if len(raw) != length:
                    raise IndexError
                pos += 2 + length
                headers[name] = raw.decode("utf-8") if kind == 7 else raw
            else:
                raw = bytes(data[pos : pos + fixed])
                if len(raw) != fixed:
                    raise IndexError
                pos += fixed
                if kind < 2:
                    headers[name] = kind == 0
                elif kind in _INTEGERS:
                    headers[name] = struct.unpack(_INTEGERS[kind], raw)[0]
                else:
                    headers[name] = raw
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
