"""chat.completion -> a Responses `response` object.

Output order is the API's: reasoning items, the assistant message, then one item per tool
call (call_id = the chat tool call id, so a round trip keeps it). Reasoning items are the
message's OpenAI reasoning blocks verbatim; without those, the reasoning text becomes a
summary only when the client asked for one, and encrypted_content is never made up. The
stream encoder builds its items and final object with the same functions, so a stream ends
with exactly what `encode` returns for the same answer.
"""

from __future__ import annotations

import os
import time
from typing import Any

from perpetuo.api.dialects.base import DialectRequest
from perpetuo.schema.reasoning import FOREIGN_KINDS, as_reasoning_item
from perpetuo.schema.usage import Usage

Json = dict[str, Any]

INCOMPLETE_REASONS = {"length": "max_output_tokens", "content_filter": "content_filter"}


def encode(
    chat_body: Json,
    usage: Usage | None,
    *,
    model: str,
    request: DialectRequest,
    response_id: str | None = None,
) -> Json:
    choices = chat_body.get("choices")
    choice = choices[0] if isinstance(choices, list) and choices else {}
    message = choice.get("message") if isinstance(choice.get("message"), dict) else {}
    finish = choice.get("finish_reason")
    response_id = response_id or new_response_id()
    incomplete = finish in INCOMPLETE_REASONS
    output: list[Json] = reasoning_items(message, response_id, wants_summary(request))
    calls = message.get("tool_calls") if isinstance(message.get("tool_calls"), list) else []
    refusal = message.get("refusal")
    text = _plain(message.get("content"))
    if text or refusal or not calls:  # no empty message beside tool calls, as streams do
        parts = []
        if text or not refusal:
            parts.append(output_text(text, _logprobs(choice.get("logprobs"))))
        if refusal:
            parts.append({"type": "refusal", "refusal": refusal})
        status = "incomplete" if incomplete and not calls else "completed"
        output.append(message_item(item_id("msg", response_id, len(output)), parts, status))
    for call in calls:
        if isinstance(call, dict):
            index = len(output)
            output.append(call_item(call, response_id, index, "incomplete" if incomplete else None))
    return response_object(
        request,
        model=model,
        response_id=response_id,
        created_at=_created(chat_body),
        status="incomplete" if incomplete else "completed",
        output=output,
        usage=usage,
        finish=finish,
        service_tier=chat_body.get("service_tier"),
    )


# --- ids -----------------------------------------------------------------------------------


def new_response_id() -> str:
    return f"resp_{os.urandom(16).hex()}"  # 128 random bits, as uuid4 without its overhead


def item_id(prefix: str, response_id: str, index: int) -> str:
    """Item ids derived from the response id and position, so a stream and the complete
    object of the same answer name their items alike."""
    return f"{prefix}_{response_id.removeprefix('resp_')}{index:03d}"


# --- items ---------------------------------------------------------------------------------


def wants_summary(request: DialectRequest) -> bool:
    reasoning = request.raw.get("reasoning")
    return isinstance(reasoning, dict) and bool(
        reasoning.get("summary") or reasoning.get("generate_summary")
    )


def reasoning_items(message: Json, response_id: str, summarize: bool) -> list[Json]:
    """OpenAI's reasoning items as they came; another provider's signed reasoning (Anthropic's
    thinking) sealed in a reasoning item's encrypted_content, to come back next turn."""
    blocks = message.get("thinking_blocks")
    items = []
    for block in blocks if isinstance(blocks, list) else []:
        if not isinstance(block, dict):
            continue
        if block.get("type") == "reasoning":
            items.append(dict(block))
        elif block.get("type") in FOREIGN_KINDS:
            rs_id = item_id("rs", response_id, len(items))
            items.append(as_reasoning_item(block, rs_id, summarize))
    thought = message.get("reasoning_content")
    if not items and summarize and isinstance(thought, str) and thought:
        items.append(summary_item(item_id("rs", response_id, 0), thought))
    return items


def summary_item(id_: str, text: str) -> Json:
    return {"id": id_, "type": "reasoning", "summary": [{"type": "summary_text", "text": text}]}


def output_text(text: str, logprobs: list[Any] | None = None) -> Json:
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": logprobs or []}


def message_item(id_: str, content: list[Json], status: str) -> Json:
    return {"id": id_, "type": "message", "status": status, "role": "assistant", "content": content}


