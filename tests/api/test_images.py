"""Images through the gateway with the official openai SDK: generations and edits on OpenAI
(dall-e-3, gpt-image-1), Azure, Imagen and a Gemini image model; errors, fallbacks, key
scopes, rate limits and budgets charged per image or per token, request-log metering, the
wrong-endpoint 400 and the upload size cap."""

from __future__ import annotations

import base64

import httpx
import openai
import pytest

from tests.api.operations_support import (
    create_key,
    start_gateway,
    wait_for_logs,
    wait_until_settled,
)
from tests.mocks.openai_media import PNG, PNG_B64
from tests.support.gateway import MASTER_KEY


@pytest.fixture(scope="module")
def env(mocks, tmp_path_factory):
    yield from start_gateway(mocks, tmp_path_factory, "images")


@pytest.fixture
def gw(env):
    return env[0]


def sdk(gw, key: str = MASTER_KEY) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{gw.url}/v1", api_key=key, max_retries=0)


def test_dall_e_3_generation_passes_every_parameter(gw, openai_mock):
    raw = sdk(gw).images.with_raw_response.generate(
        model="dall-e-3", prompt="a red fox", size="1024x1792", quality="hd", style="natural"
    )
    result = raw.parse()
    assert result.data[0].url.startswith("https://images.example/dall-e-3/")
    assert result.data[0].revised_prompt == "A detailed rendering of a red fox"
    sent = openai_mock.last
    assert sent.path == "/v1/images/generations"
    assert sent.body == {
        "model": "dall-e-3",
        "prompt": "a red fox",
        "size": "1024x1792",
        "quality": "hd",
        "style": "natural",
    }
    assert raw.headers["x-perpetuo-provider"] == "openai-main"


def test_gpt_image_is_metered_by_its_tokens(gw):
    key = create_key(gw)
    result = sdk(gw, key["key"]).images.generate(
        model="gpt-image-1", prompt="three blue birds", quality="low", n=2
    )
    assert [base64.b64decode(d.b64_json) for d in result.data] == [PNG, PNG]
    assert result.usage.output_tokens == 2 * 272
    (entry,) = wait_for_logs(gw, key["id"], 1)
    assert entry["endpoint"] == "images.generations"
    assert (entry["unit"], entry["quantity"]) == ("images", 2)
    assert (entry["prompt_tokens"], entry["completion_tokens"]) == (3, 544)
    # 3 text tokens at $5/M and 544 image tokens at $40/M
    assert entry["cost_usd"] == pytest.approx((3 * 5 + 544 * 40) / 1e6, abs=1e-6)


def test_edits_send_the_uploaded_images_unchanged(gw, openai_mock):
    second = PNG + b"\x00" * 100  # still a PNG to the mock, and a different file
    result = sdk(gw).images.edit(
        model="gpt-image-1",
        image=[("one.png", PNG, "image/png"), ("two.png", second, "image/png")],
        prompt="put them side by side",
        quality="high",
    )
    assert base64.b64decode(result.data[0].b64_json) == PNG
    sent = openai_mock.last
    assert sent.path == "/v1/images/edits"
    assert PNG in sent.raw and second in sent.raw
    assert b'filename="two.png"' in sent.raw and b"put them side by side" in sent.raw
    assert b'name="model"\r\n\r\ngpt-image-1\r\n' in sent.raw
    assert result.usage.input_tokens_details.image_tokens == 2 * 323


def test_azure_generations_and_edits(gw, openai_mock):
    result = sdk(gw).images.generate(model="azure-image", prompt="a lighthouse", n=1)
    assert result.data[0].url
    assert openai_mock.last.path == "/openai/deployments/image-deployment/images/generations"
    assert openai_mock.last.query["api-version"] == "2024-10-21"
    edited = sdk(gw).images.edit(
        model="azure-image", image=("a.png", PNG, "image/png"), prompt="at night"
    )
    assert edited.data  # the mock answers 404 below the first version that edits
    assert openai_mock.last.query["api-version"] == "2025-04-01-preview"


def test_imagen_generation_is_priced_per_image(gw, mocks):
    key = create_key(gw)
    client = sdk(gw, key["key"])
    result = client.images.generate(model="imagen", prompt="a castle", n=2, size="1792x1024")
    assert [base64.b64decode(d.b64_json) for d in result.data] == [PNG, PNG]
    sent = mocks["gemini"].last
    assert sent.path == "/v1beta/models/imagen-4.0-generate-001:predict"
    assert sent.body == {
        "instances": [{"prompt": "a castle"}],
        "parameters": {"sampleCount": 2, "aspectRatio": "16:9"},
    }
    as_url = client.images.generate(model="imagen", prompt="a moat", response_format="url")
    assert as_url.data[0].url == f"data:image/png;base64,{PNG_B64}"
    first = wait_for_logs(gw, key["id"], 2)[-1]
    assert (first["unit"], first["quantity"], first["provider"]) == ("images", 2, "gemini-main")
    assert first["cost_usd"] == pytest.approx(0.08)


