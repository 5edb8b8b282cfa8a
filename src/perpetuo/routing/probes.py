"""Active health checks: for providers with `health_check`, a cheap request every interval.

`probe: models` lists the provider's models (one free call per provider, checks that the
host answers and accepts our key); `probe: chat` asks each deployment for one token. A
failing probe counts against the deployments like a failed request (and can open their
circuit); a passing one ends an open circuit's cooldown early, so the next request is the
half-open probe. A passing probe never resets failure counts: real traffic is the judge.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from perpetuo.config.model import HealthCheckConfig
from perpetuo.providers.base import UpstreamCall
from perpetuo.providers.upstream_errors import bounded_wait
from perpetuo.routing.classify import counts_against_health, from_transport
from perpetuo.routing.health import RoutingState
from perpetuo.routing.table import Deployment, RoutingTable
from perpetuo.schema.chat import ChatCompletionRequest, UserMessage
from perpetuo.schema.errors import UpstreamError
from perpetuo.transport.client import HTTPClient
from perpetuo.transport.errors import TransportError
from perpetuo.transport.url import Timeouts

log = logging.getLogger("perpetuo.routing")


class HealthChecker:
    def __init__(self, client: HTTPClient, state: RoutingState) -> None:
        self.client = client
        self.state = state
        self._tasks: list[asyncio.Task[None]] = []
        # deployment id -> (failed rounds in a row, the last error's kind), for alerts
        self.failing: dict[str, tuple[int, str]] = {}

    def replace(self, table: RoutingTable) -> None:
        """Probe the deployments of `table` (one loop per provider), stopping older loops."""
        for task in self._tasks:
            task.cancel()
        by_provider: dict[str, dict[str, Deployment]] = {}
        for alias in table.aliases.values():
            for dep in alias.deployments:
                if dep.health_check is not None:
                    by_provider.setdefault(dep.provider, {})[dep.id] = dep
        probed = {dep_id for deps in by_provider.values() for dep_id in deps}
        self.failing = {k: v for k, v in self.failing.items() if k in probed}
        self._tasks = [
            asyncio.create_task(self._loop(list(deps.values())), name=f"health-check {name}")
            for name, deps in by_provider.items()
        ]

    async def aclose(self) -> None:
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _loop(self, deployments: list[Deployment]) -> None:
        settings = deployments[0].health_check
        assert settings is not None
        while True:
            await asyncio.sleep(settings.interval)
            try:
                await self.probe(deployments, settings)
            except Exception as exc:  # a bug here must not end the checks
                log.warning("health check of %s failed to run: %r", deployments[0].provider, exc)

    async def probe(self, deployments: list[Deployment], settings: HealthCheckConfig) -> None:
        """One round of checks for one provider's deployments."""
        first = deployments[0]
        if first.target.credentials is not None:  # the calls below are signed with them
            try:
                await first.target.credentials.ready(self.client)
            except (UpstreamError, TransportError) as exc:
                failed = exc if isinstance(exc, UpstreamError) else from_transport(exc)
                for dep in deployments:
                    self._record(dep, failed)
                return
        if settings.probe == "models":
            try:
                call = first.adapter.probe_request(first.target)
            except UpstreamError:
                call = None  # this provider type has no listing: ask for a token instead
            if call is not None:
                error = await self._call(first, call, settings)
                for dep in deployments:
                    self._record(dep, error)
                return
        for dep in deployments:
            self._record(dep, await self._call(dep, _one_token_call(dep), settings))

    async def _call(
        self, dep: Deployment, call: UpstreamCall, settings: HealthCheckConfig
    ) -> UpstreamError | None:
        limit = settings.timeout
        timeouts = Timeouts(connect=limit, first_byte=limit, read=limit, total=limit)
        try:
            response = await self.client.request(
                call.method,
                call.url,
                call.headers,
                call.body,
                timeouts,
                verify_tls=dep.target.verify_tls,
                egress=dep.target.egress,
                connection=dep.target.connection,
            )
            body = await response.read()
        except TransportError as exc:
            return from_transport(exc)
        if response.status >= 300:
            return dep.adapter.error(response.status, response.headers, body)
        return None

    def _record(self, dep: Deployment, error: UpstreamError | None) -> None:
        health = self.state.health(dep.id)
        now = self.state.clock()
        if error is None:
            self.failing.pop(dep.id, None)
            health.breaker.hasten(now)
            return
        rounds = self.failing.get(dep.id, (0, ""))[0] + 1
        self.failing[dep.id] = (rounds, str(error.kind))
        if counts_against_health(error.kind):
            log.info("health check of %s failed: %s", dep.id, error.kind)
            error.retry_after = bounded_wait(error.retry_after, dep.target.caps.max_retry_after)
            health.record_failure(error, now)


def _one_token_call(dep: Deployment) -> UpstreamCall:
    request = ChatCompletionRequest(
        model=dep.model, messages=[UserMessage(content="ping")], max_tokens=1
    )
    return dep.adapter.chat_request(request, dep.target, {})
