"""The non-chat operations in the adapters, as plain functions: Cohere's rerank on Bedrock
(InvokeModel, signed) and on Cohere's API, Imagen and Gemini image bodies on the Gemini API
and Vertex AI, what each translation refuses, and uploads rebuilt for OpenAI-format hosts
around the client's own file bytes."""

from __future__ import annotations

import json
from email.parser import BytesParser
from email.policy import HTTP
from typing import Any

import pytest

from perpetuo.api.multipart import parse_form
from perpetuo.config.model import DeploymentConfig, ProviderConfig
from perpetuo.providers.registry import adapter_for, build_target
from perpetuo.schema.errors import GatewayError, UpstreamError, UpstreamErrorKind
from perpetuo.schema.forms import Form, FormFile
from perpetuo.schema.operations import (
    AUDIO_TRANSCRIPTIONS,
    COMPLETIONS,
    IMAGES_EDITS,
    IMAGES_GENERATIONS,
    RERANK,
    OperationRequest,
)

DOCS = ["alpha beta", "gamma"]


def target(kind: str, model: str, **provider: Any):
    config = ProviderConfig.model_validate({"type": kind, **provider})
    return build_target("p", config, DeploymentConfig(provider="p", model=model))


def rerank(**body: Any) -> OperationRequest:
    return OperationRequest(RERANK, "alias", {"query": "alpha", "documents": DOCS, **body})


def images(operation: str = IMAGES_GENERATIONS, form: Form | None = None, **body: Any):
    return OperationRequest(operation, "alias", {"prompt": "a cat", **body}, form)


def test_bedrock_reranks_with_cohere_through_invoke_model():
    tgt = target(
        "bedrock",
        "cohere.rerank-v3-5:0",
        region="us-west-2",
        aws_access_key_id="AKIDEXAMPLE",
        aws_secret_access_key="secret",
    )
    adapter = adapter_for("bedrock")
    call = adapter.operation_request(rerank(top_n=1, return_documents=True), tgt)
    assert str(call.url) == (
        "https://bedrock-runtime.us-west-2.amazonaws.com/model/cohere.rerank-v3-5%3A0/invoke"
    )
    assert json.loads(call.body) == {
        "query": "alpha",
        "documents": DOCS,
        "top_n": 1,
        "api_version": 2,
    }
    assert dict(call.headers)["authorization"].startswith("AWS4-HMAC-SHA256 Credential=AKID")
    answer = adapter.operation_response(
        rerank(return_documents=True),
        b'{"id": "r1", "results": [{"index": 1, "relevance_score": 0.5}]}',
        "application/json",
        tgt,
    )
    assert answer.data == {
        "id": "r1",
        "model": "cohere.rerank-v3-5:0",
        "results": [{"index": 1, "relevance_score": 0.5, "document": {"text": "gamma"}}],
    }
    with pytest.raises(UpstreamError) as exc:  # Amazon's own reranker takes another body
        adapter.operation_request(
            rerank(), target("bedrock", "amazon.rerank-v1:0", region="us-west-2")
        )
    assert exc.value.kind is UpstreamErrorKind.UNSUPPORTED


def test_cohere_refuses_what_v2_cannot_take_and_checks_answers():
    adapter, tgt = adapter_for("cohere"), target("cohere", "rerank-v3.5", api_key="k")
    call = adapter.operation_request(rerank(max_tokens_per_doc=512), tgt)
    assert str(call.url) == "https://api.cohere.com/v2/rerank"
    assert json.loads(call.body)["max_tokens_per_doc"] == 512
    for body in ({"rank_fields": ["t"]}, {"documents": [{"title": "no text"}]}):
        with pytest.raises(UpstreamError) as exc:
            adapter.operation_request(rerank(**body), tgt)
        assert exc.value.kind is UpstreamErrorKind.UNSUPPORTED
    for answer in (b'{"results": [{"index": 7, "relevance_score": 1}]}', b'{"id": "x"}'):
        with pytest.raises(UpstreamError) as exc:
            adapter.operation_response(rerank(), answer, "application/json", tgt)
        assert exc.value.kind is UpstreamErrorKind.BAD_RESPONSE
    with pytest.raises(UpstreamError):  # chat is not Cohere's here (yet)
        adapter.operation_request(OperationRequest(COMPLETIONS, "a", {"prompt": "x"}), tgt)


