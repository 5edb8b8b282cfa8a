"""Embeddings on Bedrock through InvokeModel: Amazon Titan Text Embeddings and Cohere Embed.

- Titan (`amazon.titan-embed-text-v1`, `-v2:0`): one text per call, `{"inputText"}` (v2
  also `dimensions`: 256, 512 or 1024); the answer's `inputTextTokenCount` is the usage. A
  request with several inputs is refused: another deployment may serve it in one call.
- Cohere (`cohere.embed-english-v3`, `-multilingual-v3`, `embed-v4`): up to 96 texts per
  call, `{"texts", "input_type"}` (the request's, the provider's, else search_document);
  `dimensions` is v4's `output_dimension`. Cohere reports no token count in the body:
  usage is estimated.
"""

from __future__ import annotations

from typing import Any

from perpetuo.providers.base import (
    Json,
    Target,
    checked_usage,
    decode_object,
    encode_json,
    floats_to_base64,
    unsupported,
)
from perpetuo.schema.embeddings import EmbeddingRequest
from perpetuo.schema.errors import UpstreamError, UpstreamErrorKind
from perpetuo.schema.usage import token_count

COHERE_MAX_TEXTS = 96


def family(model: str) -> str | None:
    name = model.lower()
    if "titan-embed" in name:
        return "titan"
    if "cohere.embed" in name:
        return "cohere"
    return None


def request_body(request: EmbeddingRequest, target: Target) -> bytes:
    kind = family(target.model)
    inputs = request.inputs_as_list()
    if any(not isinstance(item, str) for item in inputs):
        raise unsupported("Bedrock embeddings take text, not token ids", "input")
    dimensions = request.dimensions if isinstance(request.dimensions, int) else None
    if kind == "titan":
        if len(inputs) != 1:
            raise unsupported("Titan embeddings on Bedrock take one input per request", "input")
        body: Json = {"inputText": inputs[0]}
        if dimensions is not None:
            body["dimensions"] = dimensions
        return encode_json(body)
    if kind == "cohere":
        if len(inputs) > COHERE_MAX_TEXTS:
            raise unsupported(f"Cohere embeddings take at most {COHERE_MAX_TEXTS} inputs", "input")
        given = request.input_type if isinstance(request.input_type, str) else None
        body = {"texts": inputs, "input_type": given or target.input_type or "search_document"}
        if dimensions is not None:
            body["output_dimension"] = dimensions  # embed v4; v3 refuses it
        return encode_json(body)
    raise unsupported(
        f"Bedrock model {target.model!r} is not a known embeddings model (Titan or Cohere)",
        "model",
    )


def response(body: bytes, target: Target, request: EmbeddingRequest) -> Json:
    data = decode_object(body)
    vectors = _vectors(data)
    if len(vectors) != len(request.inputs_as_list()) or not all(
        isinstance(v, list) for v in vectors
    ):
        raise UpstreamError(
            UpstreamErrorKind.BAD_RESPONSE, "upstream sent no embedding for some inputs"
        )
    items = [
        {
            "object": "embedding",
            "index": index,
            "embedding": floats_to_base64(vector) if request.wants_base64 else vector,
        }
        for index, vector in enumerate(vectors)
    ]
    result: Json = {"object": "list", "data": items, "model": target.model}
    counted = checked_usage({"input": data.get("inputTextTokenCount")}, target)
    prompt = token_count(counted["input"])
    if prompt is not None:
        result["usage"] = {"prompt_tokens": prompt, "total_tokens": prompt}
    return result


def _vectors(data: Json) -> list[Any]:
    if "embedding" in data:  # Titan
        return [data["embedding"]]
    embeddings = data.get("embeddings")  # Cohere: a list, or by type ({"float": [...]})
    if isinstance(embeddings, dict):
        embeddings = embeddings.get("float")
    return embeddings if isinstance(embeddings, list) else []
