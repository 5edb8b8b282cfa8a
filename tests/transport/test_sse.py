"""SSE decoding as the WHATWG spec describes it, fed in awkward network-sized pieces."""

from __future__ import annotations

from perpetuo.transport.sse import decode_sse


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
