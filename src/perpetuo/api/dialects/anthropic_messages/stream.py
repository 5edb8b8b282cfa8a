"""Chat chunks (the internal stream) -> Anthropic Messages stream events, one chunk at a time.

The events are Anthropic's: message_start, then per content block content_block_start,
content_block_delta (text_delta, input_json_delta, thinking_delta, signature_delta) and
content_block_stop, then message_delta (stop reason, usage) and message_stop; or, on a
failure, one `error` event and nothing after it. As on Anthropic's own streams, one block is
open at a time and indexes count up from 0, so the events assemble into what response.py
gives for the same answer.

Three things the chunks do not line up with:
- Reasoning text arrives before its signature (a thinking_blocks delta). A thinking block is
  given only once its signature is there, as in complete answers; unsigned reasoning (from
  providers other than Anthropic) is left out.
- Tool calls are identified by `tool_calls[i].index`, and a provider may interleave the
  pieces of parallel calls. The first call streams as it comes; a call that starts while
  another is still incomplete JSON waits, with its pieces kept, until that one is complete
  (tool calls are acted on after message_stop, so waiting costs the client nothing).
- The usage arrives last, in a usage-only chunk (`choices: []`): message_start says 0 input
  tokens unless a chunk told more by then, and message_delta carries the real counts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import msgspec

from perpetuo.api.dialects.anthropic_messages.errors import stream_event
from perpetuo.api.dialects.anthropic_messages.response import (
    message_id,
    stop_of,
    thinking_blocks,
    tool_use,
    usage_of,
)
from perpetuo.api.dialects.base import DialectRequest
from perpetuo.schema.errors import GatewayError
from perpetuo.schema.usage import Usage

Json = dict[str, Any]


@dataclass(slots=True)
class _Call:
    """One tool call of the answer, as its pieces arrive."""

    id: Any = None
    name: str = ""
    pieces: list[str] = field(default_factory=list)
    index: int | None = None  # its content block, once opened
    closed: bool = False

    def is_complete(self) -> bool:
        try:
            return isinstance(msgspec.json.decode("".join(self.pieces)), dict)
        except (msgspec.DecodeError, UnicodeDecodeError):
            return False


class StreamEncoder:
    """Feed each chat chunk to `feed`, then call `finish` once; each returns the events to
    send, in order (an event's "type" is its SSE event name)."""

    def __init__(self, model: str, request: DialectRequest) -> None:
        self.model = model
        self.request = request
        self._started = False
        self._done = False
        self._next_index = 0
        self._text_index: int | None = None  # the open text block
        self._tool: _Call | None = None  # the open tool_use block
        self._calls: dict[int, _Call] = {}  # chat tool-call index -> call
        self._waiting: list[_Call] = []  # calls not opened yet, in order of arrival
        self._reasoning: list[str] = []  # reasoning text waiting for its signature
        self._finish: Json = {}  # the choice fields that say how the answer ended
        self._saw_text = False
        self._saw_refusal = False
        self._usage: Usage | None = None

    # --- the interface ---------------------------------------------------------------------

    def feed(self, chunk: Json) -> list[Json]:
        if self._done:
            return []
        events: list[Json] = []
        if "usage" in chunk and (usage := Usage.from_openai(chunk["usage"])) is not None:
            self._usage = usage
        if not self._started:
            events.append(self._message_start(chunk.get("id")))
        for choice in chunk.get("choices") or ():
            if isinstance(choice, dict) and choice.get("index", 0) == 0:
                self._choice(choice, events)
        return events

    def finish(self, usage: Usage | None, error: GatewayError | None) -> list[Json]:
        """The closing events: every open block closed, message_delta and message_stop; or,
        for a failure, the error event alone (Anthropic's streams end with it)."""
        if self._done:
            return []
        self._done = True
        if error is not None:
            return [stream_event(error)]
        events: list[Json] = []
        if not self._started:
            events.append(self._message_start(None))
        self._reasoning.clear()
        self._close_blocks(events)
        refused = self._saw_refusal and not self._saw_text
        reason, sequence = stop_of(
            self._finish, self.request, made_tool_calls=bool(self._calls), refused=refused
        )
        events.append(
            {
                "type": "message_delta",
                "delta": {"stop_reason": reason, "stop_sequence": sequence},
                "usage": usage_of(usage or self._usage),
            }
        )
        events.append({"type": "message_stop"})
        return events

    # --- chunks ----------------------------------------------------------------------------

    def _message_start(self, chat_id: Any) -> Json:
        self._started = True
        usage = usage_of(self._usage)
        usage["output_tokens"] = 0
        message = {
            "id": message_id(chat_id),
            "type": "message",
            "role": "assistant",
            "model": self.model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": usage,
        }
        return {"type": "message_start", "message": message}

    def _choice(self, choice: Json, events: list[Json]) -> None:
        delta = choice.get("delta")
        if not isinstance(delta, dict):
            delta = {}
        text = delta.get("content")
        if len(delta) == 1 and isinstance(text, str) and self._text_index is not None:
            if text:  # most chunks: more text for the open text block, as _text would give it
                self._saw_text = True
                self._reasoning.clear()
                more = {"type": "text_delta", "text": text}
                events.append(
                    {"type": "content_block_delta", "index": self._text_index, "delta": more}
                )
            if choice.get("finish_reason") is not None:
                self._finish = choice
            return
        reasoning = delta.get("reasoning_content")
        if isinstance(reasoning, str) and reasoning:
            self._reasoning.append(reasoning)
        if "thinking_blocks" in delta:
            for block in thinking_blocks(delta["thinking_blocks"]):
                self._thinking(block, events)
        for name in ("content", "refusal"):
            text = delta.get(name)
            if isinstance(text, str) and text:
                self._saw_text = self._saw_text or name == "content"
                self._saw_refusal = self._saw_refusal or name == "refusal"
                self._text(text, events)
        calls = delta.get("tool_calls")
        for position, call in enumerate(calls if isinstance(calls, list) else ()):
            if isinstance(call, dict):
                self._tool_call(call, position, events)
        if choice.get("finish_reason") is not None:
            self._finish = choice

    def _thinking(self, block: Json, events: list[Json]) -> None:
        self._close_blocks(events)
        if block["type"] == "thinking":
            # Anthropic's own thinking: its text came as reasoning pieces before the signature.
            thought = block["thinking"] or "".join(self._reasoning)
            index = self._open({"type": "thinking", "thinking": "", "signature": ""}, events)
            if thought:
                self._delta(index, {"type": "thinking_delta", "thinking": thought}, events)
            self._delta(index, {"type": "signature_delta", "signature": block["signature"]}, events)
        else:
            index = self._open(block, events)  # redacted_thinking arrives whole
        events.append({"type": "content_block_stop", "index": index})
        self._reasoning.clear()

    def _text(self, text: str, events: list[Json]) -> None:
        self._reasoning.clear()  # unsigned reasoning: left out, as in complete answers
        if self._text_index is None:
            self._close_blocks(events)
            self._text_index = self._open({"type": "text", "text": ""}, events)
        self._delta(self._text_index, {"type": "text_delta", "text": text}, events)

    def _tool_call(self, piece: Json, position: int, events: list[Json]) -> None:
        number = piece.get("index")
        number = number if type(number) is int else position
        function = piece.get("function") if isinstance(piece.get("function"), dict) else {}
        call = self._calls.get(number)
        if call is None:
            call = self._calls[number] = _Call()
            self._waiting.append(call)
        if call.id is None and isinstance(piece.get("id"), str):
            call.id = piece["id"]
        if not call.name and isinstance(function.get("name"), str):
            call.name = function["name"]
        arguments = function.get("arguments")
        if isinstance(arguments, str) and arguments and not call.closed:
            # A piece for a call already closed could only follow complete JSON: dropped.
            call.pieces.append(arguments)
            if call is self._tool:
                self._arguments(call, arguments, events)
        self._advance(events)

    # --- blocks ----------------------------------------------------------------------------

    def _advance(self, events: list[Json]) -> None:
        """Open waiting tool calls, in order, while the one streaming has complete input."""
        while self._waiting:
            if self._tool is not None and not self._tool.is_complete():
                return
            if not self._waiting[0].name:
                return  # its name has not arrived yet
            self._close_blocks(events, flush=False)
            self._open_call(self._waiting.pop(0), events)

    def _open_call(self, call: _Call, events: list[Json]) -> None:
        block = tool_use(call.id, call.name, None)  # input {} as Anthropic opens it
        call.id = block["id"]
        call.index = self._open(block, events)
        self._tool = call
        if call.pieces:
            self._arguments(call, "".join(call.pieces), events)

    def _arguments(self, call: _Call, piece: str, events: list[Json]) -> None:
        assert call.index is not None
        self._delta(call.index, {"type": "input_json_delta", "partial_json": piece}, events)

    def _close_blocks(self, events: list[Json], *, flush: bool = True) -> None:
        """Close the open block; with `flush`, also give every waiting tool call, whole."""
        if self._text_index is not None:
            events.append({"type": "content_block_stop", "index": self._text_index})
            self._text_index = None
        if self._tool is not None:
            events.append({"type": "content_block_stop", "index": self._tool.index})
            self._tool.closed = True
            self._tool = None
        while flush and self._waiting:
            self._open_call(self._waiting.pop(0), events)
            self._close_blocks(events, flush=False)

    def _open(self, block: Json, events: list[Json]) -> int:
        index = self._next_index
        self._next_index += 1
        events.append({"type": "content_block_start", "index": index, "content_block": block})
        return index

    @staticmethod
    def _delta(index: int, delta: Json, events: list[Json]) -> None:
        events.append({"type": "content_block_delta", "index": index, "delta": delta})
