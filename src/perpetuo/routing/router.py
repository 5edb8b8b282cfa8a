"""The router: order an alias's deployments, call them one after another until one serves.

A failure the client caused stops at once; anything another deployment might not suffer
(rate limits, 5xx, timeouts, resets, a rejected provider credential, an unsupported
parameter) moves on to the next deployment.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from perpetuo.config.model import RoutingConfig
from perpetuo.providers.base import Json, UpstreamCall
from perpetuo.routing.classify import from_transport, is_retryable, to_client_error
from perpetuo.routing.table import Alias, Deployment
from perpetuo.routing.trace import Attempt, RoutingTrace
from perpetuo.schema.chat import ChatCompletionRequest
from perpetuo.schema.embeddings import EmbeddingRequest
from perpetuo.schema.errors import (
    ErrorCode,
    ErrorType,
    GatewayError,
    UpstreamError,
    UpstreamErrorKind,
)
from perpetuo.transport.client import HTTPClient, UpstreamResponse
from perpetuo.transport.errors import TransportError
from perpetuo.transport.sse import SSEDecoder

T = TypeVar("T")


@dataclass(slots=True)
class Served:
    """A complete (non-streamed) answer and who gave it."""

    body: Json
    deployment: Deployment


@dataclass(slots=True)
class OpenStream:
    """A stream whose first chunk has arrived: from here on the client is committed to it."""

    deployment: Deployment
    attempt: Attempt
    first: Json
    rest: AsyncIterator[Json]
    response: UpstreamResponse
    decoder: SSEDecoder

    def more_ready(self) -> bool:
        """True when more upstream events can be read without waiting."""
        return self.decoder.has_pending() or self.response.has_buffered()

    async def aclose(self) -> None:
        """Stop reading; an unfinished upstream exchange is aborted, cancelling it upstream."""
        aclose = getattr(self.rest, "aclose", None)
        if aclose is not None:
            await aclose()
        self.response.close()


class Router:
    def __init__(
        self, client: HTTPClient, config: RoutingConfig, *, expose_upstream_errors: bool = True
    ) -> None:
        self.client = client
        self.config = config
        self.expose_upstream_errors = expose_upstream_errors

    def plan(self, alias: Alias, trace: RoutingTrace) -> list[Deployment]:
        """Deployments in the order to try them: by priority, then as configured."""
        trace.strategy = alias.config.strategy
        trace.strategy_source = "alias"
        return sorted(alias.deployments, key=lambda d: d.config.priority)

    # -- operations ------------------------------------------------------------------------

    async def chat(
        self, trace: RoutingTrace, alias: Alias, request: ChatCompletionRequest, extras: Json
    ) -> Served:
        async def attempt(dep: Deployment, record: Attempt) -> Served:
            call = dep.adapter.chat_request(request, dep.target, extras)
            response = await self._send(dep, record, call)
            body = await self._read_success(dep, response)
            return Served(dep.adapter.chat_response(body, dep.target), dep)

        return await self._run(trace, alias, attempt)

    async def open_stream(
        self, trace: RoutingTrace, alias: Alias, request: ChatCompletionRequest, extras: Json
    ) -> OpenStream:
        async def attempt(dep: Deployment, record: Attempt) -> OpenStream:
            call = dep.adapter.chat_request(request, dep.target, extras)
            response = await self._send(dep, record, call)
            if response.status >= 300:
                await self._read_success(dep, response)  # raises the classified error
            decoder = SSEDecoder(response.iter_bytes())
            chunks = dep.adapter.chat_stream(aiter(decoder), dep.target)
            try:
                first = await anext(chunks)
            except StopAsyncIteration:
                response.close()
                raise UpstreamError(
                    UpstreamErrorKind.BAD_RESPONSE, "upstream stream ended before any event"
                ) from None
            except BaseException:
                await chunks.aclose()  # type: ignore[attr-defined]
                response.close()
                raise
            record.first_token()
            return OpenStream(dep, record, first, chunks, response, decoder)

        return await self._run(trace, alias, attempt)

    async def embeddings(
        self, trace: RoutingTrace, alias: Alias, request: EmbeddingRequest
    ) -> Served:
        async def attempt(dep: Deployment, record: Attempt) -> Served:
            call = dep.adapter.embeddings_request(request, dep.target)
            response = await self._send(dep, record, call)
            body = await self._read_success(dep, response)
            return Served(dep.adapter.embeddings_response(body, dep.target, request), dep)

        return await self._run(trace, alias, attempt)

    # -- the attempt loop ------------------------------------------------------------------

    async def _run(
        self,
        trace: RoutingTrace,
        alias: Alias,
        attempt_fn: Callable[[Deployment, Attempt], Awaitable[T]],
    ) -> T:
        candidates = self.plan(alias, trace)
        trace.candidates = [d.id for d in candidates]
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.config.request_timeout
        last_error: UpstreamError | None = None
        for dep in candidates[: self.config.max_attempts]:
            record = Attempt(dep.id, dep.provider, dep.model, alias.name)
            trace.attempts.append(record)
            total = dep.target.timeouts.total
            record.deadline = deadline if total is None else min(deadline, loop.time() + total)
            try:
                result = await attempt_fn(dep, record)
            except UpstreamError as exc:
                error = exc
            except TransportError as exc:
                error = from_transport(exc)
            else:
                if record.latency_ms is None:
                    record.finish(200)
                trace.served_by = record
                return result
            record.finish(error.status, str(error.kind))
            if not is_retryable(error):
                raise to_client_error(error, expose_message=self.expose_upstream_errors)
            last_error = error
            if loop.time() >= deadline:
                break
        if last_error is None:
            raise GatewayError(
                503,
                f"No deployment is available for model `{alias.name}`.",
                type=ErrorType.UNAVAILABLE,
                code=ErrorCode.NO_DEPLOYMENT,
            )
        raise to_client_error(last_error, expose_message=self.expose_upstream_errors)

    async def _send(self, dep: Deployment, record: Attempt, call: UpstreamCall) -> UpstreamResponse:
        target = dep.target
        return await self.client.request(
            call.method,
            call.url,
            call.headers,
            call.body,
            target.timeouts,
            deadline=record.deadline,
            verify_tls=target.verify_tls,
        )

    @staticmethod
    async def _read_success(dep: Deployment, response: UpstreamResponse) -> bytes:
        body = await response.read()
        if response.status >= 300:
            raise dep.adapter.error(response.status, response.headers, body)
        return body
