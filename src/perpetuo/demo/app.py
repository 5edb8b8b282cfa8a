"""The demo provider as an OpenAI-compatible HTTP server (an ASGI app).

The gateway runs it in its own process, on a loopback port of its own, for `type: demo`
providers; `perpetuo demo-upstream --port P` runs it alone, for testing applications.
It accepts any API key: it is a demo, and it never leaves the machine.
"""

from __future__ import annotations

from typing import Any

import msgspec

from perpetuo.demo import answers

Json = dict[str, Any]
_encode = msgspec.json.Encoder().encode
_JSON = [(b"content-type", b"application/json"), (b"x-perpetuo-demo", b"true")]
_SSE = [(b"content-type", b"text/event-stream"), (b"x-perpetuo-demo", b"true")]
MAX_BODY = 16 * 1024 * 1024


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    path, method = scope["path"].removeprefix("/v1"), scope["method"]
    if method == "GET" and path == "/models":
        await _json(send, 200, answers.models())
        return
    if method != "POST" or path not in ("/chat/completions", "/embeddings"):
        await _error(send, 404, f"Unknown route: {method} {scope['path']}")
        return
    body = await _body(receive)
    try:
        request = msgspec.json.decode(body) if body is not None else None
    except (msgspec.DecodeError, UnicodeDecodeError):
        request = None
    if not isinstance(request, dict):
        await _error(send, 400, "The request body must be a JSON object of at most 16 MiB.")
        return
    if path == "/embeddings":
        await _json(send, 200, answers.embeddings(request))
    elif request.get("stream") is True:
        await send({"type": "http.response.start", "status": 200, "headers": _SSE})
        events = b"".join(b"data: " + _encode(c) + b"\n\n" for c in answers.chunks(request))
        await send({"type": "http.response.body", "body": events + b"data: [DONE]\n\n"})
    else:
        await _json(send, 200, answers.completion(request))


async def _body(receive: Any) -> bytes | None:
    pieces, size = [], 0
    while True:
        message = await receive()
        piece = message.get("body", b"")
        size += len(piece)
        if size > MAX_BODY:
            return None
        pieces.append(piece)
        if not message.get("more_body"):
            return b"".join(pieces)


async def _json(send: Any, status: int, data: Json) -> None:
    await send({"type": "http.response.start", "status": status, "headers": _JSON})
    await send({"type": "http.response.body", "body": _encode(data)})


async def _error(send: Any, status: int, message: str) -> None:
    error = {"message": message, "type": "invalid_request_error", "param": None, "code": None}
    await _json(send, status, {"error": error})
