"""A cached answer: the completion as the client saw it, and enough to replay it.

Stored after output guardrails (and before reversible masking puts the caller's own values
back, so one request's values never reach another). A streamed answer keeps its content
deltas, so a stream served from the cache has the chunk boundaries the original had; an
answer first served as JSON is replayed in word-sized deltas.
"""

from __future__ import annotations

import copy
import re
import secrets
import time
from collections.abc import Iterator
from typing import Any

import msgspec

Json = dict[str, Any]
CHUNK_FIELDS = ("service_tier", "system_fingerprint")


class CachedAnswer(msgspec.Struct, omit_defaults=True):
    body: Json  # a chat.completion object, usage included
    provider: str = ""
    model: str = ""
    cost_micros: int = 0  # what producing it cost: what a hit saves
    pieces: list[list[str]] | None = None  # per choice: content deltas as streamed
    created: float = 0.0


encode_answer = msgspec.json.Encoder().encode
decode_answer = msgspec.json.Decoder(CachedAnswer).decode


def fresh_body(answer: CachedAnswer) -> Json:
    """The cached completion under a new id and creation time."""
    body = copy.deepcopy(answer.body)
    body["id"] = f"chatcmpl-{secrets.token_hex(12)}"
    body["created"] = int(time.time())
    return body


_WORDS = re.compile(r"\S+\s*|\s+")


def _word_pieces(text: str) -> list[str]:
    return _WORDS.findall(text)


def replay_chunks(answer: CachedAnswer, body: Json, include_usage: bool) -> Iterator[Json]:
    """The chunks a provider would have streamed for `body`: per choice a role chunk, the
    content deltas, tool calls, a finish chunk; then a usage chunk when asked for."""
    template: Json = {
        "id": body.get("id"),
        "object": "chat.completion.chunk",
        "created": body.get("created"),
        "model": body.get("model"),
    }
    template.update({k: body[k] for k in CHUNK_FIELDS if k in body})

    def chunk(choices: list[Json]) -> Json:
        out = {**template, "choices": choices}
        if include_usage:
            out["usage"] = None
        return out

    for position, choice in enumerate(body.get("choices") or ()):
        index = choice.get("index", position)
        message = choice.get("message") or {}
        yield chunk([_choice(index, {"role": "assistant", "content": "", "refusal": None})])
        content = message.get("content")
        stored = (
            answer.pieces[position] if answer.pieces and position < len(answer.pieces) else None
        )
        pieces = stored if stored is not None else _word_pieces(content or "")
        for piece in pieces:
            yield chunk([_choice(index, {"content": piece})])
        for call_index, call in enumerate(message.get("tool_calls") or ()):
            function = call.get("function") or {}
            head = {
                "index": call_index,
                "id": call.get("id"),
                "type": call.get("type", "function"),
                "function": {"name": function.get("name"), "arguments": ""},
            }
            yield chunk([_choice(index, {"tool_calls": [head]})])
            arguments = function.get("arguments") or ""
            if arguments:
                tail = {"index": call_index, "function": {"arguments": arguments}}
                yield chunk([_choice(index, {"tool_calls": [tail]})])
        yield chunk([_choice(index, {}, choice.get("finish_reason") or "stop")])
    if include_usage:
        yield {**template, "choices": [], "usage": body.get("usage")}


def _choice(index: int, delta: Json, finish: str | None = None) -> Json:
    return {"index": index, "delta": delta, "logprobs": None, "finish_reason": finish}


class StreamCollector:
    """Rebuilds a completion from the chunks a client received, for the cache."""

    def __init__(self) -> None:
        self.top: Json = {}
        self.choices: dict[int, Json] = {}

    def add(self, chunk: Json) -> None:
        if not self.top:
            self.top = {k: chunk.get(k) for k in ("id", "created", "model")}
            self.top.update({k: chunk[k] for k in CHUNK_FIELDS if k in chunk})
        for choice in chunk.get("choices") or ():
            index = choice.get("index", 0)
            state = self.choices.setdefault(index, {"pieces": [], "calls": {}, "finish": None})
            delta = choice.get("delta") or {}
            content = delta.get("content")
            if isinstance(content, str) and content:
                state["pieces"].append(content)
            for call in delta.get("tool_calls") or ():
                slot = state["calls"].setdefault(
                    call.get("index", 0),
                    {"id": None, "type": "function", "function": {"name": "", "arguments": ""}},
                )
                if call.get("id"):
                    slot["id"] = call["id"]
                function = call.get("function") or {}
                slot["function"]["name"] += function.get("name") or ""
                slot["function"]["arguments"] += function.get("arguments") or ""
            if choice.get("finish_reason"):
                state["finish"] = choice["finish_reason"]

    def answer(self, usage: Json) -> CachedAnswer | None:
        """None when the stream is not a complete answer worth replaying."""
        if not self.choices or any(s["finish"] is None for s in self.choices.values()):
            return None
        if any(s["finish"] == "content_filter" for s in self.choices.values()):
            return None
        choices = []
        pieces = []
        for index in sorted(self.choices):
            state = self.choices[index]
            message: Json = {"role": "assistant", "content": "".join(state["pieces"]) or None}
            if state["calls"]:
                message["tool_calls"] = [state["calls"][i] for i in sorted(state["calls"])]
            message["refusal"] = None
            choices.append(
                {
                    "index": index,
                    "message": message,
                    "logprobs": None,
                    "finish_reason": state["finish"],
                }
            )
            pieces.append(state["pieces"])
        body = {**self.top, "object": "chat.completion", "choices": choices, "usage": usage}
        return CachedAnswer(body=body, pieces=pieces)


def worth_caching(body: Json) -> bool:
    """Complete answers only: no content-filtered or empty choice lists."""
    choices = body.get("choices")
    if not isinstance(choices, list) or not choices:
        return False
    return all(
        isinstance(c, dict) and c.get("finish_reason") not in (None, "content_filter")
        for c in choices
    )
