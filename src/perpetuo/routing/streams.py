"""What the router hands back: a complete answer, or a stream that has started."""

from __future__ import annotations

from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass

from perpetuo.providers.base import EventSource, Json
from perpetuo.providers.upstream_errors import bounded_wait
from perpetuo.routing.health import RoutingState
from perpetuo.routing.job import RouteJob
from perpetuo.routing.table import Deployment
from perpetuo.routing.trace import Attempt
from perpetuo.schema.errors import UpstreamError
from perpetuo.transport.client import UpstreamResponse
from perpetuo.transport.sse import SSEEvent


@dataclass(slots=True)
class Served:
    """A complete (non-streamed) answer and who gave it."""

    body: Json  # chat form
    deployment: Deployment
    raw: bytes | None = None  # the provider's own answer, on the native lane


@dataclass(slots=True)
class OpenStream:
    """A stream whose first chunk has arrived: from here on the client is committed to it.
    The deployment counts as busy until `finish` reports how the stream ended."""

    deployment: Deployment
    attempt: Attempt
    first: Json
    rest: AsyncIterator[Json]
    response: UpstreamResponse
    decoder: EventSource  # the adapter's decoder of the body (SSE for most providers)
    state: RoutingState
    job: RouteJob
    # The native lane: the provider's events as they arrived, drained by whoever forwards
    # them (the chunks above are their chat-form view). None on the translated lane.
    raw: deque[SSEEvent] | None = None
    finished: bool = False

    def more_ready(self) -> bool:
        """True when more upstream events can be read without waiting."""
        return self.decoder.has_pending() or self.response.has_buffered()

    def finish(
        self,
        error: UpstreamError | None = None,
        *,
        completed: bool = False,
        total_tokens: int | None = None,
    ) -> None:
        """Record the end of the stream: a failure mid-stream counts against the deployment;
        a stream the client abandoned proves nothing either way."""
        if self.finished:
            return
        self.finished = True
        _finish_attempt(self, error, completed, total_tokens)

    async def aclose(self) -> None:
        """Stop reading; an unfinished upstream exchange is aborted, cancelling it upstream."""
        self.finish()
        aclose = getattr(self.rest, "aclose", None)
        if aclose is not None:
            await aclose()
        self.response.close()


async def teed(events: AsyncIterator[SSEEvent], sink: deque[SSEEvent]) -> AsyncIterator[SSEEvent]:
    """`events`, each also kept in `sink` (the native lane forwards them as they came)."""
    async for event in events:
        sink.append(event)
        yield event


@dataclass(slots=True)
class OpenBody:
    """An upstream answer with a success status whose body is passed on as it arrives
    (speech audio, streamed text completions). Busy until `finish`, as OpenStream."""

    deployment: Deployment
    attempt: Attempt
    response: UpstreamResponse
    state: RoutingState
    job: RouteJob
    finished: bool = False

    def finish(
        self,
        error: UpstreamError | None = None,
        *,
        completed: bool = False,
        total_tokens: int | None = None,
    ) -> None:
        if self.finished:
            return
        self.finished = True
        _finish_attempt(self, error, completed, total_tokens)

    def close(self) -> None:
        """Stop reading; an unfinished upstream exchange is aborted, cancelling it upstream."""
        self.finish()
        self.response.close()


def _finish_attempt(
    opened: OpenStream | OpenBody,
    error: UpstreamError | None,
    completed: bool,
    total_tokens: int | None,
) -> None:
    """A failure mid-answer counts against the deployment; an answer the client abandoned
    proves nothing either way."""
    state, deployment = opened.state, opened.deployment
    now = state.clock()
    health = state.health(deployment.id)
    opened.attempt.finish(200, None if error is None else str(error.kind))
    if error is not None:
        error.retry_after = bounded_wait(error.retry_after, deployment.target.caps.max_retry_after)
        health.failed(error, now)
    elif completed:
        health.succeeded(now)
    else:
        health.released(now)
    if total_tokens is not None and deployment.config.tpm is not None:
        state.capacity.adjust(deployment.id, total_tokens - opened.job.total_tokens, now)
