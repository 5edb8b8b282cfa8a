"""chat.completion.chunk stream -> Responses stream events, chunk by chunk.

The documented sequence: response.created, response.in_progress, then for each output item
output_item.added, its part and delta events, output_item.done; finally exactly one of
response.completed / response.incomplete (the whole object, as `encode` would return it) or,
on failure, `error` then response.failed. Every event carries a strictly increasing
sequence_number. Reasoning and message items close when the next item opens; tool calls
stay open until the end, so parallel calls whose deltas interleave each keep their item.

An event never changes once returned: the events that show an item or part still growing
(`*.added`) carry a copy of it as it stands; done events and the final response show it
finished, when it no longer changes, and share it. Growing text is kept as a list of pieces
and joined when its part or item closes (appending to a string copies it every time).
"""

from __future__ import annotations

import time
from typing import Any

from perpetuo.api.dialects.base import DialectRequest
from perpetuo.api.dialects.openai_responses import errors
from perpetuo.api.dialects.openai_responses.response import (
    INCOMPLETE_REASONS,
    item_id,
    message_item,
    new_response_id,
    output_text,
    response_object,
    summary_item,
    wants_summary,
)
from perpetuo.schema.errors import GatewayError
from perpetuo.schema.reasoning import FOREIGN_KINDS, as_reasoning_item
from perpetuo.schema.usage import Usage

Json = dict[str, Any]


