"""What non-chat calls are charged: images per image or per token, audio seconds from the
answer, the WAV header, subtitles or the file size, characters spoken, rerank searches; the
worst case reserved before the call; unit prices overridden per deployment."""

from __future__ import annotations

import struct
from decimal import Decimal
from pathlib import Path

from perpetuo.config import load_config
from perpetuo.config.model import PriceConfig
from perpetuo.metering.audio import estimated_seconds, last_cue_seconds, wav_seconds
from perpetuo.metering.operations import meter, worst_cost
from perpetuo.metering.pricing import default_catalog
from perpetuo.providers.base import OperationAnswer
from perpetuo.routing.table import RoutingTable
from perpetuo.schema.forms import Form, FormFile
from perpetuo.schema.operations import (
    AUDIO_SPEECH,
    AUDIO_TRANSCRIPTIONS,
    IMAGES_GENERATIONS,
    RERANK,
    OperationRequest,
)


def deployment(tmp_path: Path, model: str, price: str = ""):
    path = tmp_path / "c.yaml"
    path.write_text(
        "providers: {o: {type: openai, api_key: k}}\n"
        f"models: {{a: {{deployments: [{{provider: o, model: {model}{price}}}]}}}}\n"
    )
    return RoutingTable.build(load_config(path, env={}), str(path)).get("a").deployments[0]


def wav(seconds: float, rate: int = 8000) -> bytes:
    data = b"\x00\x00" * int(seconds * rate)
    fmt = struct.pack("<IHHIIHH", 16, 1, 1, rate, rate * 2, 2, 16)
    extra = b"LIST" + struct.pack("<I", 3) + b"abc\x00"  # an odd-sized chunk before the data
    return (
        b"RIFF"
        + struct.pack("<I", 0)
        + b"WAVEfmt "
        + fmt
        + extra
        + b"data"
        + struct.pack("<I", len(data))
        + data
    )


def test_audio_lengths():
    assert wav_seconds(memoryview(wav(1.5))) == 1.5
    assert wav_seconds(memoryview(b"ID3" + b"\x00" * 100)) is None
    assert estimated_seconds(memoryview(b"\x00" * 48_000), "talk.MP3") == (3.0, False)
    assert estimated_seconds(memoryview(wav(2.0)), "x.bin") == (2.0, True)
    srt = b"1\n00:00:00,000 --> 00:00:04,500\nhi\n\n2\n00:01:02,250 --> 00:01:03,125\nbye\n"
    assert last_cue_seconds(srt) == 63.125
    assert last_cue_seconds(b"no cues") is None


def test_images_per_image_by_quality_and_size(tmp_path):
    dep = deployment(tmp_path, "dall-e-3")
    request = OperationRequest(
        IMAGES_GENERATIONS, "a", {"prompt": "x", "quality": "hd", "size": "1792x1024"}
    )
    metered = meter(request, OperationAnswer({"data": [{"url": "u"}]}), dep)
    assert (metered.unit, metered.quantity, metered.cost) == ("images", 1, Decimal("0.12"))
    plain = OperationRequest(IMAGES_GENERATIONS, "a", {"prompt": "x"})
    assert meter(plain, OperationAnswer({"data": [{}]}), dep).cost == Decimal("0.04")
    assert worst_cost(request, (dep,)) == 120_000


def test_unit_prices_overridden_per_deployment(tmp_path):
    dep = deployment(tmp_path, "imagen-4.0-generate-001", ", price: {per_image: 0.5}")
    request = OperationRequest(IMAGES_GENERATIONS, "a", {"prompt": "x", "n": 2})
    assert meter(request, OperationAnswer({"data": [{}, {}]}), dep).cost == Decimal("1.0")
    units = default_catalog().units_for("tts-1", PriceConfig(per_million_characters=1))
    assert units is not None and units.per_million_characters == 1


def test_transcription_seconds_in_order_of_trust(tmp_path):
    dep = deployment(tmp_path, "whisper-1")
    upload = Form((("file", FormFile("a.wav", "audio/wav", memoryview(wav(4.0)))),))
    request = OperationRequest(AUDIO_TRANSCRIPTIONS, "a", {}, upload)
    reported = meter(request, OperationAnswer({"usage": {"type": "duration", "seconds": 6}}), dep)
    assert (reported.quantity, reported.usage.estimated) == (6, False)
    assert reported.cost == Decimal("0.0006")
    assert meter(request, OperationAnswer({"duration": 5.5}), dep).quantity == 5.5
    assert meter(request, OperationAnswer({"text": "t"}), dep).quantity == 4.0  # the header
    mp3 = Form((("file", FormFile("a.mp3", "audio/mpeg", memoryview(b"\x00" * 160_000))),))
    subtitles = OperationAnswer(text=b"1\n00:00:00,000 --> 00:00:07,000\nhi\n")
    cued = meter(OperationRequest(AUDIO_TRANSCRIPTIONS, "a", {}, mp3), subtitles, dep)
    assert (cued.quantity, cued.usage.estimated) == (7.0, True)  # closer than 10 s by size


def test_speech_and_rerank(tmp_path):
    speech = OperationRequest(AUDIO_SPEECH, "a", {"input": "x" * 1000})
    metered = meter(speech, None, deployment(tmp_path, "tts-1-hd"))
    assert (metered.unit, metered.quantity, metered.cost) == ("characters", 1000, Decimal("0.03"))
    many = OperationRequest(RERANK, "a", {"query": "q", "documents": ["d"] * 250})
    cohere = deployment(tmp_path, "rerank-v3.5")
    billed = meter(many, OperationAnswer({"meta": {"billed_units": {"search_units": 3}}}), cohere)
    assert (billed.quantity, billed.usage.estimated, billed.cost) == (3, False, Decimal("0.006"))
    counted = meter(many, OperationAnswer({}), cohere)  # 250 documents: 3 searches of 100
    assert (counted.quantity, counted.usage.estimated) == (3, True)
