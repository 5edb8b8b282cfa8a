"""Bedrock's image models through InvokeModel, per the public reference: Amazon Nova Canvas
and Titan Image Generator v2 with the TEXT_IMAGE body (`textToImageParams`,
`imageGenerationConfig`), answering `{"images": [base64 PNG, ...], "error": null}`.

The body is checked as Bedrock checks it (ValidationException): known fields only, 1 to 5
images, quality standard or premium, and a size the model draws (Titan: its list; Nova
Canvas: sides 320-4096 in multiples of 16, aspect 1:4 to 4:1, at most 4,194,304 pixels).
Triggers in the prompt: "trigger content filter" (the 400 ValidationException Bedrock sends
for a blocked prompt), "trigger empty answer" (200 with no images and an `error`), and the
plain Bedrock triggers (throttling, access denied, ...).
"""

from __future__ import annotations

import base64
from typing import Any

from aiohttp import web

from tests.mocks.bedrock_wire import bedrock_error
from tests.mocks.openai_media import PNG

NOVA_CANVAS = "amazon.nova-canvas-v1:0"
TITAN_IMAGE = "amazon.titan-image-generator-v2:0"
CONTENT_FILTERED = "This request has been blocked by our content filters."
TITAN_SIZES = {
    (1024, 1024), (768, 768), (512, 512), (768, 1152), (384, 576), (1152, 768), (576, 384),
    (768, 1280), (384, 640), (1280, 768), (640, 384), (896, 1152), (448, 576), (1152, 896),
    (576, 448), (768, 1408), (384, 704), (1408, 768), (704, 384), (640, 1408), (320, 704),
    (1408, 640), (704, 320), (1152, 640), (1173, 640),
}  # fmt: skip
CONFIG_FIELDS = {"numberOfImages", "width", "height", "quality", "cfgScale", "seed"}


def is_image_model(model: str) -> bool:
    return model in (NOVA_CANVAS, TITAN_IMAGE)


def image_png(index: int) -> bytes:
    """The mock's `index`th image: a PNG to a client, different for each index."""
    return PNG + bytes([index])


def generate(body: Any, model: str, triggers: Any) -> web.Response:
    """`triggers(text)`: the mock's plain error triggers, or None."""
    if (problem := _invalid(body, model)) is not None:
        return bedrock_error(400, "ValidationException", problem)
    text = body["textToImageParams"]["text"]
    if "trigger content filter" in text:
        return bedrock_error(400, "ValidationException", CONTENT_FILTERED)
    if "trigger empty answer" in text:
        return web.json_response({"images": [], "error": "The model produced no image."})
    if (refusal := triggers(text)) is not None:
        return refusal
    count = body["imageGenerationConfig"].get("numberOfImages", 1)
    images = [base64.b64encode(image_png(i)).decode() for i in range(count)]
    return web.json_response({"images": images, "error": None})


def _invalid(body: Any, model: str) -> str | None:
    if not isinstance(body, dict) or body.get("taskType") != "TEXT_IMAGE":
        return "taskType must be TEXT_IMAGE"
    if set(body) - {"taskType", "textToImageParams", "imageGenerationConfig"}:
        return f"extraneous key(s) {sorted(set(body) - {'taskType'})}"
    params = body.get("textToImageParams")
    if not isinstance(params, dict) or set(params) - {"text", "negativeText"}:
        return "textToImageParams takes text and negativeText"
    if not isinstance(params.get("text"), str) or not 1 <= len(params["text"]) <= 1024:
        return "textToImageParams.text must be 1 to 1024 characters"
    config = body.get("imageGenerationConfig", {})
    if not isinstance(config, dict) or set(config) - CONFIG_FIELDS:
        return f"imageGenerationConfig takes {sorted(CONFIG_FIELDS)}"
    if not 1 <= config.get("numberOfImages", 1) <= 5:
        return "numberOfImages must be between 1 and 5"
    if config.get("quality", "standard") not in ("standard", "premium"):
        return "quality must be standard or premium"
    width, height = config.get("width", 1024), config.get("height", 1024)
    if model == TITAN_IMAGE:
        ok = (width, height) in TITAN_SIZES
    else:
        ok = (
            320 <= width <= 4096
            and 320 <= height <= 4096
            and width % 16 == 0
            and height % 16 == 0
            and width * height <= 4_194_304
            and 0.25 <= width / height <= 4
        )
    return None if ok else f"The image size {width}x{height} is not supported by {model}."
