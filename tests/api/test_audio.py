"""Audio through the gateway with the official openai SDK: transcriptions and translations
(uploads sent on unchanged; json, text, srt, vtt, verbose_json) priced per second from the
provider's usage, the transcript or the file, speech streamed back chunk by chunk and priced
per character; OpenAI and Azure, errors, a broken stream, failover, limits, budgets, scopes,
the wrong-endpoint 400 and the upload cap."""

from __future__ import annotations

import time

import httpx
import openai
import pytest

from tests.api.operations_support import (
    create_key,
    start_gateway,
    wait_for_logs,
    wait_until_settled,
    wav,
)
from tests.mocks.openai_media import speech_bytes, transcript_of
from tests.mocks.server import Fault
from tests.support.gateway import MASTER_KEY


@pytest.fixture(scope="module")
def env(mocks, tmp_path_factory):
    yield from start_gateway(mocks, tmp_path_factory, "audio")


@pytest.fixture
def gw(env):
    return env[0]


@pytest.fixture
def quiet_whisper(openai_mock):
    openai_mock.report_audio_usage = False
    yield
    openai_mock.report_audio_usage = True


def sdk(gw, key: str = MASTER_KEY) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{gw.url}/v1", api_key=key, max_retries=0)


def test_transcription_uploads_the_file_unchanged_and_meters_seconds(gw, openai_mock):
    key = create_key(gw)
    audio = wav(3.0)
    result = sdk(gw, key["key"]).audio.transcriptions.create(
        model="whisper-1", file=("speech.wav", audio, "audio/wav"), language="en"
    )
    assert result.text == transcript_of(audio)
    sent = openai_mock.last
    assert sent.path == "/v1/audio/transcriptions" and audio in sent.raw
    assert b'name="language"\r\n\r\nen\r\n' in sent.raw
    (entry,) = wait_for_logs(gw, key["id"], 1)
    assert entry["endpoint"] == "audio.transcriptions"
    assert (entry["unit"], entry["quantity"], entry["usage_estimated"]) == ("seconds", 3, False)
    assert entry["cost_usd"] == pytest.approx(3 / 60 * 0.006)


def test_every_response_format_comes_back_as_the_provider_wrote_it(gw):
    client = sdk(gw)
    file = ("speech.wav", wav(2.0), "audio/wav")
    text = client.audio.transcriptions.create(model="whisper-1", file=file, response_format="text")
    assert text.strip() == transcript_of(file[1])
    srt = client.audio.transcriptions.create(model="whisper-1", file=file, response_format="srt")
    assert "00:00:00,000 --> 00:00:02,000" in srt
    vtt = client.audio.transcriptions.create(model="whisper-1", file=file, response_format="vtt")
    assert vtt.startswith("WEBVTT")
    verbose = client.audio.transcriptions.create(
        model="whisper-1", file=file, response_format="verbose_json"
    )
    assert verbose.duration == 2.0 and verbose.segments[0].end == 2.0


def test_without_reported_usage_the_duration_comes_from_the_file(gw, quiet_whisper):
    key = create_key(gw)
    client = sdk(gw, key["key"])
    client.audio.transcriptions.create(model="whisper-1", file=("a.wav", wav(2.5), "audio/wav"))
    mp3 = b"\xff\xfb" + b"\x00" * 31_998  # 32,000 bytes: 2 s at 128 kbit/s
    client.audio.transcriptions.create(model="whisper-1", file=("b.mp3", mp3, "audio/mpeg"))
    newest, oldest = wait_for_logs(gw, key["id"], 2)
    assert (oldest["quantity"], oldest["usage_estimated"]) == (2.5, False)  # the WAV header
    assert (newest["quantity"], newest["usage_estimated"]) == (2, True)  # size and bitrate


def test_token_billed_transcription_and_translations(gw, openai_mock):
    key = create_key(gw)
    client = sdk(gw, key["key"])
    client.audio.transcriptions.create(
        model="gpt-4o-transcribe", file=("a.wav", wav(1.0), "audio/wav")
    )
    (entry,) = wait_for_logs(gw, key["id"], 1)
    words = len(transcript_of(wav(1.0)).split())
    assert (entry["prompt_tokens"], entry["completion_tokens"]) == (10, words)
    assert entry["cost_usd"] == pytest.approx((10 * 6 + words * 10) / 1e6, abs=1e-6)
    translated = client.audio.translations.create(
        model="whisper-1", file=("fr.wav", wav(1.0), "audio/wav")
    )
    assert translated.text and openai_mock.last.path == "/v1/audio/translations"
    with pytest.raises(openai.BadRequestError) as exc:
        client.audio.translations.create(
            model="gpt-4o-transcribe", file=("fr.wav", wav(1.0), "audio/wav")
        )
    assert "not supported for translations" in exc.value.message
    with pytest.raises(openai.BadRequestError) as exc:
        client.audio.transcriptions.create(
            model="gpt-4o-transcribe", file=("a.wav", wav(1.0), "audio/wav"), response_format="srt"
        )
    assert exc.value.param == "response_format"


