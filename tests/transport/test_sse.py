"""SSE decoding as the WHATWG spec describes it, fed in awkward network-sized pieces."""

from __future__ import annotations

import random
import re

import pytest

from perpetuo.transport.errors import ResponseTooLarge
from perpetuo.transport.sse import SSEDecoder, decode_sse


async def chunks(*pieces: bytes):
    for piece in pieces:
        yield piece


async def decode(*pieces: bytes):
    return [e async for e in decode_sse(chunks(*pieces))]


async def test_events_split_anywhere():
    raw = (
        b'event: message_start\ndata: {"a": 1}\n\n: comment\ndata: {"b": 2}\r\n\r\ndata: [DONE]\n\n'
    )
    whole = await decode(raw)
    for cut in range(1, len(raw)):
        assert await decode(raw[:cut], raw[cut:]) == whole
    assert [(e.event, e.data) for e in whole] == [
        ("message_start", '{"a": 1}'),
        ("", '{"b": 2}'),
        ("", "[DONE]"),
    ]


async def test_multibyte_character_split_across_chunks():
    text = 'data: {"t": "日本👋🏽"}\n\n'.encode()
    split_at = text.index("👋".encode()) + 2  # inside the 4-byte emoji
    events = await decode(text[:split_at], text[split_at:])
    assert events[0].data == '{"t": "日本👋🏽"}'


async def test_multiline_data_and_missing_final_blank_line():
    events = await decode(b"data: line one\ndata: line two\n\ndata:no-space\nid: 7")
    assert events[0].data == "line one\nline two"
    assert events[1].data == "no-space"


async def test_bare_carriage_returns():
    events = await decode(b"data: a\r\rdata: b\r", b"\r")
    assert [e.data for e in events] == ["a", "b"]


def reference(raw: bytes) -> list[tuple[str, str, str]]:
    """The spec's reading of a whole stream, line by line: (event, data, id) of each event."""
    events, data, event, last_id = [], [], "", ""
    for line in [*re.split(r"\r\n|\r|\n", raw.decode()), ""]:
        if not line:
            if data:
                events.append((event, "\n".join(data), last_id))
            data, event = [], ""
            continue
        if line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if name == "data":
            data.append(value)
        elif name == "event":
            event = value
        elif name == "id":
            last_id = value
    return events


@pytest.mark.parametrize("seed", range(40))
async def test_reads_cut_anywhere_give_the_spec_reading(seed):
    """Whatever the reads (most end mid-line, some mid-character), with LF, CRLF or CR
    terminators, the events are the spec's: the whole-read path for LF-terminated lines and
    the line-by-line one agree."""
    rng = random.Random(seed)
    newline = rng.choice([b"\n", b"\n", b"\r\n", b"\r"])
    words = ["delta", "日本", "👋🏽", "é", '{"a": 1}', "", " lead"]
    lines = []
    for n in range(rng.randint(1, 12)):
        if rng.random() < 0.5:
            lines.append(f"event: kind_{n}")
        if rng.random() < 0.2:
            lines.append(": a comment")
        if rng.random() < 0.2:
            lines.append(f"id: {n}")
        lines += [f"data: {' '.join(rng.sample(words, 3))}" for _ in range(rng.randint(1, 3))]
        lines.append("")
    raw = newline.join(line.encode() for line in lines)
    cuts = sorted(rng.sample(range(1, len(raw)), min(len(raw) - 1, rng.randint(0, 8))))
    pieces = [raw[a:b] for a, b in zip([0, *cuts], [*cuts, len(raw)], strict=True)]
    events = await decode(*pieces)
    assert [(e.event, e.data, e.id) for e in events] == reference(raw)


async def test_a_line_over_the_cap_among_short_ones_is_refused():
    # A comment: only the line cap applies to it (an event's data has its own).
    lines = b"data: short\n\n" + b": " + b"x" * 100 + b"\n\ndata: short\n\n"
    with pytest.raises(ResponseTooLarge):
        [e async for e in SSEDecoder(chunks(lines), max_event_bytes=64)]
    events = [e async for e in SSEDecoder(chunks(lines[:13], lines[-13:]), max_event_bytes=64)]
    assert [e.data for e in events] == ["short", "short"]
