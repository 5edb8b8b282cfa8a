"""A chat stream answering a message posted to a chat session: every chunk names the session,
and the answer, assembled from the chunks the client received, goes into the session's
history once the stream completes (not when it failed or the client left)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

Json = dict[str, Any]


class AnswerCollector:
    """The assistant message of choice 0, rebuilt from chat chunks: text, refusal, tool calls,
    reasoning text and thinking blocks (Anthropic's signed blocks arrive after their text,
    as a block with empty `thinking`: the text gathered since is put back into it)."""

    def __init__(self) -> None:
        self.pieces: list[str] = []
        self.refusal: list[str] = []
        self.reasoning: list[str] = []
        self.thought: list[str] = []  # reasoning since the last thinking block
        self.blocks: list[Json] = []
        self.calls: dict[int, Json] = {}
        self.finish: str | None = None

    def add(self, chunk: Json) -> None:
        for choice in chunk.get("choices") or ():
            if not isinstance(choice, dict) or choice.get("index", 0) != 0:
                continue
            delta = choice.get("delta") or {}
            if isinstance(text := delta.get("content"), str):
                self.pieces.append(text)
            if isinstance(refusal := delta.get("refusal"), str):
                self.refusal.append(refusal)
            if isinstance(reasoning := delta.get("reasoning_content"), str):
                self.reasoning.append(reasoning)
                self.thought.append(reasoning)
            for block in delta.get("thinking_blocks") or ():
                if isinstance(block, dict):
                    self._block(block)
            for position, call in enumerate(delta.get("tool_calls") or ()):
                if isinstance(call, dict):
                    self._call(call, position)
            if choice.get("finish_reason"):
                self.finish = choice["finish_reason"]

    def _block(self, block: Json) -> None:
        if block.get("type") == "thinking" and not block.get("thinking"):
            block = {**block, "thinking": "".join(self.thought)}
        self.blocks.append(block)
        self.thought.clear()

    def _call(self, call: Json, position: int) -> None:
        index = call.get("index")
        slot = self.calls.setdefault(
            index if type(index) is int else position,
            {"id": "", "type": "function", "function": {"name": "", "arguments": ""}},
        )
        if call.get("id"):
            slot["id"] = call["id"]
        function = call.get("function") or {}
        slot["function"]["name"] += function.get("name") or ""
        slot["function"]["arguments"] += function.get("arguments") or ""

    def message(self) -> Json | None:
        """The answer, or None when the stream did not finish a choice."""
        if self.finish is None:
            return None
        message: Json = {"role": "assistant", "content": "".join(self.pieces) or None}
        if self.calls:
            message["tool_calls"] = [self.calls[i] for i in sorted(self.calls)]
        if self.refusal:
            message["refusal"] = "".join(self.refusal)
        if self.reasoning:
            message["reasoning_content"] = "".join(self.reasoning)
        if self.blocks:
            message["thinking_blocks"] = self.blocks
        return message


class SessionStream:
    """Wraps a ChatStream or CachedStream (or the body logger's wrapper of one)."""

    def __init__(
        self,
        stream: Any,
        session_id: str,
        answered: Callable[[Json], None],
    ) -> None:
        self._stream = stream
        self._session_id = session_id
        self._answered = answered

    def __getattr__(self, name: str) -> Any:  # deployment, failed, more_ready, on_close
        return getattr(self._stream, name)

    async def chunks(self) -> AsyncIterator[Json]:
        collector = AnswerCollector()
        inner = self._stream.chunks()
        completed = False
        try:
            async for chunk in inner:
                if "error" not in chunk:
                    chunk["session_id"] = self._session_id
                    collector.add(chunk)
                yield chunk
            completed = True
        finally:
            await inner.aclose()  # the stream's own ending (metering) runs first
        message = collector.message()
        if completed and message is not None and not self._stream.failed:
            self._answered(message)
