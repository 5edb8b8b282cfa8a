"""OpenAI embeddings <-> Cohere v2 `/v2/embed`.

Cohere's embed models (v3 and later) need to know what the text is for: `input_type` is the
request's own (`search_query`, `search_document`, `classification`, `clustering`), else the
provider's configured default, else `search_document` (what a stored corpus is embedded as).
Vectors are always asked as `float` (Cohere's other types: int8, uint8, binary, ubinary and
base64, have no OpenAI counterpart) and encoded as base64 here when the client asks for it.
`dimensions` is Embed v4's `output_dimension`. At most 96 texts go in one call; token-id
inputs are refused. Usage is the billed input tokens.
"""

from __future__ import annotations

from typing import Any

from perpetuo.providers.base import (
    Json,
    Target,
    checked_usage,
    decode_object,
    floats_to_base64,
    unsupported,
)
from perpetuo.providers.cohere.chat import usage_of
from perpetuo.schema.embeddings import EmbeddingRequest
from perpetuo.schema.errors import UpstreamError, UpstreamErrorKind

MAX_TEXTS = 96
DEFAULT_INPUT_TYPE = "search_document"


def request_body(request: EmbeddingRequest, target: Target) -> Json:
    texts = request.inputs_as_list()
    if any(not isinstance(text, str) for text in texts):
        raise unsupported("Cohere embeddings take text, not token ids", "input")
    if len(texts) > MAX_TEXTS:
        raise unsupported(f"Cohere embeds at most {MAX_TEXTS} inputs per request", "input")
    input_type = request.input_type if isinstance(request.input_type, str) else None
    body: Json = {
        "model": target.model,
        "texts": texts,
        "input_type": input_type or target.input_type or DEFAULT_INPUT_TYPE,
        "embedding_types": ["float"],
    }
    if isinstance(request.dimensions, int):
        body["output_dimension"] = request.dimensions
    return body


def answer(body: bytes, target: Target, request: EmbeddingRequest) -> Json:
    data = decode_object(body)
    vectors = _floats(data.get("embeddings"))
    expected = len(request.inputs_as_list())
    if len(vectors) != expected or not all(isinstance(v, list) for v in vectors):
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
    meta = data.get("meta") if isinstance(data.get("meta"), dict) else {}
    if isinstance(meta.get("billed_units"), dict):
        billed = usage_of(checked_usage({"billed_units": meta["billed_units"]}, target))
        tokens = billed.prompt_tokens
        result["usage"] = {"prompt_tokens": tokens, "total_tokens": tokens}
    return result


def _floats(embeddings: Any) -> list[Any]:
    """v2 answers by type (`{"float": [...]}`); v1's `embeddings_floats` is a bare list."""
    if isinstance(embeddings, dict):
        embeddings = embeddings.get("float")
    return embeddings if isinstance(embeddings, list) else []
