"""The dialect matrix's moving parts: one request builder and two readers (complete answer,
stream) per dialect, all reducing an answer to the same `Answer`, and the stream readers
checking each dialect's framing as they go (order, numbering, every block or item that
opens closes, exactly one terminal event)."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from typing import Any

Json = dict[str, Any]

# A 1x1 PNG.
PNG = base64.b64encode(
    bytes.fromhex(
        "89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c489"
        "0000000d4944415478da63f8cfc0f01f0005000201a3b5f1c50000000049454e44ae426082"
    )
).decode()
DATA_URL = f"data:image/png;base64,{PNG}"
SCHEMA = {
    "type": "object",
    "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
    "required": ["city", "days"],
    "additionalProperties": False,
}
TOOLS = [
    ("get_weather", {"type": "object", "properties": {"city": {"type": "string"}}}),
    ("get_time", {"type": "object", "properties": {"zone": {"type": "string"}}}),
]


@dataclass
class Call:
    id: str
    name: str
    args: Json


@dataclass
class Ask:
    """One request, in no dialect: a user turn, and optionally what comes with it."""

    text: str
    image: bool = False
    tools: bool = False
    schema: bool = False
    server_tool: bool = False
    calls: list[Call] = field(default_factory=list)  # an answered assistant turn before it
    results: list[str] = field(default_factory=list)


@dataclass
class Answer:
    text: str
    calls: list[Call]
    stop: str  # stop, tool_calls or length
    usage: tuple[int, int]  # input, output tokens


# -- Chat Completions -----------------------------------------------------------------------


def chat_body(model: str, ask: Ask, stream: bool) -> Json:
    content: Any = ask.text
    if ask.image:
        content = [
            {"type": "image_url", "image_url": {"url": DATA_URL}},
            {"type": "text", "text": ask.text},
        ]
    messages: list[Json] = [{"role": "user", "content": content}]
    if ask.calls:
        messages.append({"role": "assistant", "content": None, "tool_calls": [
            {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": json.dumps(c.args)}}
            for c in ask.calls
        ]})  # fmt: skip
        messages += [
            {"role": "tool", "tool_call_id": c.id, "content": result}
            for c, result in zip(ask.calls, ask.results, strict=True)
        ]
    body: Json = {"model": model, "messages": messages, "max_tokens": 300}
    if ask.tools:
        body["tools"] = [
            {"type": "function", "function": {"name": name, "parameters": schema}}
            for name, schema in TOOLS
        ]
    if ask.schema:
        spec = {"name": "forecast", "schema": SCHEMA, "strict": True}
        body["response_format"] = {"type": "json_schema", "json_schema": spec}
    if ask.server_tool:
        body["web_search_options"] = {}
    if stream:
        body.update(stream=True, stream_options={"include_usage": True})
    return body


def chat_answer(body: Json) -> Answer:
    choice = body["choices"][0]
    message = choice["message"]
    calls = [
        Call(c["id"], c["function"]["name"], json.loads(c["function"]["arguments"]))
        for c in message.get("tool_calls") or []
    ]
    usage = body["usage"]
    return Answer(
        message.get("content") or "",
        calls,
        choice["finish_reason"],
        (usage["prompt_tokens"], usage["completion_tokens"]),
    )


def chat_stream(raw: str) -> Answer:
    payloads = [block.removeprefix("data: ") for block in raw.strip().split("\n\n")]
    assert payloads[-1] == "[DONE]" and payloads.count("[DONE]") == 1
    text, calls, finishes, usage = "", {}, [], None
    for payload in payloads[:-1]:
        chunk = json.loads(payload)
        assert usage is None, "nothing but [DONE] after the usage chunk"
        if chunk.get("usage"):
            usage = chunk["usage"]
        for choice in chunk["choices"]:
            delta = choice["delta"]
            text += delta.get("content") or ""
            for piece in delta.get("tool_calls") or []:
                call = calls.setdefault(piece["index"], {"id": "", "name": "", "args": ""})
                call["id"] = call["id"] or piece.get("id") or ""
                function = piece.get("function") or {}
                call["name"] += function.get("name") or ""
                call["args"] += function.get("arguments") or ""
            if choice.get("finish_reason"):
                finishes.append(choice["finish_reason"])
    assert len(finishes) == 1 and usage is not None
    listed = [Call(c["id"], c["name"], json.loads(c["args"])) for _, c in sorted(calls.items())]
    return Answer(text, listed, finishes[0], (usage["prompt_tokens"], usage["completion_tokens"]))


# -- Responses ------------------------------------------------------------------------------


def responses_body(model: str, ask: Ask, stream: bool) -> Json:
    content: list[Json] = [{"type": "input_text", "text": ask.text}]
    if ask.image:
        content.insert(0, {"type": "input_image", "image_url": DATA_URL})
    items: list[Json] = [{"type": "message", "role": "user", "content": content}]
    for c in ask.calls:
        items.append({"type": "function_call", "call_id": c.id, "name": c.name, "arguments": json.dumps(c.args)})  # fmt: skip
    for c, result in zip(ask.calls, ask.results, strict=True):
        items.append({"type": "function_call_output", "call_id": c.id, "output": result})
    body: Json = {"model": model, "input": items, "max_output_tokens": 300, "store": False}
    tools: list[Json] = []
    if ask.tools:
        tools += [
            {"type": "function", "name": name, "parameters": schema} for name, schema in TOOLS
        ]
    if ask.server_tool:
        tools.append({"type": "web_search_preview"})
    if tools:
        body["tools"] = tools
    if ask.schema:
        fmt = {"type": "json_schema", "name": "forecast", "schema": SCHEMA, "strict": True}
        body["text"] = {"format": fmt}
    if stream:
        body["stream"] = True
    return body


def responses_answer(body: Json) -> Answer:
    text = "".join(
        part["text"]
        for item in body["output"]
        if item["type"] == "message"
        for part in item["content"]
        if part["type"] == "output_text"
    )
    calls = [
        Call(i["call_id"], i["name"], json.loads(i["arguments"]))
        for i in body["output"]
        if i["type"] == "function_call"
    ]
    stop = "length" if body["status"] == "incomplete" else "tool_calls" if calls else "stop"
    assert body["status"] in ("completed", "incomplete")
    usage = body["usage"]
    return Answer(text, calls, stop, (usage["input_tokens"], usage["output_tokens"]))


def sse(raw: str) -> list[tuple[str, Json]]:
    events = []
    for block in raw.strip().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.split("\n"))
        data = json.loads(lines["data"])
        assert lines["event"] == data["type"], "the SSE event name is the data's type"
        events.append((lines["event"], data))
    return events


def responses_stream(raw: str) -> Answer:
    events = sse(raw)
    kinds = [kind for kind, _ in events]
    assert kinds[:2] == ["response.created", "response.in_progress"]
    terminal = [k for k in kinds if k in ("response.completed", "response.incomplete")]
    assert len(terminal) == 1 and kinds[-1] == terminal[0]
    assert [data["sequence_number"] for _, data in events] == list(range(len(events)))
    open_items: dict[int, Json] = {}
    done: dict[int, Json] = {}
    text, arguments = "", {}
    parts: set[tuple[int, int]] = set()
    for kind, data in events:
        if kind == "response.output_item.added":
            assert data["output_index"] not in open_items and data["output_index"] == len(
                done
            ) + len(open_items)
            open_items[data["output_index"]] = data["item"]
        elif kind == "response.output_item.done":
            assert data["output_index"] in open_items
            open_items.pop(data["output_index"])
            done[data["output_index"]] = data["item"]
        elif kind == "response.content_part.added":
            parts.add((data["output_index"], data["content_index"]))
        elif kind == "response.content_part.done":
            parts.remove((data["output_index"], data["content_index"]))
        elif kind == "response.output_text.delta":
            assert data["output_index"] in open_items
            text += data["delta"]
        elif kind == "response.function_call_arguments.delta":
            arguments[data["output_index"]] = (
                arguments.get(data["output_index"], "") + data["delta"]
            )
    assert not open_items and not parts, "every item and part that opened closed"
    final = events[-1][1]["response"]
    assert final["output"] == [done[i] for i in range(len(done))]
    for index, item in done.items():
        if item["type"] == "function_call":
            assert arguments.get(index, "") == item["arguments"]
    whole = responses_answer(final)
    assert whole.text == text
    return whole


# -- Messages -------------------------------------------------------------------------------


def messages_body(model: str, ask: Ask, stream: bool) -> Json:
    content: Any = ask.text
    if ask.image:
        image = {
            "type": "image",
            "source": {"type": "base64", "media_type": "image/png", "data": PNG},
        }
        content = [image, {"type": "text", "text": ask.text}]
    messages: list[Json] = [{"role": "user", "content": content}]
    if ask.calls:
        uses = [
            {"type": "tool_use", "id": c.id, "name": c.name, "input": c.args} for c in ask.calls
        ]
        results = [
            {"type": "tool_result", "tool_use_id": c.id, "content": result}
            for c, result in zip(ask.calls, ask.results, strict=True)
        ]
        messages += [{"role": "assistant", "content": uses}, {"role": "user", "content": results}]
    body: Json = {"model": model, "max_tokens": 300, "messages": messages}
    tools: list[Json] = []
    if ask.tools:
        tools += [{"name": name, "input_schema": schema} for name, schema in TOOLS]
    if ask.server_tool:
        tools.append({"type": "web_search_20250305", "name": "web_search", "max_uses": 1})
    if tools:
        body["tools"] = tools
    if ask.schema:
        body["output_config"] = {"format": {"type": "json_schema", "schema": SCHEMA}}
    if stream:
        body["stream"] = True
    return body


STOPS = {"end_turn": "stop", "tool_use": "tool_calls", "max_tokens": "length"}


def messages_answer(body: Json) -> Answer:
    assert body["type"] == "message" and body["role"] == "assistant"
    text = "".join(b["text"] for b in body["content"] if b["type"] == "text")
    calls = [
        Call(b["id"], b["name"], b["input"]) for b in body["content"] if b["type"] == "tool_use"
    ]
    usage = body["usage"]
    return Answer(
        text, calls, STOPS[body["stop_reason"]], (usage["input_tokens"], usage["output_tokens"])
    )


def messages_stream(raw: str) -> Answer:
    events = [(kind, data) for kind, data in sse(raw) if kind != "ping"]
    kinds = [kind for kind, _ in events]
    assert kinds[0] == "message_start" and kinds[-2:] == ["message_delta", "message_stop"]
    assert kinds.count("message_start") == kinds.count("message_stop") == 1
    usage = dict(events[0][1]["message"]["usage"])
    blocks: list[Json] = []
    pieces: dict[int, str] = {}
    open_block: int | None = None
    for kind, data in events[1:-2]:
        if kind == "content_block_start":
            assert open_block is None and data["index"] == len(blocks), (
                "one block at a time, in order"
            )
            open_block = data["index"]
            blocks.append(dict(data["content_block"]))
        elif kind == "content_block_delta":
            assert data["index"] == open_block
            delta = data["delta"]
            if delta["type"] == "text_delta":
                blocks[open_block]["text"] += delta["text"]
            elif delta["type"] == "input_json_delta":
                pieces[open_block] = pieces.get(open_block, "") + delta["partial_json"]
        else:
            assert kind == "content_block_stop" and data["index"] == open_block
            open_block = None
    assert open_block is None, "every block that opened closed"
    for index, piece in pieces.items():
        blocks[index]["input"] = json.loads(piece) if piece else {}
    final = events[-2][1]
    usage.update(final["usage"])
    message = {"type": "message", "role": "assistant", "content": blocks}
    return messages_answer(
        {**message, "stop_reason": final["delta"]["stop_reason"], "usage": usage}
    )


DIALECTS = {
    "chat": ("/v1/chat/completions", chat_body, chat_answer, chat_stream),
    "responses": ("/v1/responses", responses_body, responses_answer, responses_stream),
    "messages": ("/v1/messages", messages_body, messages_answer, messages_stream),
}
