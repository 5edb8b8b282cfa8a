"""Server-sent events: decode an upstream byte stream, encode events for clients.

Lines are split on bytes, so a multi-byte UTF-8 character cut across network chunks is
reassembled before decoding.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass


@dataclass(slots=True)
class SSEEvent:
    data: str
    event: str = ""
    id: str = ""


async def decode_sse(chunks: AsyncIterator[bytes]) -> AsyncIterator[SSEEvent]:
    """Events of an SSE byte stream, per the WHATWG event-stream parsing rules."""
    buffer = b""
    data: list[str] = []
    event = ""
    last_id = ""
    async for chunk in chunks:
        buffer += chunk
        while True:
            cut = _line_end(buffer)
            if cut is None:
                break
            line_bytes, buffer = buffer[: cut[0]], buffer[cut[1] :]
            line = line_bytes.decode("utf-8", "replace")
            if not line:
                if data:
                    yield SSEEvent("\n".join(data), event, last_id)
                data, event = [], ""
                continue
            if line.startswith(":"):
                continue
            name, _, value = line.partition(":")
            if value.startswith(" "):
                value = value[1:]
            if name == "data":
                data.append(value)
            elif name == "event":
                event = value
            elif name == "id":
                last_id = value
    if buffer.strip():  # a final event without its blank line still counts
        for raw in buffer.decode("utf-8", "replace").splitlines():
            name, _, value = raw.partition(":")
            if name == "data":
                data.append(value[1:] if value.startswith(" ") else value)
            elif name == "event":
                event = value.strip()
    if data:
        yield SSEEvent("\n".join(data), event, last_id)


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
