"""Image generation with Google's models, answered in OpenAI's Images format (the Gemini API
and Vertex AI take the same bodies).

- Imagen (`imagen-*`): `:predict` with `{"instances": [{"prompt"}], "parameters":
  {"sampleCount", "aspectRatio", "outputOptions"}}`; the answer's `predictions` carry
  `bytesBase64Encoded` and `mimeType` (or `raiFilteredReason` for an image withheld).
  Imagen cannot edit images here.
- Gemini image models (`gemini-*-image*`): `:generateContent` with the prompt (and, for
  edits, the images) and `responseModalities: ["TEXT", "IMAGE"]`; the answer's `inlineData`
  parts are the images and `usageMetadata` its tokens (reported in OpenAI's images usage).
  One image per request; text the model writes beside it has no place in the answer.

Both answer with image bytes, never a hosted URL: `response_format: "url"` gets a data URL.
Parameters without an equivalent are refused (another deployment may serve them), except
those that only hint (`quality`, `style`, `user`, `moderation`).
"""

from __future__ import annotations

import base64
from typing import Any

from perpetuo.providers.base import Json, checked_usage, now, unsupported
from perpetuo.providers.gemini.errors import error_in_body
from perpetuo.schema.errors import UpstreamError, UpstreamErrorKind
from perpetuo.schema.operations import IMAGES_EDITS, OperationRequest
from perpetuo.schema.usage import token_count

# Aspect ratios both model families accept; a requested size gets the nearest.
RATIOS = {"1:1": 1.0, "3:4": 0.75, "4:3": 4 / 3, "9:16": 9 / 16, "16:9": 16 / 9}
MIME_TYPES = {"png": "image/png", "jpeg": "image/jpeg"}
HINTS = frozenset({"quality", "style", "user", "moderation", "background", "input_fidelity"})
MAPPED = frozenset({"model", "prompt", "n", "size", "response_format", "output_format"})
MAPPED_EDITS = MAPPED | {"image", "image[]"}
MAX_IMAGEN_SAMPLES = 4
BLOCKED = frozenset({"SAFETY", "IMAGE_SAFETY", "PROHIBITED_CONTENT", "BLOCKLIST", "SPII"})


def is_imagen(model: str) -> bool:
    return "imagen" in model.lower()


def request_body(request: OperationRequest, model: str) -> tuple[str, Json]:
    """(the model's method, its body) for an images request."""
    _refuse_unmapped(request)
    prompt = request.param("prompt")
    size = _aspect_ratio(request.param("size"))
    output = request.param("output_format")
    if output is not None and output not in MIME_TYPES:
        raise unsupported(f"output_format {output!r} is not offered by {model}", "output_format")
    count = _count(request.param("n", 1))
    if is_imagen(model):
        if request.operation == IMAGES_EDITS:
            raise unsupported(f"{model} cannot edit images through this API", "image")
        if count > MAX_IMAGEN_SAMPLES:
            raise unsupported(f"{model} makes at most {MAX_IMAGEN_SAMPLES} images", "n")
        parameters: Json = {"sampleCount": count}
        if size is not None:
            parameters["aspectRatio"] = size
        if output is not None:
            parameters["outputOptions"] = {"mimeType": MIME_TYPES[output]}
        return "predict", {"instances": [{"prompt": prompt}], "parameters": parameters}
    if count != 1:
        raise unsupported(f"{model} makes one image per request", "n")
    if output not in (None, "png"):
        raise unsupported(f"{model} answers with PNG images only", "output_format")
    parts: list[Json] = [{"text": prompt}]
    if request.form is not None:
        for image in request.form.files("image", "image[]"):
            data = base64.b64encode(image.data).decode("ascii")
            parts.append({"inlineData": {"mimeType": image.content_type, "data": data}})
    config: Json = {"responseModalities": ["TEXT", "IMAGE"]}
    if size is not None:
        config["imageConfig"] = {"aspectRatio": size}
    return "generateContent", {
        "contents": [{"role": "user", "parts": parts}],
        "generationConfig": config,
    }