def test_gemini_image_model_generates_and_edits(gw, mocks):
    result = sdk(gw).images.generate(model="gemini-image", prompt="a teapot", size="1024x1536")
    assert base64.b64decode(result.data[0].b64_json) == PNG
    assert result.usage.output_tokens == 1298
    sent = mocks["gemini"].last.body
    assert sent["generationConfig"] == {
        "responseModalities": ["TEXT", "IMAGE"],
        "imageConfig": {"aspectRatio": "3:4"},
    }
    sdk(gw).images.edit(model="gemini-image", image=("t.png", PNG, "image/png"), prompt="blue")
    parts = mocks["gemini"].last.body["contents"][0]["parts"]
    assert parts == [
        {"text": "blue"},
        {"inlineData": {"mimeType": "image/png", "data": PNG_B64}},
    ]
    with pytest.raises(openai.BadRequestError) as exc:
        sdk(gw).images.generate(model="gemini-image", prompt="two teapots", n=2)
    assert "one image per request" in exc.value.message


def test_provider_errors_reach_the_client(gw, mocks):
    client = sdk(gw)
    with pytest.raises(openai.BadRequestError) as exc:
        client.images.generate(model="dall-e-3", prompt="trigger content policy")
    assert exc.value.code == "content_policy_violation"
    with pytest.raises(openai.BadRequestError) as exc:
        client.images.generate(model="dall-e-3", prompt="x", n=2)
    assert "n=1" in exc.value.message
    with pytest.raises(openai.BadRequestError) as exc:
        client.images.generate(model="imagen", prompt="trigger safety")
    assert exc.value.code == "content_policy_violation"
    with pytest.raises(openai.BadRequestError) as exc:
        client.images.generate(model="dall-e-3", prompt="")
    assert exc.value.param == "prompt"


def test_failover_and_fallback_alias(gw, mocks):
    raw = sdk(gw).images.with_raw_response.generate(model="image-failover", prompt="a bridge")
    assert raw.parse().data and raw.headers["x-perpetuo-attempts"] == "2"
    raw = sdk(gw).images.with_raw_response.generate(model="image-fallback", prompt="a road")
    assert raw.headers["x-perpetuo-fallback"] == "true"
    assert raw.headers["x-perpetuo-model"] == "imagen-4.0-generate-001"
    assert mocks["gemini"].last.path.endswith(":predict")


def test_rate_limit_budget_and_scope(gw):
    limited = sdk(gw, create_key(gw, limits={"rpm": 1})["key"])
    limited.images.generate(model="dall-e-3", prompt="one")
    with pytest.raises(openai.RateLimitError):
        limited.images.generate(model="dall-e-3", prompt="two")

    key = create_key(gw, limits={"budget_usd": 0.1, "budget_period": "daily"})
    client = sdk(gw, key["key"])
    client.images.generate(model="dall-e-3", prompt="standard", size="1024x1024")
    wait_until_settled(gw, key["id"], 1)
    (entry,) = wait_for_logs(gw, key["id"], 1)
    assert entry["cost_usd"] == pytest.approx(0.04)
    with pytest.raises(openai.APIStatusError) as exc:  # $0.12 does not fit the $0.06 left
        client.images.generate(model="dall-e-3", prompt="hd", size="1792x1024", quality="hd")
    assert exc.value.status_code == 402 and exc.value.code == "budget_exceeded"

    chat_only = sdk(gw, create_key(gw, scopes=["chat"])["key"])
    with pytest.raises(openai.PermissionDeniedError) as exc:
        chat_only.images.generate(model="dall-e-3", prompt="x")
    assert exc.value.code == "insufficient_scope"


def test_wrong_endpoint_is_a_400_naming_it(gw, openai_mock):
    with pytest.raises(openai.BadRequestError) as exc:
        sdk(gw).images.generate(model="gpt-4o-mini", prompt="a cat")
    assert exc.value.code == "endpoint_not_supported"
    assert "does not serve images: it serves chat" in exc.value.message
    with pytest.raises(openai.BadRequestError) as exc:
        sdk(gw).chat.completions.create(
            model="dall-e-3", messages=[{"role": "user", "content": "hi"}]
        )
    assert "does not serve chat" in exc.value.message
    assert not openai_mock.requests  # refused before any upstream call


def test_uploads_past_the_cap_are_refused_with_413(gw, openai_mock):
    big = PNG + b"\x00" * (300 * 1024)
    with pytest.raises(openai.APIStatusError) as exc:
        sdk(gw).images.edit(model="gpt-image-1", image=("big.png", big, "image/png"), prompt="x")
    assert exc.value.status_code == 413 and exc.value.code == "request_too_large"

    def chunked():  # no Content-Length: refused while reading
        yield b'--b\r\nContent-Disposition: form-data; name="image"; filename="a.png"\r\n\r\n'
        for _ in range(40):
            yield b"\x00" * 8192

    response = httpx.post(
        f"{gw.url}/v1/images/edits",
        content=chunked(),
        headers={
            "authorization": f"Bearer {MASTER_KEY}",
            "content-type": "multipart/form-data; boundary=b",
        },
    )
    assert response.status_code == 413
    wrong_type = httpx.post(
        f"{gw.url}/v1/images/edits",
        json={"model": "gpt-image-1", "prompt": "x"},
        headers={"authorization": f"Bearer {MASTER_KEY}"},
    )
    assert wrong_type.status_code == 415
    assert wrong_type.json()["error"]["code"] == "unsupported_media_type"
    assert not openai_mock.requests
