"""OpenAI's legacy text completions and moderations, and the Cohere-style rerank vLLM and
Jina serve at /v1/rerank, for the OpenAI mock, per the public references: completions
(JSON and SSE `text_completion` chunks, include_usage, the 404 OpenAI gives chat models),
moderations (per-input results with categories and scores), rerank (results by relevance,
top_n, return_documents, token usage), and Azure's deployment route for completions.

Triggers: a moderation input with "trigger flag" is flagged.
"""

from __future__ import annotations

import time
from typing import Any

from aiohttp import web

from tests.mocks.openai_media import error, missing
from tests.mocks.server import sse

CHAT_MODELS = ("gpt-4o", "gpt-4.1", "o1", "o3", "o4")
CATEGORIES = (
    "harassment",
    "harassment/threatening",
    "hate",
    "hate/threatening",
    "illicit",
    "illicit/violent",
    "self-harm",
    "self-harm/instructions",
    "self-harm/intent",
    "sexual",
    "sexual/minors",
    "violence",
    "violence/graphic",
)


def completion_text(prompt: str, max_tokens: int) -> tuple[str, str]:
    """(text, finish_reason): a deterministic continuation cut at `max_tokens` words."""
    words = f"continues the prompt that began with {prompt[:24]!r} and ends here".split()
    finish = "length" if len(words) > max_tokens else "stop"
    return " " + " ".join(words[:max_tokens]), finish


def words_of(text: str) -> list[str]:
    return "".join(c if c.isalnum() else " " for c in text.lower()).split()


def relevance(query: str, document: str) -> float:
    asked = set(words_of(query))
    words = words_of(document)
    return round(sum(w in asked for w in words) / (len(words) or 1), 6)


class TextAPI:
    """Mixed into OpenAIMock (which provides record, faults and the key checks)."""

    def text_routes(self, app: web.Application) -> None:
        app.router.add_post("/v1/completions", self._entry(self.completions, azure=False))
        app.router.add_post("/v1/moderations", self._entry(self.moderations, azure=False))
        app.router.add_post("/v1/rerank", self._entry(self.rerank, azure=False))
        app.router.add_post(
            "/openai/deployments/{deployment}/completions", self._entry(self.completions, True)
        )

    # _entry comes from MediaAPI

    async def completions(self, request: web.Request, body: dict[str, Any], fault: Any):
        model = body.get("model") or ""
        if not model:
            return missing("model")
        if model.startswith(CHAT_MODELS):
            return error(
                404,
                "This is a chat model and not supported in the v1/completions endpoint. Did "
                "you mean to use v1/chat/completions?",
                "model",
            )
        prompt = body.get("prompt")
        if prompt is None:
            return missing("prompt")
        prompts = (
            prompt
            if isinstance(prompt, list) and prompt and isinstance(prompt[0], str)
            else [prompt]
        )
        max_tokens = body.get("max_tokens") or 16
        n = body.get("n") or 1
        choices, used = [], 0
        for p_index, text_prompt in enumerate(prompts):
            for copy in range(n):
                text, finish = completion_text(str(text_prompt), max_tokens)
                used += len(text.split())
                choices.append(
                    {
                        "text": text,
                        "index": p_index * n + copy,
                        "logprobs": None,
                        "finish_reason": finish,
                    }
                )
        prompt_tokens = sum(len(str(p).split()) for p in prompts)
        usage = {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": used,
            "total_tokens": prompt_tokens + used,
        }
        base = {
            "id": f"cmpl-mock{len(self.requests)}",
            "object": "text_completion",  # type: ignore[attr-defined]
            "created": int(time.time()),
            "model": model,
        }
        if not body.get("stream"):
            return web.json_response(
                {**base, "choices": choices, "usage": usage, "system_fingerprint": "fp_mock"}
            )
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        events = []
        for choice in choices:
            for word in choice["text"].split(" ")[1:]:
                chunk = {
                    **base,
                    "choices": [
                        {
                            "text": " " + word,
                            "index": choice["index"],
                            "logprobs": None,
                            "finish_reason": None,
                        }
                    ],
                }
                if include_usage:
                    chunk["usage"] = None
                events.append(sse(chunk))
            last = {
                **base,
                "choices": [
                    {
                        "text": "",
                        "index": choice["index"],
                        "logprobs": None,
                        "finish_reason": choice["finish_reason"],
                    }
                ],
            }
            if include_usage:
                last["usage"] = None
            events.append(sse(last))
        if include_usage:
            events.append(sse({**base, "choices": [], "usage": usage}))
        events.append(b"data: [DONE]\n\n")
        return await self.stream_events(request, events, fault)  # type: ignore[attr-defined]

    async def moderations(self, request: web.Request, body: dict[str, Any], fault: Any):
        given = body.get("input")
        if given is None:
            return missing("input")
        items = given if isinstance(given, list) else [given]
        results = []
        for item in items:
            text = item if isinstance(item, str) else str((item or {}).get("text") or "")
            flagged = "trigger flag" in text
            results.append(
                {
                    "flagged": flagged,
                    "categories": {c: flagged and c == "violence" for c in CATEGORIES},
                    "category_scores": {
                        c: 0.91 if flagged and c == "violence" else 0.0001 for c in CATEGORIES
                    },
                    "category_applied_input_types": {c: ["text"] for c in CATEGORIES},
                }
            )
        return web.json_response(
            {
                "id": f"modr-mock{len(self.requests)}",  # type: ignore[attr-defined]
                "model": body.get("model") or "omni-moderation-latest",
                "results": results,
            }
        )

    async def rerank(self, request: web.Request, body: dict[str, Any], fault: Any):
        query, documents = body.get("query"), body.get("documents")
        if not isinstance(query, str) or not query:
            return missing("query")
        if not isinstance(documents, list) or not documents:
            return missing("documents")
        texts = [d["text"] if isinstance(d, dict) else d for d in documents]
        ranked = sorted(range(len(texts)), key=lambda i: -relevance(query, texts[i]))
        top_n = body.get("top_n") or len(texts)
        results = []
        for index in ranked[:top_n]:
            result: dict[str, Any] = {
                "index": index,
                "relevance_score": relevance(query, texts[index]),
            }
            if body.get("return_documents", True):
                result["document"] = {"text": texts[index]}
            results.append(result)
        tokens = len(query.split()) + sum(len(t.split()) for t in texts)
        return web.json_response(
            {
                "id": f"rerank-mock{len(self.requests)}",
                "model": body.get("model"),  # type: ignore[attr-defined]
                "usage": {"total_tokens": tokens},
                "results": results,
            }
        )
