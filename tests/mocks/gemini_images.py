"""Image generation on the Gemini API for the Gemini mock, per the public reference:
Imagen's `:predict` (`instances[].prompt`, `parameters.sampleCount` 1-4, `aspectRatio`,
`outputOptions.mimeType`; `predictions[].bytesBase64Encoded`, or `raiFilteredReason` for an
image withheld) and Gemini image models' `:generateContent` with `responseModalities`
(`inlineData` parts, image tokens in `usageMetadata`).

Triggers: a prompt with "trigger safety" has its images withheld (Imagen) or the answer
stopped with finishReason IMAGE_SAFETY (Gemini image models).
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from tests.mocks.openai_media import PNG_B64

RATIOS = ("1:1", "3:4", "4:3", "9:16", "16:9")
IMAGE_OUTPUT_TOKENS = 1290  # one image, as the Gemini API counts it
IMAGE_INPUT_TOKENS = 258


def google_error(code: int, status: str, message: str) -> web.Response:
    return web.json_response(
        {"error": {"code": code, "message": message, "status": status}}, status=code
    )


def predict(body: Any, model: str) -> web.Response:
    if "imagen" not in model:
        return google_error(
            400, "INVALID_ARGUMENT", f"models/{model} does not support the predict method."
        )
    instances = body.get("instances") if isinstance(body, dict) else None
    if not instances or not isinstance(instances[0].get("prompt"), str):
        return google_error(400, "INVALID_ARGUMENT", "* instances[0].prompt: required")
    parameters = body.get("parameters") or {}
    count = parameters.get("sampleCount", 4)
    if not isinstance(count, int) or not 1 <= count <= 4:
        return google_error(
            400, "INVALID_ARGUMENT", "sampleCount must be between 1 and 4, inclusive."
        )
    ratio = parameters.get("aspectRatio", "1:1")
    if ratio not in RATIOS:
        return google_error(400, "INVALID_ARGUMENT", f"Unsupported aspect ratio: {ratio}")
    mime = (parameters.get("outputOptions") or {}).get("mimeType", "image/png")
    if "trigger safety" in instances[0]["prompt"]:
        return web.json_response(
            {
                "predictions": [
                    {
                        "raiFilteredReason": "Your current safety filter threshold "
                        "filtered out the generated images."
                    }
                ]
            }
        )
    return web.json_response(
        {"predictions": [{"bytesBase64Encoded": PNG_B64, "mimeType": mime}] * count}
    )


def generate_image(body: Any, model: str) -> web.Response:
    contents = body.get("contents") if isinstance(body, dict) else None
    if not contents:
        return google_error(400, "INVALID_ARGUMENT", "* contents: contents is not specified")
    parts = contents[-1].get("parts") or []
    text = " ".join(p["text"] for p in parts if isinstance(p.get("text"), str))
    images_in = sum(1 for p in parts if "inlineData" in p)
    config = body.get("generationConfig") or {}
    ratio = (config.get("imageConfig") or {}).get("aspectRatio", "1:1")
    if ratio not in (*RATIOS, "2:3", "3:2", "4:5", "5:4", "21:9"):
        return google_error(400, "INVALID_ARGUMENT", f"Unsupported aspect ratio: {ratio}")
    prompt_tokens = len(text.split()) + IMAGE_INPUT_TOKENS * images_in
    usage: dict[str, Any] = {
        "promptTokenCount": prompt_tokens,
        "totalTokenCount": prompt_tokens,
        "promptTokensDetails": [{"modality": "TEXT", "tokenCount": len(text.split())}]
        + (
            [{"modality": "IMAGE", "tokenCount": IMAGE_INPUT_TOKENS * images_in}]
            if images_in
            else []
        ),
    }
    if "trigger safety" in text:
        return web.json_response(
            {
                "candidates": [{"finishReason": "IMAGE_SAFETY", "index": 0}],
                "usageMetadata": usage,
                "modelVersion": model,
            }
        )
    out: list[dict[str, Any]] = [{"text": "Here is the image you asked for."}]
    output_tokens = 8
    if "IMAGE" in (config.get("responseModalities") or []):
        out.append({"inlineData": {"mimeType": "image/png", "data": PNG_B64}})
        output_tokens += IMAGE_OUTPUT_TOKENS
    usage.update(candidatesTokenCount=output_tokens, totalTokenCount=prompt_tokens + output_tokens)
    return web.json_response(
        {
            "candidates": [
                {"content": {"role": "model", "parts": out}, "finishReason": "STOP", "index": 0}
            ],
            "usageMetadata": usage,
            "modelVersion": model,
        }
    )
