"""A chat stream as the client receives it, once the router has committed to a deployment.

It shapes chunks to what the client asked for (usage only when requested, always in a final
usage chunk), meters usage even when the stream breaks, and ends a failed stream with an
OpenAI-format error event.
"""

from __future__ import annotations

from collections import deque
from collections.abc import AsyncIterator
from typing import Any

from perpetuo.guardrails.engine import GuardrailBlocked
from perpetuo.metering.recorder import cost_micros
from perpetuo.metering.tokens import estimate_usage
from perpetuo.pipeline import guardrails
from perpetuo.pipeline.context import RequestContext
from perpetuo.pipeline.shaping import OutputShaper
from perpetuo.routing.classify import from_transport, to_client_error
from perpetuo.routing.router import OpenStream
from perpetuo.routing.table import Deployment
from perpetuo.schema.chat import ChatCompletionRequest
from perpetuo.schema.errors import UpstreamError
from perpetuo.schema.usage import Usage
from perpetuo.transport.errors import TransportError
from perpetuo.transport.sse import SSEEvent

Json = dict[str, Any]


class ChatStream:
    def __init__(
        self,
        ctx: RequestContext,
        opened: OpenStream,
        request: ChatCompletionRequest,
        shaper: OutputShaper | None = None,
    ):
        self.ctx = ctx
        self.opened = opened
        self.request = request
        self.shaper = shaper  # output guardrails, masking, cache copy: None when all are off
        self.failed = False

    @property
    def deployment(self) -> Deployment:
        return self.opened.deployment

    @property
    def raw_events(self) -> deque[SSEEvent] | None:
        """The provider's events as they arrived (native lane), for forwarding as they are."""
        return self.opened.raw

    def more_ready(self) -> bool:
        """True when the next chunk is already available: the caller may hold its write."""
        return self.opened.more_ready()

    def on_close(self, disconnected: bool) -> None:
        """After the response ended. If the client left before `chunks()` even started,
        release the deployment and the upstream connection here (a no-op otherwise)."""
        if disconnected and self.ctx.error_code is None:
            self.ctx.status, self.ctx.error_code = 499, "client_disconnected"
        self.opened.finish()
        self.opened.response.close()

    async def chunks(self) -> AsyncIterator[Json]:
        """Chunks for the client; a final `{"error": ...}` object if the upstream failed."""
        ctx, opened, shaper = self.ctx, self.opened, self.shaper
        include_usage = self.request.wants_stream_usage
        usage: Usage | None = None
        usage_sent = False
        completion_chars: list[str] = []
        last: Json = opened.first
        failure: UpstreamError | None = None
        completed = False
        ctx.mark_first_token()
        try:
            chunk: Json | None = opened.first
            while chunk is not None:
                last = chunk
                reported = chunk.get("usage")
                if reported:
                    usage = Usage.from_openai(reported) or usage
                choices = chunk.get("choices")
                if choices:
                    _collect_text(choices, completion_chars)
                    if not include_usage:
                        chunk.pop("usage", None)
                    if shaper is None:
                        yield chunk
                    else:
                        for shaped in shaper.feed(chunk):
                            yield shaped
                elif reported is not None:  # the usage-only chunk
                    if include_usage:
                        usage_sent = True
                        yield chunk
                else:
                    yield chunk  # e.g. Azure's prompt-filter chunk: pass on untouched
                chunk = await anext(opened.rest, None)
            if shaper is not None:
                for shaped in shaper.flush(last):
                    yield shaped
            completed = True
        except GuardrailBlocked as exc:
            self.failed = True
            yield guardrails.stream_blocked(ctx, exc)
        except (UpstreamError, TransportError) as exc:
            error = exc if isinstance(exc, UpstreamError) else from_transport(exc)
            if error.provider is None:  # the client's error names who failed
                error.provider = opened.deployment.provider
                error.endpoint = opened.deployment.target.base_url.origin.host_header
            failure = error
            self.failed = True
            client_error = to_client_error(error)
            ctx.error_code = str(client_error.code)
            yield {
                "error": {
                    "message": client_error.message,
                    "type": str(client_error.type),
                    "param": client_error.param,
                    "code": str(client_error.code),
                }
            }
        finally:
            if usage is None:
                usage = estimate_usage(self.request, "".join(completion_chars))
            ctx.usage = usage
            ctx.cost_micros += cost_micros(opened.deployment, usage)
            # Health: a mid-stream failure counts against the deployment; a client that
            # left (neither completed nor failed) says nothing about it.
            opened.finish(failure, completed=completed, total_tokens=usage.total_tokens)
            await opened.aclose()
        if shaper is not None:
            guardrails.note(ctx)
            if completed:
                shaper.completed(usage)
        if include_usage and not usage_sent and not self.failed:
            yield {
                "id": last.get("id"),
                "object": "chat.completion.chunk",
                "created": last.get("created"),
                "model": last.get("model"),
                "choices": [],
                "usage": usage.to_openai(),
            }


def _collect_text(choices: list[Any], sink: list[str]) -> None:
    for choice in choices:
        delta = choice.get("delta") if isinstance(choice, dict) else None
        if not delta:
            continue
        content = delta.get("content")
        if isinstance(content, str):
            sink.append(content)
        for call in delta.get("tool_calls") or ():
            arguments = (call.get("function") or {}).get("arguments")
            if isinstance(arguments, str):
                sink.append(arguments)
