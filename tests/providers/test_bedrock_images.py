"""Bedrock's image models (providers/bedrock/images.py): OpenAI's parameters as Nova Canvas
and Titan Image Generator bodies, the sizes each model draws, and their answers and errors."""

from __future__ import annotations

import json

import pytest

from perpetuo.providers.bedrock import images
from perpetuo.providers.bedrock.errors import http_error
from perpetuo.schema.errors import UpstreamError, UpstreamErrorKind
from perpetuo.schema.operations import IMAGES_EDITS, IMAGES_GENERATIONS, OperationRequest

NOVA = "amazon.nova-canvas-v1:0"
TITAN = "amazon.titan-image-generator-v2:0"


def body(model: str, operation: str = IMAGES_GENERATIONS, **params) -> dict:
    request = OperationRequest(operation, "alias", {"prompt": "a cat", **params})
    return json.loads(images.request_body(request, model))


def refusal(model: str, **params) -> UpstreamError:
    with pytest.raises(UpstreamError) as caught:
        body(model, **params)
    assert caught.value.status == 400
    return caught.value


def test_defaults_are_one_standard_square_image():
    assert body(TITAN, quality="standard", style="vivid", user="u1") == {
        "taskType": "TEXT_IMAGE",
        "textToImageParams": {"text": "a cat"},
        "imageGenerationConfig": {
            "numberOfImages": 1,
            "width": 1024,
            "height": 1024,
            "quality": "standard",
        },
    }


@pytest.mark.parametrize(("quality", "mapped"), [("hd", "premium"), ("high", "premium"),
                                                 ("medium", "standard"), ("low", "standard")])  # fmt: skip
def test_quality(quality, mapped):
    assert body(NOVA, quality=quality)["imageGenerationConfig"]["quality"] == mapped


@pytest.mark.parametrize("size", ["320x1280", "2048x2048", "4096x1024", "1280x720"])
def test_nova_canvas_draws_any_size_within_its_rules(size):
    width, height = map(int, size.split("x"))
    config = body(NOVA, size=size)["imageGenerationConfig"]
    assert (config["width"], config["height"]) == (width, height)


@pytest.mark.parametrize("size", ["300x300", "1000x1000", "4096x4096", "320x1600", "big"])
def test_nova_canvas_refuses_sizes_it_does_not_draw(size):
    assert refusal(NOVA, size=size).param == "size"


def test_titan_draws_its_listed_sizes_only():
    assert body(TITAN, size="1173x640")["imageGenerationConfig"]["width"] == 1173
    assert refusal(TITAN, size="2048x2048").param == "size"


def test_counts_formats_and_edits_are_checked():
    assert body(NOVA, n=5)["imageGenerationConfig"]["numberOfImages"] == 5
    assert refusal(NOVA, n=6).param == "n"
    assert refusal(TITAN, n=0).param == "n"
    assert refusal(NOVA, response_format="url").param == "response_format"
    assert refusal(NOVA, output_format="webp").param == "output_format"
    assert refusal(NOVA, background="transparent").param == "background"
    assert refusal(NOVA, operation=IMAGES_EDITS).param == "image"


def test_answers_and_empty_answers():
    assert images.answer({"images": ["QUJD", "REVG"], "error": None})["data"] == [
        {"b64_json": "QUJD"},
        {"b64_json": "REVG"},
    ]
    with pytest.raises(UpstreamError) as caught:
        images.answer({"images": [], "error": "blocked by our content filters"})
    assert caught.value.kind is UpstreamErrorKind.CONTENT_POLICY
    with pytest.raises(UpstreamError) as caught:
        images.answer({"images": []})
    assert caught.value.kind is UpstreamErrorKind.BAD_RESPONSE


def test_content_filter_validation_exception_is_content_policy():
    headers = {"x-amzn-errortype": "ValidationException:http://internal.amazon.com/coral/"}
    blocked = b'{"message": "This request has been blocked by our content filters."}'
    error = http_error(400, headers, blocked)
    assert (error.kind, error.code) == (
        UpstreamErrorKind.CONTENT_POLICY,
        "content_policy_violation",
    )
    plain = http_error(400, headers, b'{"message": "The image size is not supported."}')
    assert plain.kind is UpstreamErrorKind.INVALID_REQUEST