def call_item(call: Json, response_id: str, index: int, status: str | None) -> Json:
    """A function_call (or custom_tool_call) item from a complete chat tool call."""
    if call.get("type") == "custom" or "custom" in call:
        custom = call.get("custom") if isinstance(call.get("custom"), dict) else {}
        return {
            "id": item_id("ctc", response_id, index),
            "type": "custom_tool_call",
            "status": status or "completed",
            "call_id": call.get("id") or item_id("call", response_id, index),
            "name": custom.get("name") or "",
            "input": custom.get("input") or "",
        }
    function = call.get("function") if isinstance(call.get("function"), dict) else {}
    return {
        "id": item_id("fc", response_id, index),
        "type": "function_call",
        "status": status or "completed",
        "arguments": function.get("arguments") or "",
        "call_id": call.get("id") or item_id("call", response_id, index),
        "name": function.get("name") or "",
    }


# --- the response object -------------------------------------------------------------------


def usage_object(usage: Usage) -> Json:
    """Responses counts cached (and cache-write) tokens inside input_tokens, as chat does."""
    return {
        "input_tokens": usage.prompt_tokens,
        "input_tokens_details": {
            "cached_tokens": usage.cached_tokens,
            "cache_write_tokens": usage.cache_write_tokens,
        },
        "output_tokens": usage.completion_tokens,
        "output_tokens_details": {"reasoning_tokens": usage.reasoning_tokens},
        "total_tokens": usage.total_tokens,
    }


def response_object(
    request: DialectRequest,
    *,
    model: str,
    response_id: str,
    created_at: int,
    status: str,
    output: list[Json],
    usage: Usage | None,
    finish: str | None = None,
    service_tier: Any = None,
    error: Json | None = None,
) -> Json:
    """The whole object, echoing the request parameters the SDKs read."""
    raw = request.raw
    reason = INCOMPLETE_REASONS.get(finish or "") if status == "incomplete" else None
    reasoning = raw.get("reasoning") if isinstance(raw.get("reasoning"), dict) else {}
    text = raw.get("text") if isinstance(raw.get("text"), dict) else {}
    return {
        "id": response_id,
        "object": "response",
        "created_at": created_at,
        "status": status,
        "background": raw.get("background") is True,
        "error": error,
        "incomplete_details": {"reason": reason} if reason else None,
        "instructions": raw.get("instructions"),
        "max_output_tokens": raw.get("max_output_tokens"),
        "max_tool_calls": raw.get("max_tool_calls"),
        "model": model,
        "output": output,
        "parallel_tool_calls": raw.get("parallel_tool_calls") is not False,
        "previous_response_id": raw.get("previous_response_id"),
        "prompt_cache_key": raw.get("prompt_cache_key"),
        "reasoning": {"effort": reasoning.get("effort"), "summary": reasoning.get("summary")},
        "safety_identifier": raw.get("safety_identifier"),
        "service_tier": service_tier or raw.get("service_tier") or "default",
        "store": raw.get("store") is not False,
        "temperature": _number(raw.get("temperature"), 1.0),
        "text": {
            "format": text.get("format") or {"type": "text"},
            "verbosity": text.get("verbosity") or "medium",
        },
        "tool_choice": raw.get("tool_choice") or "auto",
        "tools": [_echo_tool(tool) for tool in raw.get("tools") or [] if isinstance(tool, dict)],
        "top_logprobs": raw.get("top_logprobs") or 0,
        "top_p": _number(raw.get("top_p"), 1.0),
        "truncation": raw.get("truncation") or "disabled",
        "usage": usage_object(usage) if usage is not None else None,
        "user": raw.get("user"),
        "metadata": raw.get("metadata") or {},
    }


def _echo_tool(tool: Json) -> Json:
    if tool.get("type") != "function":
        return tool
    # As the API echoes a function tool: every field present.
    return {"description": None, "parameters": None, "strict": None, **tool}


def _number(value: Any, default: float) -> float:
    return value if type(value) in (int, float) else default


def _plain(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # content parts, as some providers answer
        return "".join(
            p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text"
        )
    return ""


def _logprobs(logprobs: Any) -> list[Any]:
    content = logprobs.get("content") if isinstance(logprobs, dict) else None
    return content if isinstance(content, list) else []


def _created(chat_body: Json) -> int:
    created = chat_body.get("created")
    return created if type(created) is int else int(time.time())
