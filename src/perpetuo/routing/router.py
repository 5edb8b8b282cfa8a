"""The router: the orchestrator of one request's routing.

For the alias the client named (then for each fallback alias the chain calls for): order
the deployments by the strategy, skip those whose circuit is open or that are at their
capacity caps, call them one after another until one serves. A failure the client caused
stops at once; any other failure moves on to the next deployment (and, if configured, back
to the same one after a backoff). Every attempt feeds the deployment's health.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from perpetuo.config.model import RoutingConfig
from perpetuo.providers.base import Json, NativeRequest, UpstreamCall, unsupported
from perpetuo.providers.upstream_errors import bounded_wait
from perpetuo.routing.admission import admit, capacity_wait
from perpetuo.routing.backoff import RetryPolicy
from perpetuo.routing.breaker import BreakerState
from perpetuo.routing.classify import (
    CapacityExhausted,
    CircuitOpen,
    from_transport,
    is_retryable,
    is_transient,
    not_configured,
    to_client_error,
)
from perpetuo.routing.fallbacks import FallbackChain
from perpetuo.routing.health import RoutingState, readiness
from perpetuo.routing.job import RouteJob
from perpetuo.routing.operations import OperationRouting
from perpetuo.routing.probes import HealthChecker
from perpetuo.routing.strategies import STRATEGIES, Choice, configured_order
from perpetuo.routing.streams import OpenBody, OpenStream, Served, teed
from perpetuo.routing.table import Alias, Deployment, RoutingTable
from perpetuo.routing.trace import Attempt, RoutingTrace
from perpetuo.schema.chat import ChatCompletionRequest
from perpetuo.schema.errors import UpstreamError, UpstreamErrorKind
from perpetuo.schema.usage import Usage
from perpetuo.transport.client import HTTPClient, UpstreamResponse
from perpetuo.transport.errors import TransportError
from perpetuo.transport.sse import SSEEvent

__all__ = ["OpenBody", "OpenStream", "Router", "Served"]

T = TypeVar("T")
AttemptFn = Callable[[Deployment, Attempt], Awaitable[T]]
Lookup = Callable[[str], Alias | None]


class Router(OperationRouting):
    """Chat and its streams here; embeddings and every other kind of call through the same
    attempt loop in operations.py."""

    def __init__(
        self,
        client: HTTPClient,
        table: RoutingTable,
        config: RoutingConfig,
        *,
        expose_upstream_errors: bool = True,
        state: RoutingState | None = None,
    ) -> None:
        self.client = client
        self.table = table
        self.config = config
        self.expose_upstream_errors = expose_upstream_errors
        self.state = state or RoutingState(config)
        self.retry = RetryPolicy(config.retry, self.state.rng)
        self.checker: HealthChecker | None = None

    def reload(self, table: RoutingTable, config: RoutingConfig) -> None:
        """Serve a new table and settings, keeping every deployment's learned health."""
        self.table, self.config = table, config
        self.state.configure(config)
        self.retry = RetryPolicy(config.retry, self.state.rng)
        if self.checker is not None:
            self.checker.replace(table)

    async def start(self) -> None:
        """Start active health checks, for providers that configure them."""
        self.checker = HealthChecker(self.client, self.state)
        self.checker.replace(self.table)

    async def aclose(self) -> None:
        if self.checker is not None:
            await self.checker.aclose()

    # -- operations ------------------------------------------------------------------------

    async def chat(
        self,
        trace: RoutingTrace,
        alias: Alias,
        request: ChatCompletionRequest,
        extras: Json,
        *,
        default_strategy: str | None = None,
        lookup: Lookup | None = None,
        native: NativeRequest | None = None,
    ) -> Served:
        """`native`: the request as the client wrote it in a provider format; deployments
        that speak that format get it as it is (the native lane)."""
        job = RouteJob(request.is_stream, request, self.config.default_output_tokens)

        async def attempt(dep: Deployment, record: Attempt) -> Served:
            adapter, target = dep.adapter, dep.target
            if native is not None and adapter.speaks(native.format):
                call = adapter.native_call(
                    native, native.body_for(dep.id), target, dep.max_output_tokens
                )
                raw = await self._read_success(dep, await self._send(dep, record, call))
                body = adapter.native_response(native.format, raw, target)
                self._settle_tokens(dep, job, body)
                return Served(body, dep, raw)
            call = self._translated_call(dep, request, extras, native)
            response = await self._send(dep, record, call)
            body = adapter.chat_response(await self._read_success(dep, response), target)
            self._settle_tokens(dep, job, body)
            return Served(body, dep)

        return await self._route(trace, alias, job, attempt, default_strategy, lookup)

    async def open_stream(
        self,
        trace: RoutingTrace,
        alias: Alias,
        request: ChatCompletionRequest,
        extras: Json,
        *,
        default_strategy: str | None = None,
        lookup: Lookup | None = None,
        native: NativeRequest | None = None,
    ) -> OpenStream:
        """A stream whose first chunk arrived; failures before it fall over transparently.
        On the native lane the provider's events are also kept, to be forwarded as they are."""
        job = RouteJob(request.is_stream, request, self.config.default_output_tokens)

        async def attempt(dep: Deployment, record: Attempt) -> OpenStream:
            adapter, target = dep.adapter, dep.target
            lane = native is not None and adapter.speaks(native.format)
            if lane:
                assert native is not None
                call = adapter.native_call(
                    native, native.body_for(dep.id), target, dep.max_output_tokens
                )
            else:
                call = self._translated_call(dep, request, extras, native)
            response = await self._send(dep, record, call)
            if response.status >= 300:
                await self._read_success(dep, response)  # raises the classified error
            decoder = adapter.stream_events(response.iter_bytes(), target)
            raw: deque[SSEEvent] | None = None
            if lane:
                assert native is not None
                raw = deque()
                chunks = adapter.native_stream(native.format, teed(aiter(decoder), raw), target)
            else:
                chunks = adapter.chat_stream(aiter(decoder), target)
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
            return OpenStream(dep, record, first, chunks, response, decoder, self.state, job, raw)

        return await self._route(trace, alias, job, attempt, default_strategy, lookup)

    @staticmethod
    def _translated_call(
        dep: Deployment, request: ChatCompletionRequest, extras: Json, native: NativeRequest | None
    ) -> UpstreamCall:
        if native is not None and native.native_only:
            raise native.refuse_translation(dep.provider)  # another deployment may speak it
        fitted = request.with_output_limit(dep.max_output_tokens)
        return dep.adapter.chat_request(fitted, dep.target, extras)

    # -- choosing --------------------------------------------------------------------------

    @staticmethod
    def strategy_for(
        alias: Alias, trace: RoutingTrace, default_strategy: str | None
    ) -> tuple[str, str]:
        """The strategy for the requested alias and where it came from."""
        if trace.requested_strategy:
            return trace.requested_strategy, "header"
        if default_strategy:
            return default_strategy, "workspace"
        return alias.config.strategy, "alias"

    def plan(self, alias: Alias, strategy: str, job: RouteJob) -> list[Deployment]:
        """Every deployment of the alias, in the order to try them: priority groups in
        turn, each ordered by the strategy; those inside an upstream Retry-After go last."""
        groups = alias.groups if alias.uniform else alias.groups_serving(job.endpoint)
        if len(groups) == 1 and len(groups[0]) == 1:
            return [groups[0][0]]  # nothing to choose: the common case stays cheap
        now = self.state.clock()
        order = STRATEGIES.get(strategy, configured_order)
        ordered: list[Deployment] = []
        for index, group in enumerate(groups):
            if len(group) == 1:
                ordered.append(group[0])
            else:
                ordered.extend(order(group, Choice(self.state, job, now, f"{alias.name}#{index}")))
        health = self.state.health
        waiting = [d for d in ordered if health(d.id).retry_at > now]
        if waiting:
            ordered = [d for d in ordered if d not in waiting] + waiting
        return ordered

    # -- the attempt loop ------------------------------------------------------------------

    async def _route(
        self,
        trace: RoutingTrace,
        alias: Alias,
        job: RouteJob,
        attempt_fn: AttemptFn[T],
        default_strategy: str | None,
        lookup: Lookup | None = None,
    ) -> T:
        """The requested alias, then whatever fallbacks its failures call for. When all
        fail, the client sees the requested alias's error (the trace shows the rest).
        `lookup` resolves fallback names (a workspace's own aliases first, when given)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.config.request_timeout
        trace.aliases = [alias.name]
        try:
            return await self._serve(
                trace, alias, job, attempt_fn, loop, deadline, default_strategy
            )
        except UpstreamError as error:
            first_error = error
        chain = FallbackChain(alias, lookup or self.table.get, tried=trace.aliases)
        current, error = alias, first_error
        while chain.failed(current, error):
            following = chain.next()
            if following is None or loop.time() >= deadline:
                raise self._client_error(first_error)
            current = following
            try:
                return await self._serve(trace, current, job, attempt_fn, loop, deadline, None)
            except UpstreamError as exc:
                error = exc
        raise self._client_error(error) from None  # the client's own mistake: as it is

    async def _serve(
        self,
        trace: RoutingTrace,
        alias: Alias,
        job: RouteJob,
        attempt_fn: AttemptFn[T],
        loop: asyncio.AbstractEventLoop,
        deadline: float,
        default_strategy: str | None,
    ) -> T:
        """Try one alias's deployments; raise the error that decided it could not serve."""
        requested = len(trace.aliases) == 1
        if requested:
            if trace.requested_strategy is None and default_strategy is None:
                strategy = trace.strategy = alias.config.strategy  # the usual case, no call
            else:
                strategy, trace.strategy_source = self.strategy_for(alias, trace, default_strategy)
                trace.strategy = strategy
        else:
            strategy = alias.config.strategy  # fallback aliases route by their own strategy
        candidates = self.plan(alias, strategy, job)
        if not candidates:  # a fallback alias for other work: the chain moves past it
            raise unsupported(f"alias {alias.name!r} does not serve {job.endpoint}")
        if requested:
            trace.candidates = [d.id for d in candidates]
        limit = self.config.max_attempts
        per_deployment = self.config.retry.attempts_per_deployment
        attempts = 0
        last: UpstreamError | None = None
        pending: list[tuple[Deployment, UpstreamError | None]] = [(d, None) for d in candidates]
        tries = 1
        while pending and attempts < limit:
            again: list[tuple[Deployment, UpstreamError | None]] = []
            for dep, previous in pending:
                if attempts and (attempts >= limit or loop.time() >= deadline):
                    break
                if previous is not None:  # this deployment failed before: back off first
                    wait = self.retry.delay(tries - 1, previous.retry_after, loop.time(), deadline)
                    if wait is None:
                        continue
                    await asyncio.sleep(wait)
                refusal = admit(self.state, dep, job)
                if refusal is not None:
                    trace.skip(dep.id, refusal)
                    continue
                attempts += 1
                try:
                    return await self._attempt(trace, alias, dep, job, attempt_fn, loop, deadline)
                except UpstreamError as error:
                    if not is_retryable(error):
                        raise
                    last = error
                    if tries < per_deployment and is_transient(error):
                        again.append((dep, error))
            pending, tries = again, tries + 1
        if attempts == 0:
            if loop.time() >= deadline:
                raise UpstreamError(UpstreamErrorKind.TIMEOUT, "request deadline passed")
            return await self._last_resort(
                trace, alias, candidates, job, attempt_fn, loop, deadline
            )
        assert last is not None
        raise last

    async def _last_resort(
        self,
        trace: RoutingTrace,
        alias: Alias,
        candidates: list[Deployment],
        job: RouteJob,
        attempt_fn: AttemptFn[T],
        loop: asyncio.AbstractEventLoop,
        deadline: float,
    ) -> T:
        """Every deployment was skipped. If their circuits are open and no fallback alias
        is configured, probe the one that would reopen first rather than fail untried (one
        such probe at a time); otherwise refuse, saying when to come back."""
        now = self.state.clock()
        health = self.state.health
        tripped = [d for d in candidates if health(d.id).breaker.state is not BreakerState.CLOSED]
        if tripped and not alias.config.fallbacks:
            dep = min(tripped, key=lambda d: health(d.id).breaker.reopens_in(now))
            if admit(self.state, dep, job, force=True) is None:
                return await self._attempt(trace, alias, dep, job, attempt_fn, loop, deadline)
        capped = [capacity_wait(self.state, d, job, now) for d in candidates if d not in tripped]
        if capped:
            raise CapacityExhausted(min(capped))
        raise CircuitOpen(min(health(d.id).breaker.reopens_in(now) for d in tripped))

    async def _attempt(
        self,
        trace: RoutingTrace,
        alias: Alias,
        dep: Deployment,
        job: RouteJob,
        attempt_fn: AttemptFn[T],
        loop: asyncio.AbstractEventLoop,
        deadline: float,
    ) -> T:
        """One call to one deployment, recorded in the trace and in its health."""
        record = Attempt(dep.id, dep.provider, dep.model, alias.name)
        record.headers = trace.upstream_headers
        trace.attempts.append(record)
        total = dep.target.timeouts.total
        record.deadline = deadline if total is None else min(deadline, loop.time() + total)
        health = self.state.health(dep.id)
        health.begin()
        try:
            if dep.target.key_problem is not None:  # nothing to call upstream with
                raise not_configured(dep.target.key_problem)
            if dep.target.credentials is not None:  # short-lived: fetched when due, else cached
                await dep.target.credentials.ready(self.client)
            result = await attempt_fn(dep, record)
        except UpstreamError as exc:
            error = exc
        except TransportError as exc:
            error = from_transport(exc)
        except BaseException:
            health.released(self.state.clock())  # cancelled: the client went away
            raise
        else:
            trace.served_by = record
            if job.stream:  # the stream keeps the deployment busy until OpenStream.finish
                health.first_token((record.ttft_ms or 0.0) / 1000, self.state.clock())
            else:
                record.finish(200)
                health.succeeded(self.state.clock(), (record.latency_ms or 0.0) / 1000)
            return result
        # Parking the deployment and the client's Retry-After both read this: bound it once.
        error.retry_after = bounded_wait(error.retry_after, dep.target.caps.max_retry_after)
        if error.provider is None:  # the client's error names who failed, and where
            error.provider, error.endpoint = dep.provider, dep.target.base_url.origin.host_header
        record.finish(error.status, str(error.kind))
        health.failed(error, self.state.clock())
        raise error

    # -- helpers ---------------------------------------------------------------------------

    def _settle_tokens(self, dep: Deployment, job: RouteJob, body: Json) -> None:
        """Replace the token estimate counted against `tpm` with the reported usage."""
        if dep.config.tpm is None:
            return
        usage = Usage.from_openai(body.get("usage"))
        if usage is not None:
            self.state.capacity.adjust(
                dep.id, usage.total_tokens - job.total_tokens, self.state.clock()
            )

    def _client_error(self, error: UpstreamError) -> Exception:
        return to_client_error(error, expose_message=self.expose_upstream_errors)

    def health_report(self) -> tuple[bool, dict[str, Any]]:
        """(ready, detail) for /health/ready: see health.readiness."""
        return readiness(self.table.aliases.values(), self.state)

    async def _send(self, dep: Deployment, record: Attempt, call: UpstreamCall) -> UpstreamResponse:
        target = dep.target
        headers = [*call.headers, *record.headers] if record.headers else call.headers
        return await self.client.request(
            call.method,
            call.url,
            headers,
            call.body,
            target.timeouts,
            deadline=record.deadline,
            verify_tls=target.verify_tls,
            egress=target.egress,
            caps=target.caps,
            connection=target.connection,
        )

    @staticmethod
    async def _read_success(dep: Deployment, response: UpstreamResponse) -> bytes:
        body = await response.read()
        if response.status >= 300:
            raise dep.adapter.error(response.status, response.headers, body)
        return body
