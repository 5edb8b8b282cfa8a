"""Routing for every kind of call but chat: embeddings, images, audio, rerank, text
completions, moderations. One attempt loop (the router's) serves them all; each kind only
says how a deployment's upstream call is built and how its answer is read.

Mixed into Router, whose attempt loop, sending and error reading it uses.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, TypeVar

from perpetuo.providers.base import UpstreamCall
from perpetuo.routing.job import RouteJob
from perpetuo.routing.streams import OpenBody, Served
from perpetuo.routing.table import Alias, Deployment
from perpetuo.routing.trace import Attempt, RoutingTrace
from perpetuo.schema.embeddings import EmbeddingRequest
from perpetuo.schema.endpoints import Endpoint

if TYPE_CHECKING:
    from perpetuo.routing.health import RoutingState
    from perpetuo.transport.client import UpstreamResponse

T = TypeVar("T")
Lookup = Callable[[str], Alias | None]
Build = Callable[[Deployment], UpstreamCall]


class OperationRouting:
    if TYPE_CHECKING:  # provided by Router
        state: RoutingState

        async def _route(
            self,
            trace: RoutingTrace,
            alias: Alias,
            job: RouteJob,
            attempt_fn: Callable[[Deployment, Attempt], Awaitable[T]],
            default_strategy: str | None,
            lookup: Lookup | None = None,
        ) -> T: ...

        async def _send(
            self, dep: Deployment, record: Attempt, call: UpstreamCall
        ) -> UpstreamResponse: ...

        @staticmethod
        async def _read_success(dep: Deployment, response: UpstreamResponse) -> bytes: ...

    async def embeddings(
        self,
        trace: RoutingTrace,
        alias: Alias,
        request: EmbeddingRequest,
        *,
        default_strategy: str | None = None,
        lookup: Lookup | None = None,
    ) -> Served:
        body, dep = await self.operation(
            trace,
            alias,
            RouteJob(False, request, endpoint=Endpoint.EMBEDDINGS),
            lambda dep: dep.adapter.embeddings_request(request, dep.target),
            lambda dep, body, _: dep.adapter.embeddings_response(body, dep.target, request),
            default_strategy=default_strategy,
            lookup=lookup,
        )
        return Served(body, dep)

    async def operation(
        self,
        trace: RoutingTrace,
        alias: Alias,
        job: RouteJob,
        build: Build,
        read: Callable[[Deployment, bytes, str], T],
        *,
        default_strategy: str | None = None,
        lookup: Lookup | None = None,
    ) -> tuple[T, Deployment]:
        """`build` makes a deployment's upstream call; `read` turns its successful body
        (and content type) into the client's answer, or raises to try the next one."""

        async def attempt(dep: Deployment, record: Attempt) -> tuple[T, Deployment]:
            response = await self._send(dep, record, build(dep))
            body = await self._read_success(dep, response)
            return read(dep, body, response.headers.get("content-type", "")), dep

        return await self._route(trace, alias, job, attempt, default_strategy, lookup)

    async def open_operation(
        self,
        trace: RoutingTrace,
        alias: Alias,
        job: RouteJob,
        build: Build,
        *,
        default_strategy: str | None = None,
        lookup: Lookup | None = None,
    ) -> OpenBody:
        """A call whose answer goes to the client as it arrives (speech audio, streamed
        text completions): committed once a deployment answers with a success status, so
        failures before that fall over to the next deployment."""

        async def attempt(dep: Deployment, record: Attempt) -> OpenBody:
            response = await self._send(dep, record, build(dep))
            if response.status >= 300:
                await self._read_success(dep, response)  # raises the classified error
            record.first_token()
            return OpenBody(dep, record, response, self.state, job)

        return await self._route(trace, alias, job, attempt, default_strategy, lookup)


__all__ = ["OperationRouting"]
