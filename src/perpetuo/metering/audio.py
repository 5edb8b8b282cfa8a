"""How long an audio upload is, for pricing transcriptions per second when the provider's
answer does not say (whisper's `json` answers before usage was reported, `text`, `srt`).

WAV files carry it in their header (exact). Compressed formats would need decoding, so
their length is estimated from the size at a typical bitrate for the format (and the
record is marked estimated); a subtitle answer's last cue, when there is one, is closer.
"""

from __future__ import annotations

import re
import struct

# Bytes per second at a typical bitrate: 128 kbit/s MP3 and AAC, 64 kbit/s Opus and Vorbis,
# FLAC at about half of CD audio's 176,400.
BYTES_PER_SECOND = {
    "mp3": 16_000,
    "mpga": 16_000,
    "mpeg": 16_000,
    "m4a": 16_000,
    "mp4": 16_000,
    "aac": 16_000,
    "ogg": 8_000,
    "oga": 8_000,
    "opus": 8_000,
    "webm": 8_000,
    "flac": 88_200,
}
DEFAULT_BYTES_PER_SECOND = 16_000
_CUE_END = re.compile(rb"--> *(\d{1,2}):(\d{2}):(\d{2})[,.](\d{3})")


def wav_seconds(data: memoryview) -> float | None:
    """The exact length of a PCM WAV file, from its `fmt ` and `data` chunks."""
    head = bytes(data[:12])
    if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
        return None
    pos, byte_rate = 12, 0
    while pos + 8 <= len(data):
        chunk, size = struct.unpack("<4sI", data[pos : pos + 8])
        if chunk == b"fmt " and size >= 12:
            byte_rate = struct.unpack("<I", data[pos + 16 : pos + 20])[0]
        elif chunk == b"data":
            if not byte_rate:
                return None
            size = min(size, len(data) - pos - 8)  # streamed WAVs may claim 0xFFFFFFFF
            return size / byte_rate
        pos += 8 + size + (size & 1)
    return None


def estimated_seconds(data: memoryview, filename: str) -> tuple[float, bool]:
    """(seconds, exact) for an upload named `filename`."""
    exact = wav_seconds(data)
    if exact is not None:
        return exact, True
    extension = filename.rsplit(".", 1)[-1].lower() if "." in filename else ""
    rate = BYTES_PER_SECOND.get(extension, DEFAULT_BYTES_PER_SECOND)
    return len(data) / rate, False


def last_cue_seconds(subtitles: bytes) -> float | None:
    """Where the last cue of an SRT or WebVTT transcript ends."""
    ends = _CUE_END.findall(subtitles[-4096:])
    if not ends:
        return None
    hours, minutes, seconds, millis = (int(v) for v in ends[-1])
    return hours * 3600 + minutes * 60 + seconds + millis / 1000