def test_imagen_and_gemini_image_bodies_on_both_google_apis():
    gemini = adapter_for("gemini")
    call = gemini.operation_request(
        images(n=3, size="1024x1792", output_format="jpeg", quality="hd", user="u1"),
        target("gemini", "imagen-4.0-generate-001", api_key="k"),
    )
    assert str(call.url).endswith("/v1beta/models/imagen-4.0-generate-001:predict")
    assert json.loads(call.body)["parameters"] == {
        "sampleCount": 3,
        "aspectRatio": "9:16",
        "outputOptions": {"mimeType": "image/jpeg"},
    }
    vertex = adapter_for("vertex")
    tgt = target(
        "vertex", "imagen-3.0-generate-002", location="us-central1", project="p", access_token="t"
    )
    call = vertex.operation_request(images(), tgt)
    assert str(call.url) == (
        "https://us-central1-aiplatform.googleapis.com/v1/projects/p/locations/us-central1/"
        "publishers/google/models/imagen-3.0-generate-002:predict"
    )
    answer = vertex.operation_response(
        images(response_format="url"),
        b'{"predictions": [{"bytesBase64Encoded": "QUJD", "mimeType": "image/png"}]}',
        "application/json",
        tgt,
    )
    assert answer.data["data"] == [{"url": "data:image/png;base64,QUJD"}]
    tgt = target(
        "vertex", "gemini-2.5-flash-image", location="global", project="p", access_token="t"
    )
    call = vertex.operation_request(images(), tgt)
    assert str(call.url).endswith(
        "/publishers/google/models/gemini-2.5-flash-image:generateContent"
    )
    assert json.loads(call.body)["generationConfig"] == {"responseModalities": ["TEXT", "IMAGE"]}


@pytest.mark.parametrize(
    ("model", "request_", "param"),
    [
        ("imagen-4.0-generate-001", images(n=5), "n"),
        ("imagen-4.0-generate-001", images(background="transparent"), "background"),
        ("imagen-4.0-generate-001", images(output_format="webp"), "output_format"),
        ("imagen-4.0-generate-001", images(stream=True), "stream"),
        ("imagen-4.0-generate-001", images(IMAGES_EDITS), "image"),
        ("gemini-2.5-flash-image", images(n=2), "n"),
        (
            "gemini-2.5-flash-image",
            images(
                IMAGES_EDITS, Form((("mask", FormFile("m.png", "image/png", memoryview(b"x"))),))
            ),
            "mask",
        ),
    ],
)
def test_google_image_models_refuse_what_they_cannot_do(model, request_, param):
    with pytest.raises(UpstreamError) as exc:
        adapter_for("gemini").operation_request(request_, target("gemini", model, api_key="k"))
    assert exc.value.kind is UpstreamErrorKind.UNSUPPORTED and exc.value.param == param


def test_withheld_images_are_a_content_policy_refusal():
    tgt = target("gemini", "imagen-4.0-generate-001", api_key="k")
    with pytest.raises(UpstreamError) as exc:
        adapter_for("gemini").operation_response(
            images(), b'{"predictions": [{"raiFilteredReason": "filtered"}]}', "", tgt
        )
    assert exc.value.kind is UpstreamErrorKind.CONTENT_POLICY


def test_uploads_are_rebuilt_around_the_same_file_bytes():
    audio = b"RIFF" + bytes(range(256)) * 40 + b'\r\n--"quoted"'
    body = (
        b"--XyZ\r\n"
        b'Content-Disposition: form-data; name="model"\r\n\r\nwhisper-1\r\n'
        b"--XyZ\r\n"
        b'Content-Disposition: form-data; name="file"; filename="a \\"b\\".wav"\r\n'
        b"Content-Type: audio/wav\r\n\r\n" + audio + b"\r\n"
        b"--XyZ\r\n"
        b'Content-Disposition: form-data; name="timestamp_granularities[]"\r\n\r\nword\r\n'
        b"--XyZ--\r\n"
    )
    form = parse_form(body, 'multipart/form-data; boundary="XyZ"')
    assert form.texts() == {"model": "whisper-1", "timestamp_granularities[]": ["word"]}
    (upload,) = form.files("file")
    assert (upload.filename, upload.content_type, bytes(upload.data)) == (
        'a "b".wav',
        "audio/wav",
        audio,
    )
    assert upload.data.obj is body  # a view of the client's body, not a copy
    tgt = target("openai", "whisper-large", api_key="k")
    request = OperationRequest(AUDIO_TRANSCRIPTIONS, "alias", form.texts(), form)
    call = adapter_for("openai").operation_request(request, tgt)
    assert any(piece is upload.data for piece in call.body)
    content_type = dict(call.headers)["content-type"]
    sent = BytesParser(policy=HTTP).parsebytes(
        f"Content-Type: {content_type}\r\n\r\n".encode() + b"".join(call.body)
    )
    parts = {p.get_param("name", header="content-disposition"): p for p in sent.iter_parts()}
    assert parts["model"].get_payload(decode=True) == b"whisper-large"
    assert parts["file"].get_payload(decode=True) == audio
    assert parts["file"].get_param("filename", header="content-disposition") == "a %22b%22.wav"


@pytest.mark.parametrize(
    ("body", "content_type", "status"),
    [
        (
            b"--b\r\nContent-Disposition: form-data\r\n\r\nx\r\n--b--",
            "multipart/form-data; boundary=b",
            400,
        ),
        (
            b'--b\r\nContent-Disposition: form-data; name="a"\r\n\r\nno end',
            "multipart/form-data; boundary=b",
            400,
        ),
        (b"nothing", "multipart/form-data; boundary=b", 400),
        (b"{}", "application/json", 415),
        (b"--b--", "multipart/form-data", 400),
    ],
)
def test_malformed_uploads_are_client_errors(body, content_type, status):
    with pytest.raises(GatewayError) as exc:
        parse_form(body, content_type)
    assert exc.value.status == status
