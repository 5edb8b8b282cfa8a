"""Image generation on Bedrock through InvokeModel, answered in OpenAI's Images format:
Amazon Nova Canvas (`amazon.nova-canvas-v1:0`) and Titan Image Generator (`amazon.titan-
image-generator-v2:0`, v1 too), which take the same text-to-image body:
`{"taskType": "TEXT_IMAGE", "textToImageParams": {"text", "negativeText"?},
"imageGenerationConfig": {"numberOfImages", "width", "height", "quality", "cfgScale"?,
"seed"?}}` and answer `{"images": [base64 PNG, ...], "error"?}`.

OpenAI's parameters map as: prompt -> text, n -> numberOfImages (at most 5), size ->
width/height (refused when the model does not draw that size), quality `hd`/`high` ->
premium (else standard). Bedrock answers with bytes only, never a hosted URL, so
`response_format: "url"` is refused. `seed`, `negative_prompt` and `cfg_scale`, sent as
extra body fields, become the models' own. Edits (inpainting, variations) are not offered.
"""

from __future__ import annotations

from typing import Any

from perpetuo.providers.base import Json, encode_json, now, unsupported
from perpetuo.providers.bedrock.errors import content_filtered
from perpetuo.schema.errors import UpstreamError, UpstreamErrorKind
from perpetuo.schema.operations import IMAGES_EDITS, OperationRequest

MAX_IMAGES = 5  # both families' numberOfImages
DEFAULT_SIZE = (1024, 1024)
PREMIUM = frozenset({"hd", "high"})
HINTS = frozenset({"user", "style", "moderation"})  # Bedrock always applies its filters
MAPPED = frozenset(
    {"model", "prompt", "n", "size", "quality", "response_format", "output_format"}
    | {"seed", "negative_prompt", "cfg_scale"}
)
# Titan Image Generator draws these sizes only (its documented list).
TITAN_SIZES = frozenset(
    {
        (1024, 1024), (768, 768), (512, 512), (768, 1152), (384, 576), (1152, 768),
        (576, 384), (768, 1280), (384, 640), (1280, 768), (640, 384), (896, 1152),
        (448, 576), (1152, 896), (576, 448), (768, 1408), (384, 704), (1408, 768),
        (704, 384), (640, 1408), (320, 704), (1408, 640), (704, 320), (1152, 640),
        (1173, 640),
    }
)  # fmt: skip
# Nova Canvas: each side 320-4096 and a multiple of 16, aspect 1:4 to 4:1, at most 4.19 MP.
NOVA_SIDES = (320, 4096)
NOVA_MAX_PIXELS = 4_194_304


def family(model: str) -> str | None:
    name = model.lower()
    if "nova-canvas" in name:
        return "nova"
    if "titan-image-generator" in name:
        return "titan"
    return None


def request_body(request: OperationRequest, model: str) -> bytes:
    kind = family(model)
    if kind is None:
        raise unsupported(f"Bedrock model {model!r} is not a known image model", "model")
    if request.operation == IMAGES_EDITS:
        raise unsupported(f"{model} cannot edit images through this API", "image")
    _refuse_unmapped(request, model)
    count = _count(request.param("n", 1))
    if count > MAX_IMAGES:
        raise unsupported(f"{model} makes at most {MAX_IMAGES} images per request", "n")
    width, height = _size(request.param("size"), kind, model)
    premium = str(request.param("quality") or "").lower() in PREMIUM
    config: Json = {
        "numberOfImages": count,
        "width": width,
        "height": height,
        "quality": "premium" if premium else "standard",
    }
    if isinstance(seed := request.param("seed"), int) and not isinstance(seed, bool):
        config["seed"] = seed
    if isinstance(scale := request.param("cfg_scale"), int | float) and not isinstance(scale, bool):
        config["cfgScale"] = scale
    params: Json = {"text": request.param("prompt")}
    if isinstance(negative := request.param("negative_prompt"), str) and negative:
        params["negativeText"] = negative
    return encode_json(
        {"taskType": "TEXT_IMAGE", "textToImageParams": params, "imageGenerationConfig": config}
    )


def answer(data: Json) -> Json:
    """OpenAI's images response from the models' `{"images", "error"}`."""
    images = [item for item in data.get("images") or () if isinstance(item, str) and item]
    error = data.get("error")
    if not images:
        why = str(error)[:300] if error else "the model returned no image"
        if content_filtered(why):
            raise UpstreamError(
                UpstreamErrorKind.CONTENT_POLICY,
                f"The image was withheld by the provider's safety filters: {why}",
                status=400,
                code="content_policy_violation",
            )
        raise UpstreamError(UpstreamErrorKind.BAD_RESPONSE, why)
    return {"created": now(), "data": [{"b64_json": image} for image in images]}


def _refuse_unmapped(request: OperationRequest, model: str) -> None:
    for name, value in request.body.items():
        if name in MAPPED or name in HINTS or value is None or value is False:
            continue  # an explicit default asks nothing
        raise unsupported(f"`{name}` is not supported by {model} on Bedrock", name)
    if request.param("response_format") not in (None, "b64_json"):
        raise unsupported(
            "Bedrock returns image bytes only, not URLs: use response_format b64_json",
            "response_format",
        )
    if request.param("output_format") not in (None, "png"):
        raise unsupported(f"{model} answers with PNG images only", "output_format")


def _count(value: Any) -> int:
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise unsupported("n must be a positive integer", "n")
    return value


def _size(size: Any, kind: str, model: str) -> tuple[int, int]:
    if size is None or size == "auto":
        return DEFAULT_SIZE
    width, _, height = str(size).lower().partition("x")
    if not (width.isdigit() and height.isdigit()) or not int(width) or not int(height):
        raise unsupported(f"size {size!r} is not WIDTHxHEIGHT", "size")
    w, h = int(width), int(height)
    if kind == "titan":
        if (w, h) not in TITAN_SIZES:
            raise unsupported(
                f"size {size!r} is not one {model} draws (e.g. 1024x1024, 512x512, 1152x768)",
                "size",
            )
        return w, h
    low, high = NOVA_SIDES
    if not (
        low <= w <= high
        and low <= h <= high
        and w % 16 == 0
        and h % 16 == 0
        and w * h <= NOVA_MAX_PIXELS
        and 1 / 4 <= w / h <= 4
    ):
        raise unsupported(
            f"size {size!r} is not one {model} draws: each side 320-4096 and a multiple of 16, "
            "aspect ratio 1:4 to 4:1, at most 4,194,304 pixels",
            "size",
        )
    return w, h
