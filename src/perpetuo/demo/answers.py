"""What the demo provider answers: deterministic, OpenAI-shaped, and labelled as a demo.

No model is involved. The same request always gets the same answer: text that says it comes
from the demo, a call to an offered tool (arguments made from the tool's JSON Schema), a
JSON instance of a requested schema, or embeddings derived from a hash of the input.
"""

from __future__ import annotations

import hashlib
import math
import struct
import time
from typing import Any

import msgspec

Json = dict[str, Any]
MODEL = "perpetuo-demo"
LABEL = "[demo]"
_encode = msgspec.json.Encoder().encode


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(p.get("text", "") for p in content if isinstance(p, dict))
    return ""


def _tokens(text: str) -> int:
    return max(1, len(text.encode()) // 4)


def _example(schema: Any, depth: int = 0) -> Any:
    """A small valid instance of a JSON Schema (the common keywords)."""
    if not isinstance(schema, dict) or depth > 8:
        return None
    if "const" in schema:
        return schema["const"]
    if isinstance(schema.get("enum"), list) and schema["enum"]:
        return schema["enum"][0]
    for key in ("anyOf", "oneOf", "allOf"):
        if isinstance(schema.get(key), list) and schema[key]:
            return _example(schema[key][0], depth + 1)
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind == "object" or "properties" in schema:
        props = schema.get("properties") if isinstance(schema.get("properties"), dict) else {}
        return {name: _example(sub, depth + 1) for name, sub in props.items()}
    if kind == "array":
        return [_example(schema.get("items"), depth + 1)]
    if kind == "integer":
        return int(schema.get("minimum", 1))
    if kind == "number":
        return float(schema.get("minimum", 1.5))
    if kind == "boolean":
        return True
    if kind == "null":
        return None
    return "demo"


def reply(request: Json) -> tuple[str | None, list[Json], str]:
    """(content, tool calls, finish reason) for a chat request."""
    messages = request.get("messages") if isinstance(request.get("messages"), list) else []
    last = messages[-1] if messages and isinstance(messages[-1], dict) else {}
    tools = [t for t in request.get("tools") or [] if isinstance(t, dict)]
    choice = request.get("tool_choice")
    if last.get("role") == "tool":
        return f"{LABEL} The tool returned: {_text(last.get('content'))}", [], "stop"
    if tools and choice != "none":
        tool = tools[0]
        if isinstance(choice, dict):
            wanted = (choice.get("function") or {}).get("name")
            tool = next((t for t in tools if (t.get("function") or {}).get("name") == wanted), tool)
        function = tool.get("function") or {}
        arguments = _encode(_example(function.get("parameters") or {"type": "object"}) or {})
        call_id = "call_demo_" + hashlib.sha256(arguments).hexdigest()[:12]
        call = {
            "id": call_id,
            "type": "function",
            "function": {"name": function.get("name", "tool"), "arguments": arguments.decode()},
        }
        return None, [call], "tool_calls"
    fmt = request.get("response_format") if isinstance(request.get("response_format"), dict) else {}
    said = _text(last.get("content"))
    if fmt.get("type") == "json_schema":
        schema = (fmt.get("json_schema") or {}).get("schema") or {"type": "object"}
        return _encode(_example(schema)).decode(), [], "stop"
    if fmt.get("type") == "json_object":
        return _encode({"demo": True, "echo": said}).decode(), [], "stop"
    text = (
        f"{LABEL} Hello from Perpetuo's built-in demo provider. You said: {said!r}. "
        "Configure a real provider to get answers from a model."
    )
    return text, [], "stop"


def _usage(request: Json, completion: str) -> Json:
    prompt = _tokens(_encode(request.get("messages", [])).decode())
    done = _tokens(completion) if completion else 0
    return {"prompt_tokens": prompt, "completion_tokens": done, "total_tokens": prompt + done}


def completion(request: Json) -> Json:
    content, calls, finish = reply(request)
    message: Json = {"role": "assistant", "content": content, "refusal": None}
    if calls:
        message["tool_calls"] = calls
    produced = (content or "") + "".join(c["function"]["arguments"] for c in calls)
    return {
        "id": "chatcmpl-demo-" + hashlib.sha256(_encode(request)).hexdigest()[:16],
        "object": "chat.completion",
        "created": int(time.time()),
        "model": MODEL,
        "system_fingerprint": MODEL,
        "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish}],
        "usage": _usage(request, produced),
    }


def chunks(request: Json) -> list[Json]:
    """The same answer as a stream: the text word by word, each tool call in two pieces."""
    body = completion(request)
    message = body["choices"][0]["message"]
    base = {k: body[k] for k in ("id", "object", "created", "model", "system_fingerprint")}
    base["object"] = "chat.completion.chunk"

    def chunk(delta: Json, finish: str | None = None) -> Json:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        return {**base, "choices": [choice]}

    out = [chunk({"role": "assistant", "content": ""})]
    words = (message["content"] or "").split(" ")
    out += [chunk({"content": w if i == 0 else " " + w}) for i, w in enumerate(words) if w]
    for n, call in enumerate(message.get("tool_calls") or []):
        head = {**call, "index": n, "function": {"name": call["function"]["name"], "arguments": ""}}
        out.append(chunk({"tool_calls": [head]}))
        args = call["function"]["arguments"]
        out.append(chunk({"tool_calls": [{"index": n, "function": {"arguments": args}}]}))
    out.append(chunk({}, body["choices"][0]["finish_reason"]))
    out.append({**base, "choices": [], "usage": body["usage"]})
    return out


def embeddings(request: Json) -> Json:
    given = request.get("input")
    inputs = given if isinstance(given, list) else [given]
    dims = request.get("dimensions") if isinstance(request.get("dimensions"), int) else 256
    dims = max(1, min(dims, 4096))
    data = []
    for index, item in enumerate(inputs):
        vector = _vector(_encode(item), dims)
        data.append({"object": "embedding", "index": index, "embedding": vector})
    tokens = sum(_tokens(_encode(i).decode()) for i in inputs)
    return {
        "object": "list",
        "data": data,
        "model": MODEL,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }


def _vector(seed: bytes, dims: int) -> list[float]:
    """A unit vector from repeated hashing: the same text, the same vector."""
    values: list[float] = []
    block = seed
    while len(values) < dims:
        block = hashlib.sha256(block).digest()
        values.extend(v / 2**31 - 1.0 for v in struct.unpack("<8I", block))
    values = values[:dims]
    norm = math.sqrt(sum(v * v for v in values)) or 1.0
    return [round(v / norm, 6) for v in values]


def models() -> Json:
    return {
        "object": "list",
        "data": [{"id": MODEL, "object": "model", "created": 0, "owned_by": "perpetuo-demo"}],
    }
