"""The official openai SDK's images.generate through the gateway to Bedrock's image models
(Nova Canvas, Titan Image Generator v2) on the Bedrock mock, which checks every request's
SigV4 signature with botocore and the body as Bedrock does: parameters mapped, images back
as b64_json, metering per image, and the refusals."""

from __future__ import annotations

import base64

import openai
import pytest

from tests.api.operations_support import create_key, wait_for_logs
from tests.mocks import bedrock_images, bedrock_mock
from tests.support.gateway import MASTER_KEY


def sdk(gateway, key: str = MASTER_KEY) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{gateway.url}/v1", api_key=key, max_retries=0)


def test_nova_canvas_maps_parameters_and_is_priced_per_image(cloud_gateway, bedrock):
    key = create_key(cloud_gateway)
    raw = sdk(cloud_gateway, key["key"]).images.with_raw_response.generate(
        model="nova-canvas",
        prompt="a lighthouse at dusk",
        n=3,
        size="1024x1024",
        quality="hd",
        response_format="b64_json",
    )
    result = raw.parse()
    assert [base64.b64decode(d.b64_json) for d in result.data] == [
        bedrock_images.image_png(i) for i in range(3)
    ]
    assert raw.headers["x-perpetuo-provider"] == "bedrock-main"
    sent = bedrock.last
    assert sent.path == f"/model/{bedrock_images.NOVA_CANVAS}/invoke"
    headers = {name.lower(): value for name, value in sent.headers.items()}
    assert headers["authorization"].startswith(
        f"AWS4-HMAC-SHA256 Credential={bedrock_mock.ACCESS_KEY}/"
    )
    assert sent.body == {
        "taskType": "TEXT_IMAGE",
        "textToImageParams": {"text": "a lighthouse at dusk"},
        "imageGenerationConfig": {
            "numberOfImages": 3,
            "width": 1024,
            "height": 1024,
            "quality": "premium",
        },
    }
    (entry,) = wait_for_logs(cloud_gateway, key["id"], 1)
    assert entry["endpoint"] == "images.generations"
    assert (entry["unit"], entry["quantity"]) == ("images", 3)
    assert entry["cost_usd"] == pytest.approx(3 * 0.06)  # premium, up to 1024x1024


def test_titan_takes_its_sizes_and_extra_fields(cloud_gateway, bedrock):
    key = create_key(cloud_gateway)
    result = sdk(cloud_gateway, key["key"]).images.generate(
        model="titan-image",
        prompt="a red fox",
        size="1152x768",
        extra_body={"seed": 42, "negative_prompt": "blurry", "cfg_scale": 6.5},
    )
    assert base64.b64decode(result.data[0].b64_json) == bedrock_images.image_png(0)
    assert bedrock.last.path == f"/model/{bedrock_images.TITAN_IMAGE}/invoke"
    assert bedrock.last.body == {
        "taskType": "TEXT_IMAGE",
        "textToImageParams": {"text": "a red fox", "negativeText": "blurry"},
        "imageGenerationConfig": {
            "numberOfImages": 1,
            "width": 1152,
            "height": 768,
            "quality": "standard",
            "seed": 42,
            "cfgScale": 6.5,
        },
    }
    (entry,) = wait_for_logs(cloud_gateway, key["id"], 1)
    assert (entry["unit"], entry["quantity"]) == ("images", 1)
    assert entry["cost_usd"] == pytest.approx(0.01)  # standard, larger than 512x512


@pytest.mark.parametrize(
    ("model", "params", "param", "words"),
    [
        ("nova-canvas", {"n": 6}, "n", "at most 5 images"),
        ("titan-image", {"size": "1792x1024"}, "size", "1792x1024"),
        ("nova-canvas", {"size": "1000x1000"}, "size", "multiple of 16"),
        ("nova-canvas", {"response_format": "url"}, "response_format", "b64_json"),
        ("titan-image", {"background": "transparent"}, "background", "not supported"),
    ],
)
def test_refusals_name_the_parameter_and_never_reach_bedrock(
    cloud_client, bedrock, model, params, param, words
):
    with pytest.raises(openai.BadRequestError) as caught:
        cloud_client.images.generate(model=model, prompt="a cat", **params)
    error = caught.value.body
    assert caught.value.status_code == 400
    assert error["param"] == param and words in error["message"]
    assert bedrock.requests == []


def test_content_filter_is_a_content_policy_error(cloud_client, bedrock):
    with pytest.raises(openai.BadRequestError) as caught:
        cloud_client.images.generate(model="nova-canvas", prompt="trigger content filter")
    assert caught.value.body["code"] == "content_policy_violation"
    assert "content filters" in caught.value.body["message"]
    assert len(bedrock.requests) == 1


def test_bedrock_errors_keep_their_meaning(cloud_client, bedrock):
    with pytest.raises(openai.RateLimitError):
        cloud_client.images.generate(model="titan-image", prompt="trigger throttling")
    with pytest.raises(openai.APIStatusError) as denied:
        cloud_client.images.generate(model="titan-image", prompt="trigger access denied")
    assert denied.value.status_code == 502  # the gateway's credentials, not the client's
    assert denied.value.body["code"] == "upstream_authentication_failed"
    with pytest.raises(openai.APIStatusError) as empty:
        cloud_client.images.generate(model="titan-image", prompt="trigger empty answer")
    assert empty.value.status_code == 502  # the model's answer held no image