def test_azure_audio_routes(gw, openai_mock):
    client = sdk(gw)
    client.audio.transcriptions.create(model="azure-whisper", file=("a.wav", wav(1), "audio/wav"))
    assert openai_mock.last.path == "/openai/deployments/whisper-dep/audio/transcriptions"
    with client.audio.speech.with_streaming_response.create(
        model="azure-tts", voice="alloy", input="hello"
    ) as response:
        assert response.read() == speech_bytes("hello")
    assert openai_mock.last.path == "/openai/deployments/tts-dep/audio/speech"


def test_speech_streams_chunk_by_chunk_and_is_priced_per_character(gw, openai_mock):
    key = create_key(gw)
    text = "Streaming speech, one chunk at a time."
    openai_mock.fail_next(Fault(event_delay=0.4))  # the mock pauses after each of 4 chunks
    started = time.monotonic()
    with sdk(gw, key["key"]).audio.speech.with_streaming_response.create(
        model="tts-1", voice="nova", input=text, response_format="wav"
    ) as response:
        assert response.headers["content-type"] == "audio/wav"
        pieces, first_at = [], None
        for piece in response.iter_bytes():
            first_at = first_at or time.monotonic() - started
            pieces.append(piece)
    assert b"".join(pieces) == speech_bytes(text)
    assert first_at is not None and first_at < 1.0 < time.monotonic() - started
    (entry,) = wait_for_logs(gw, key["id"], 1)
    assert (entry["endpoint"], entry["unit"], entry["quantity"]) == (
        "audio.speech",
        "characters",
        len(text),
    )
    assert entry["cost_usd"] == pytest.approx(len(text) * 15 / 1e6, abs=1e-6)


def test_speech_errors_and_a_broken_stream(gw, openai_mock):
    client = sdk(gw)
    with pytest.raises(openai.BadRequestError) as exc:
        client.audio.speech.create(model="tts-1", voice="robot", input="hi")
    assert exc.value.param == "voice"
    key = create_key(gw)
    openai_mock.fail_next(Fault(cut_after=2))
    with (
        pytest.raises(httpx.HTTPError),
        httpx.stream(
            "POST",
            f"{gw.url}/v1/audio/speech",
            json={"model": "tts-1", "voice": "nova", "input": "cut short"},
            headers={"authorization": f"Bearer {key['key']}"},
            timeout=30,
        ) as response,
    ):
        response.read()  # a truncated body is an error, not a short file
    (entry,) = wait_for_logs(gw, key["id"], 1)
    assert entry["error_code"] == "upstream_unavailable" and entry["quantity"] == len("cut short")


def test_failover_limits_budget_and_scope(gw):
    with sdk(gw).audio.speech.with_streaming_response.create(
        model="speech-failover", voice="alloy", input="again"
    ) as response:
        assert response.headers["x-perpetuo-attempts"] == "2"
        assert response.read() == speech_bytes("again")

    limited = sdk(gw, create_key(gw, limits={"rpm": 1})["key"])
    limited.audio.transcriptions.create(model="whisper-1", file=("a.wav", wav(1), "audio/wav"))
    with pytest.raises(openai.RateLimitError):
        limited.audio.transcriptions.create(model="whisper-1", file=("a.wav", wav(1), "audio/wav"))

    key = create_key(gw, limits={"budget_usd": 0.0001, "budget_period": "daily"})
    budgeted = sdk(gw, key["key"])
    budgeted.audio.speech.create(model="tts-1", voice="alloy", input="five!")  # $0.000075
    wait_until_settled(gw, key["id"], 1)
    with pytest.raises(openai.APIStatusError) as exc:  # 5 more characters: over the budget
        budgeted.audio.speech.create(model="tts-1", voice="alloy", input="five!")
    assert exc.value.status_code == 402

    images_only = sdk(gw, create_key(gw, scopes=["images"])["key"])
    with pytest.raises(openai.PermissionDeniedError):
        images_only.audio.speech.create(model="tts-1", voice="alloy", input="x")


def test_wrong_endpoint_and_upload_cap(gw, openai_mock):
    with pytest.raises(openai.BadRequestError) as exc:
        sdk(gw).audio.transcriptions.create(model="tts-1", file=("a.wav", wav(1), "audio/wav"))
    assert exc.value.code == "endpoint_not_supported"
    with pytest.raises(openai.APIStatusError) as exc:
        sdk(gw).audio.transcriptions.create(
            model="whisper-1",
            file=("long.wav", wav(20.0), "audio/wav"),  # 320 KB
        )
    assert exc.value.status_code == 413
    with pytest.raises(openai.BadRequestError) as exc:
        sdk(gw).audio.transcriptions.create(model="whisper-1", file=("e.wav", b"", "audio/wav"))
    assert exc.value.param == "file"
    assert not openai_mock.requests