def answer(request: OperationRequest, data: Json, model: str, target: Any) -> Json:
    """OpenAI's images response from a predict or generateContent answer."""
    if "predictions" in data or is_imagen(model):
        images, usage = _imagen_images(data), None
    else:
        images, usage = _gemini_images(data), _usage(data, target)
    as_url = request.param("response_format") == "url"
    result: Json = {
        "created": now(),
        "data": [
            {"url": f"data:{mime};base64,{b64}"} if as_url else {"b64_json": b64}
            for mime, b64 in images
        ],
    }
    if usage is not None:
        result["usage"] = usage
    return result


def _refuse_unmapped(request: OperationRequest) -> None:
    mapped = MAPPED_EDITS if request.operation == IMAGES_EDITS else MAPPED
    for name, value in request.body.items():
        if name in mapped or name in HINTS:
            continue
        if value is None or value is False:
            continue  # an explicit default asks nothing
        raise unsupported(f"`{name}` is not supported by Google's image models", name)
    if request.body.get("background") == "transparent":
        raise unsupported("Google's image models do not make transparent images", "background")
    if request.form is not None and request.form.files("mask"):
        raise unsupported("Google's image models take no mask", "mask")


def _count(value: Any) -> int:
    if isinstance(value, str) and value.isdigit():
        return int(value)  # form fields are text
    return value if isinstance(value, int) and not isinstance(value, bool) else 1


def _aspect_ratio(size: Any) -> str | None:
    """The supported aspect ratio nearest to `WIDTHxHEIGHT`; None for auto or none."""
    if not isinstance(size, str) or size == "auto":
        return None
    width, _, height = size.lower().partition("x")
    if not (width.isdigit() and height.isdigit()) or not int(width) or not int(height):
        raise unsupported(f"size {size!r} is not WIDTHxHEIGHT", "size")
    ratio = int(width) / int(height)
    return min(RATIOS, key=lambda name: abs(RATIOS[name] - ratio))


def _imagen_images(data: Json) -> list[tuple[str, str]]:
    images, withheld = [], None
    for prediction in data.get("predictions") or ():
        if not isinstance(prediction, dict):
            continue
        encoded = prediction.get("bytesBase64Encoded")
        if isinstance(encoded, str) and encoded:
            images.append((str(prediction.get("mimeType") or "image/png"), encoded))
        elif prediction.get("raiFilteredReason"):
            withheld = str(prediction["raiFilteredReason"])[:300]
    if not images:
        _no_image(withheld is not None, withheld or "the model returned no image")
    return images


def _gemini_images(data: Json) -> list[tuple[str, str]]:
    if "error" in data:
        raise error_in_body(data["error"])
    images: list[tuple[str, str]] = []
    candidates = data.get("candidates") or []
    first = candidates[0] if candidates and isinstance(candidates[0], dict) else {}
    for part in (first.get("content") or {}).get("parts") or ():
        inline = part.get("inlineData") if isinstance(part, dict) else None
        if isinstance(inline, dict) and isinstance(inline.get("data"), str):
            images.append((str(inline.get("mimeType") or "image/png"), inline["data"]))
    if not images:
        reason = first.get("finishReason") or (data.get("promptFeedback") or {}).get("blockReason")
        _no_image(reason in BLOCKED, f"the model returned no image ({reason or 'no reason'})")
    return images[:1]


def _no_image(blocked: bool, why: str) -> None:
    if blocked:
        raise UpstreamError(
            UpstreamErrorKind.CONTENT_POLICY,
            f"The image was withheld by the provider's safety filters: {why}.",
            status=400,
            code="content_policy_violation",
        )
    raise UpstreamError(UpstreamErrorKind.BAD_RESPONSE, why)


def _usage(data: Json, target: Any) -> Json | None:
    meta = checked_usage(data.get("usageMetadata"), target)
    if not isinstance(meta, dict):
        return None
    prompt = token_count(meta.get("promptTokenCount")) or 0
    output = token_count(meta.get("candidatesTokenCount")) or 0
    by_modality = {
        str(d.get("modality")): token_count(d.get("tokenCount")) or 0
        for d in meta.get("promptTokensDetails") or ()
        if isinstance(d, dict)
    }
    image_tokens = min(by_modality.get("IMAGE", 0), prompt)
    return {
        "input_tokens": prompt,
        "output_tokens": output,
        "total_tokens": prompt + output,
        "input_tokens_details": {
            "text_tokens": prompt - image_tokens,
            "image_tokens": image_tokens,
        },
    }