class StreamEncoder:
    def __init__(self, model: str, request: DialectRequest, response_id: str | None = None) -> None:
        self.model = model
        self.request = request
        self.id = response_id or new_response_id()
        self.summarize = wants_summary(request)
        self.created_at = int(time.time())
        self.service_tier: Any = None
        self.usage: Usage | None = None  # from a usage chunk, when finish gets none
        self.finish_reason: str | None = None
        self.output: list[Json] = []  # every item opened, by output_index, as it stands
        self._seq = 0
        self._started = False
        self._ended = False
        self._reasoning: int | None = None  # output_index of the open reasoning item
        self._message: int | None = None
        self._parts: dict[str, int] = {}  # open message's part kind -> content_index
        self._calls: dict[int, int] = {}  # chat tool call index -> output_index
        # Text of what is open, joined when it closes: the open message's parts (by kind),
        # the open reasoning summary, and each call's arguments (by output_index).
        self._part_text: dict[str, list[str]] = {}
        self._summary_text: list[str] = []
        self._call_text: dict[int, list[str]] = {}

    # -- input ------------------------------------------------------------------------------

    def feed(self, chunk: Json) -> list[Json]:
        if self._ended:
            return []
        events = [] if self._started else self._start(chunk)
        if isinstance(tier := chunk.get("service_tier"), str):
            self.service_tier = tier
        if "usage" in chunk and (usage := Usage.from_openai(chunk["usage"])) is not None:
            self.usage = usage
        choices = chunk.get("choices")
        choice = choices[0] if isinstance(choices, list) and choices else None
        if not isinstance(choice, dict):
            return events  # a usage-only chunk
        delta = choice.get("delta")
        if not isinstance(delta, dict):
            delta = {}
        text = delta.get("content")
        if len(delta) == 1 and isinstance(text, str) and choice.get("logprobs") is None:
            if text and "output_text" in self._parts:  # most chunks: more text for the open part
                events.append(self._more_text(text))
            elif text:
                events += self._text_delta("output_text", text, None)
            if isinstance(reason := choice.get("finish_reason"), str):
                self.finish_reason = reason
            return events
        thought = delta.get("reasoning_content")
        if isinstance(thought, str) and thought and self.summarize:
            events += self._summary_delta(thought)
        for block in delta.get("thinking_blocks") or []:
            if isinstance(block, dict) and block.get("type") == "reasoning":
                events += self._reasoning_block(block)
            elif isinstance(block, dict) and block.get("type") in FOREIGN_KINDS:
                rs_id = item_id("rs", self.id, len(self.output))
                events += self._reasoning_block(as_reasoning_item(block, rs_id, self.summarize))
        if isinstance(text, str) and text:
            events += self._text_delta("output_text", text, choice.get("logprobs"))
        if isinstance(refusal := delta.get("refusal"), str) and refusal:
            events += self._text_delta("refusal", refusal, None)
        for call in delta.get("tool_calls") or []:
            if isinstance(call, dict):
                events += self._call_delta(call)
        if isinstance(reason := choice.get("finish_reason"), str):
            self.finish_reason = reason
        return events

    def finish(self, usage: Usage | None = None, error: GatewayError | None = None) -> list[Json]:
        """Close every open item and end the stream; later calls return nothing."""
        if self._ended:
            return []
        events = self._start({})
        self._ended = True
        if error is None and not self._calls and all(i["type"] != "message" for i in self.output):
            events += self._part("output_text")[0]  # an empty answer is an empty message
        incomplete = error is None and self.finish_reason in INCOMPLETE_REASONS
        closing = "incomplete" if error is not None or incomplete else "completed"
        events += self._close_reasoning()
        events += self._close_message(closing)
        for index in sorted(self._calls.values()):
            events += self._close_call(index, closing)
        final = self._response(
            "failed" if error else closing, usage or self.usage, output=self.output
        )
        if error is not None:
            return events + errors.stream_events(error, final, sequence_number=self._seq)
        kind = "response.incomplete" if incomplete else "response.completed"
        return [*events, self._event(kind, response=final)]

    # -- items ------------------------------------------------------------------------------

    def _summary_delta(self, text: str) -> list[Json]:
        events = []
        if self._reasoning is None:
            events += self._close_message("completed")
            index = self._open(summary_item(item_id("rs", self.id, len(self.output)), ""))
            self.output[index]["summary"] = []
            events += self._added(index)
            self._reasoning = index
            part = {"type": "summary_text", "text": ""}
            events.append(self._item_event("reasoning_summary_part.added", index, part=part))
            self.output[index]["summary"].append(dict(part))  # its text is set on closing
            self._summary_text = []
        index = self._reasoning
        self._summary_text.append(text)
        events.append(self._item_event("reasoning_summary_text.delta", index, delta=text))
        return events

    def _reasoning_block(self, block: Json) -> list[Json]:
        """A complete OpenAI reasoning item (with its encrypted_content) from upstream."""
        if self._reasoning is not None:  # its summary has streamed: the item keeps its id
            return self._close_reasoning({**block, "id": self.output[self._reasoning]["id"]})
        events = self._close_message("completed")
        index = self._open({**block, "summary": []})
        events += self._added(index)
        for k, entry in enumerate(block.get("summary") or []):
            text = entry.get("text", "") if isinstance(entry, dict) else ""
            part = {"type": "summary_text", "text": ""}
            events.append(self._item_event("reasoning_summary_part.added", index, k, part=part))
            events.append(self._item_event("reasoning_summary_text.delta", index, k, delta=text))
            events.append(self._item_event("reasoning_summary_text.done", index, k, text=text))
            part = {"type": "summary_text", "text": text}
            events.append(self._item_event("reasoning_summary_part.done", index, k, part=part))
        self.output[index] = dict(block)
        return [*events, self._done(index)]

    def _close_reasoning(self, final: Json | None = None) -> list[Json]:
        """Close the reasoning item whose summary streamed; `final` replaces it when
        upstream sent the complete item."""
        index = self._reasoning
        if index is None:
            return []
        self._reasoning = None
        part = self.output[index]["summary"][0]
        part["text"] = "".join(self._summary_text)
        events = [
            self._item_event("reasoning_summary_text.done", index, text=part["text"]),
            self._item_event("reasoning_summary_part.done", index, part=part),
        ]
        if final is not None:
            self.output[index] = final
        return [*events, self._done(index)]

    def _text_delta(self, kind: str, text: str, logprobs: Any) -> list[Json]:
        events, part = self._part(kind)
        self._part_text[kind].append(text)
        if kind == "output_text":
            pieces = logprobs.get("content") if isinstance(logprobs, dict) else None
            pieces = pieces if isinstance(pieces, list) else []
            part["logprobs"].extend(pieces)
            events.append(self._part_event("output_text.delta", kind, delta=text, logprobs=pieces))
        else:
            events.append(self._part_event("refusal.delta", kind, delta=text))
        return events

    def _more_text(self, text: str) -> Json:
        """The output_text.delta of the open message's text part, built directly: what
        `_text_delta` makes for it, without its checks (this runs for nearly every chunk)."""
        index, position = self._message, self._parts["output_text"]
        assert index is not None
        self._part_text["output_text"].append(text)
        self._seq += 1
        return {
            "type": "response.output_text.delta",
            "sequence_number": self._seq - 1,
            "item_id": self.output[index]["id"],
            "output_index": index,
            "content_index": position,
            "delta": text,
            "logprobs": [],
        }

    def _part(self, kind: str) -> tuple[list[Json], Json]:
        """The open message's part of this kind, opening the message and part as needed."""
        events = []
        if self._message is None:
            events += self._close_reasoning()
            id_ = item_id("msg", self.id, len(self.output))
            self._message = self._open(message_item(id_, [], "in_progress"))
            events += self._added(self._message)
        content = self.output[self._message]["content"]
        if kind not in self._parts:
            part = output_text("") if kind == "output_text" else {"type": "refusal", "refusal": ""}
            self._parts[kind] = len(content)
            self._part_text[kind] = []
            content.append(part)
            events.append(self._part_event("content_part.added", kind, part=_snapshot(part)))
        return events, content[self._parts[kind]]

    def _close_message(self, status: str) -> list[Json]:
        if self._message is None:
            return []
        events = []
        for kind, position in self._parts.items():
            part = self.output[self._message]["content"][position]
            part["text" if kind == "output_text" else "refusal"] = "".join(self._part_text[kind])
            if kind == "output_text":
                done = {"text": part["text"], "logprobs": part["logprobs"]}
                events.append(self._part_event("output_text.done", kind, **done))
            else:
                events.append(self._part_event("refusal.done", kind, refusal=part["refusal"]))
            events.append(self._part_event("content_part.done", kind, part=part))
        index, self._message, self._parts, self._part_text = self._message, None, {}, {}
        item = self.output[index]
        item["status"] = status
        return [*events, self._done(index)]

    def _call_delta(self, call: Json) -> list[Json]:
        position = call.get("index") if type(call.get("index")) is int else 0
        custom = call.get("type") == "custom" or isinstance(call.get("custom"), dict)
        body = call.get("custom" if custom else "function")
        body = body if isinstance(body, dict) else {}
        events = []
        if position not in self._calls:
            events += self._close_reasoning() + self._close_message("completed")
            index = len(self.output)
            call_id = call.get("id") or item_id("call", self.id, index)
            name = body.get("name") or ""
            if custom:
                item = {"id": item_id("ctc", self.id, index), "type": "custom_tool_call"}
                item.update(status="in_progress", call_id=call_id, name=name, input="")
            else:
                item = {"id": item_id("fc", self.id, index), "type": "function_call"}
                item.update(status="in_progress", arguments="", call_id=call_id, name=name)
            self._calls[position] = self._open(item)
            self._call_text[index] = []
            events += self._added(index)
        index = self._calls[position]
        piece = body.get("input" if custom else "arguments")
        if isinstance(piece, str) and piece:
            self._call_text[index].append(piece)
            if self.output[index]["type"] == "custom_tool_call":
                kind = "custom_tool_call_input.delta"
            else:
                kind = "function_call_arguments.delta"
            events.append(self._item_event(kind, index, None, delta=piece))
        return events

    def _close_call(self, index: int, status: str) -> list[Json]:
        item = self.output[index]
        item["status"] = status
        if item["type"] == "custom_tool_call":
            kind, field = "custom_tool_call_input.done", "input"
        else:
            kind, field = "function_call_arguments.done", "arguments"
        item[field] = "".join(self._call_text.pop(index))
        done = self._item_event(kind, index, None, **{field: item[field]})
        return [done, self._done(index)]

    # -- plumbing ---------------------------------------------------------------------------

    def _start(self, chunk: Json) -> list[Json]:
        if self._started:
            return []
        self._started = True
        if type(created := chunk.get("created")) is int:
            self.created_at = created
        shell = self._response("in_progress", None, output=[])
        return [
            self._event("response.created", response=shell),
            self._event("response.in_progress", response={**shell, "output": []}),
        ]

    def _response(self, status: str, usage: Usage | None, *, output: list[Json]) -> Json:
        return response_object(
            self.request,
            model=self.model,
            response_id=self.id,
            created_at=self.created_at,
            status=status,
            output=list(output),  # items are finished when a response object is made
            usage=usage,
            finish=self.finish_reason,
            service_tier=self.service_tier,
        )

    def _open(self, item: Json) -> int:
        self.output.append(item)
        return len(self.output) - 1

    def _added(self, index: int) -> list[Json]:
        item = _snapshot(self.output[index])
        return [self._event("response.output_item.added", output_index=index, item=item)]

    def _done(self, index: int) -> Json:
        item = self.output[index]
        return self._event("response.output_item.done", output_index=index, item=item)

    def _item_event(
        self, name: str, index: int, summary_index: int | None = 0, **fields: Any
    ) -> Json:
        extra = {} if summary_index is None else {"summary_index": summary_index}
        item = self.output[index]["id"]
        return self._event(f"response.{name}", item_id=item, output_index=index, **extra, **fields)

    def _part_event(self, name: str, kind: str, **fields: Any) -> Json:
        index = self._message
        assert index is not None
        return self._event(
            f"response.{name}",
            item_id=self.output[index]["id"],
            output_index=index,
            content_index=self._parts[kind],
            **fields,
        )

    def _event(self, kind: str, **fields: Any) -> Json:
        event = {"type": kind, "sequence_number": self._seq, **fields}
        self._seq += 1
        return event


def _snapshot(value: Any) -> Any:
    """A copy of JSON data as it stands (dicts and lists copied, strings and numbers shared):
    much cheaper than copy.deepcopy, which a stream would otherwise pay on every item."""
    if isinstance(value, dict):
        return {key: _snapshot(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_snapshot(item) for item in value]
    return value
