"""Cohere's rerank (API v2), the format the gateway's /v1/rerank speaks, for Cohere's own
API and for Cohere's models on Bedrock (InvokeModel with the same body, no `model`, and
`api_version: 2`).

Request: `{"model", "query", "documents": [str], "top_n", "max_tokens_per_doc"}`. Answer:
`{"id", "results": [{"index", "relevance_score"}], "meta": {"billed_units":
{"search_units"}}}`. v2 dropped `return_documents`: the gateway adds each result's
`document` itself when the client asks (as vLLM and Jina answer), from the documents sent.
"""

from __future__ import annotations

from typing import Any

from perpetuo.providers.base import Json, unsupported
from perpetuo.schema.errors import UpstreamError, UpstreamErrorKind
from perpetuo.schema.operations import OperationRequest

PASSED = ("top_n", "max_tokens_per_doc")
GATEWAY_SIDE = frozenset({"model", "query", "documents", "return_documents"})


def documents_as_text(documents: list[Any]) -> list[str]:
    """Strings, or `{"text": ...}` objects (as Jina and vLLM take them) as their text."""
    texts = []
    for index, document in enumerate(documents):
        if isinstance(document, dict) and isinstance(document.get("text"), str):
            document = document["text"]
        if not isinstance(document, str):
            raise unsupported(
                f"documents[{index}]: Cohere reranks text (a string or {{'text': ...}})",
                "documents",
            )
        texts.append(document)
    return texts


def request_body(request: OperationRequest, model: str | None) -> Json:
    for name, value in request.body.items():
        if name not in GATEWAY_SIDE and name not in PASSED and value is not None:
            raise unsupported(f"`{name}` is not supported by Cohere's rerank (v2)", name)
    body: Json = {"query": request.param("query")}
    if model is not None:
        body["model"] = model
    body["documents"] = documents_as_text(request.param("documents"))
    for name in PASSED:
        if request.param(name) is not None:
            body[name] = request.param(name)
    return body


def answer(request: OperationRequest, data: Json, model: str) -> Json:
    results = data.get("results")
    if not isinstance(results, list):
        raise UpstreamError(UpstreamErrorKind.BAD_RESPONSE, "upstream rerank has no results")
    documents = request.param("documents")
    count = len(documents)
    shaped = []
    for result in results:
        index = result.get("index") if isinstance(result, dict) else None
        score = result.get("relevance_score") if isinstance(result, dict) else None
        if not isinstance(index, int) or not 0 <= index < count or not _number(score):
            raise UpstreamError(UpstreamErrorKind.BAD_RESPONSE, "upstream rerank result unreadable")
        item: Json = {"index": index, "relevance_score": score}
        if request.param("return_documents"):
            document = documents[index]
            item["document"] = document if isinstance(document, dict) else {"text": document}
        shaped.append(item)
    answer: Json = {"id": data.get("id"), "model": model, "results": shaped}
    if isinstance(data.get("meta"), dict):
        answer["meta"] = data["meta"]
    return answer


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
