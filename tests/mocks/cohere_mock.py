"""A mock of Cohere's API, per the public reference: rerank (v2), `POST /v2/rerank` with a
bearer key, results by relevance with `meta.billed_units.search_units` (one per query and
up to 100 documents), chat, embed and the model list (cohere_chat.py), and Cohere's error
objects (`{"id", "message"}`)."""

from __future__ import annotations

import math
import uuid
from typing import Any

from aiohttp import web

from tests.mocks.cohere_chat import CohereChatAPI
from tests.mocks.openai_text import relevance
from tests.mocks.server import MockUpstream


def cohere_error(status: int, message: str) -> web.Response:
    return web.json_response({"id": str(uuid.uuid4()), "message": message}, status=status)


class CohereMock(CohereChatAPI, MockUpstream):
    def __init__(self, api_key: str = "co-test-key") -> None:
        super().__init__()
        self.api_key = api_key

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/v2/rerank", self.rerank)
        self.chat_routes(app)

    async def rerank(self, request: web.Request) -> web.Response:
        recorded = await self.record(request)
        if request.headers.get("Authorization") != f"Bearer {self.api_key}":
            return cohere_error(401, "invalid api token")
        fault = self.take_fault()
        if (answer := await self.apply_fault(request, fault)) is not None:
            return answer  # type: ignore[return-value]
        body: Any = recorded.body
        if not isinstance(body, dict):
            return cohere_error(400, "invalid request: body must be a JSON object")
        for name in body:
            if name not in ("model", "query", "documents", "top_n", "max_tokens_per_doc"):
                return cohere_error(
                    400, f"invalid request: unknown field: parameter {name} is not a valid field"
                )
        if not body.get("model"):
            return cohere_error(400, "invalid request: model must be specified")
        query, documents = body.get("query"), body.get("documents")
        if not query:
            return cohere_error(400, "invalid request: query must not be empty")
        if not isinstance(documents, list) or not documents:
            return cohere_error(400, "invalid request: documents must not be empty")
        if not all(isinstance(d, str) for d in documents):
            return cohere_error(400, "invalid request: documents must be strings")
        ranked = sorted(range(len(documents)), key=lambda i: -relevance(query, documents[i]))
        top_n = body.get("top_n") or len(documents)
        return web.json_response(
            {
                "id": str(uuid.uuid4()),
                "results": [
                    {"index": i, "relevance_score": relevance(query, documents[i])}
                    for i in ranked[:top_n]
                ],
                "meta": {
                    "api_version": {"version": "2"},
                    "billed_units": {"search_units": math.ceil(len(documents) / 100)},
                },
            }
        )
