"""The gateway's long-lived parts, built once at start-up and shared by every request."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from perpetuo import heap
from perpetuo.auth.authenticator import Authenticator
from perpetuo.auth.key_cache import KeyCache
from perpetuo.auth.principal import Principal
from perpetuo.cache.service import ResponseCache
from perpetuo.config.loader import ConfigError, load_config
from perpetuo.config.model import GatewayConfig
from perpetuo.control.alerts.conditions import routing_sources
from perpetuo.control.alerts.service import AlertService
from perpetuo.control.changes import CONFIG
from perpetuo.control.chat_sessions import ChatSessionStore
from perpetuo.control.key_usage import flush_last_used
from perpetuo.control.outbound import policy_for
from perpetuo.control.plane import ControlPlane
from perpetuo.control.stored_responses import ResponseStore
from perpetuo.control.workspace_routing import EMPTY, WorkspaceRoutes, WorkspaceState
from perpetuo.demo.server import embedded_if_used
from perpetuo.guardrails.injection import HEURISTIC, InjectionClassifier
from perpetuo.limits import LimitEngine
from perpetuo.metering.recorder import build_record
from perpetuo.metering.retention import prune_request_logs
from perpetuo.metering.writer import UsageWriter
from perpetuo.observability import logs
from perpetuo.observability.loop_lag import LoopLagMonitor
from perpetuo.observability.metrics import GatewayMetrics
from perpetuo.observability.tracing import Tracing
from perpetuo.pipeline.context import RequestContext
from perpetuo.pipeline.features import note_cache, observe_features
from perpetuo.routing.router import Router
from perpetuo.routing.table import Alias, RoutingTable
from perpetuo.schema.errors import (
    ErrorCode,
    ErrorType,
    GatewayError,
    bad_request,
    forbidden,
    model_not_found,
)
from perpetuo.transport.client import HTTPClient

log = logging.getLogger("perpetuo.gateway")


def _step(what: str, step: Callable[..., object], *args: Any) -> None:
    """Run one after-response step; a failure is logged by kind only (its message could
    quote request data or credentials) and goes no further."""
    try:
        step(*args)
    except Exception as exc:
        ctx = args[-1]
        log.error(
            "%s failed after request %s: %s",
            what,
            getattr(ctx, "request_id", "?"),
            type(exc).__name__,
            exc_info=log.isEnabledFor(logging.DEBUG),
        )


@dataclass(slots=True)
class Gateway:
    config: GatewayConfig
    table: RoutingTable
    client: HTTPClient
    router: Router
    authenticator: Authenticator
    plane: ControlPlane
    keys: KeyCache
    workspace_routes: WorkspaceRoutes
    usage: UsageWriter
    tracing: Tracing
    limits: LimitEngine
    cache: ResponseCache
    responses: ResponseStore  # stored Responses API answers (previous_response_id)
    chat_sessions: ChatSessionStore  # conversations kept for /v1/chat/sessions
    injection_classifier: InjectionClassifier = HEURISTIC
    metrics: GatewayMetrics | None = None
    metrics_token: str | None = None
    config_path: Path | None = None  # re-read on reload
    master_key: str | None = None
    listen: tuple[str | None, int | None] = (None, None)  # for the egress policy
    alerts: AlertService | None = None  # rule evaluation and alert delivery (control/alerts/)
    loop_lag: LoopLagMonitor | None = None  # with metrics on: perpetuo_event_loop_lag_seconds
    _tasks: list[asyncio.Task[Any]] = field(default_factory=list)
    _settling: set[asyncio.Task[None]] = field(default_factory=set)

    async def workspace(self, principal: Principal) -> WorkspaceState:
        """The caller's workspace: its own aliases and settings (from memory after first use)."""
        if principal.workspace_id is None:
            return EMPTY
        return await self.workspace_routes.get(principal.workspace_id)

    def resolve_alias(self, state: WorkspaceState, principal: Principal, name: str) -> Alias:
        """The alias `name`, the workspace's own before the platform's: 404 if it does not
        exist, 403 if this key may not use it, 503 if it exists but cannot serve."""
        alias = state.aliases.get(name)
        if alias is None and name in state.disabled:
            raise GatewayError(
                503,
                f"The model `{name}` cannot serve requests: {state.disabled[name]}.",
                type=ErrorType.UNAVAILABLE,
                code=ErrorCode.NO_DEPLOYMENT,
            )
        if alias is None:
            alias = self.table.get(name)
        if alias is None:
            raise model_not_found(name)
        if not principal.may_use_model(name):
            raise forbidden(
                f"This API key is not allowed to use the model `{name}`.",
                ErrorCode.MODEL_NOT_ALLOWED,
            )
        if not alias.test and principal.environment in self.config.api_keys.test_only:
            raise forbidden(
                f"This is a {principal.environment} key: it may use only test models, and "
                f"`{name}` is not one. Use a live key, or a model marked for testing.",
                ErrorCode.TEST_KEY_NOT_ALLOWED,
            )
        return alias

    def alias_lookup(self, state: WorkspaceState) -> Callable[[str], Alias | None]:
        """Where fallback names resolve: the workspace's aliases, then the platform's."""
        if not state.aliases:
            return self.table.get
        return lambda name: state.aliases.get(name) or self.table.get(name)

    def visible_aliases(self, state: WorkspaceState, principal: Principal) -> list[Alias]:
        aliases = {**self.table.aliases, **state.aliases}
        test_only = principal.environment in self.config.api_keys.test_only
        return [
            a
            for a in aliases.values()
            if principal.may_use_model(a.name) and (a.test or not test_only)
        ]

    def record(self, ctx: RequestContext) -> None:
        """Everything that happens once a request is over, none of it I/O on this path:
        its trace span, metrics, access log line and request-log record (queued). Each step
        stands alone: one that fails is logged and the request-log record is still written."""
        _step("settling limits", self._settle, ctx)
        _step("tracing", self.tracing.finish, ctx)
        if self.metrics is not None:
            _step("metrics", self.metrics.observe, ctx)
            if ctx.cache is not None or ctx.guardrails is not None:
                _step("feature metrics", observe_features, self.metrics, ctx)
        _step("access log", logs.access, ctx)
        record = build_record(ctx)
        if record is not None:
            if ctx.cache is not None:
                _step("cache outcome", note_cache, record, ctx)
            self.usage.emit(record)

    @staticmethod
    def require_endpoint(alias: Alias, endpoint: str) -> None:
        """400 when the alias is for other work (routing/capabilities.py decides)."""
        if endpoint not in alias.endpoints:
            serves = ", ".join(sorted(alias.endpoints)) or "nothing this gateway offers"
            raise bad_request(
                f"The model `{alias.name}` does not serve {endpoint}: it serves {serves}. "
                "GET /v1/models lists what each model serves (`capabilities`).",
                param="model",
                code=ErrorCode.ENDPOINT_NOT_SUPPORTED,
            )

    @staticmethod
    def require_scope(principal: Principal, scope: str) -> None:
        if not principal.has_scope(scope):
            raise forbidden(
                f"This API key does not have the `{scope}` scope.", ErrorCode.INSUFFICIENT_SCOPE
            )

    def _settle(self, ctx: RequestContext) -> None:
        """Replace the request's reservations with what it used, off the response path."""
        admission = ctx.admission
        if admission is None or admission.settled:
            return  # nothing reserved (no limits apply), or already settled
        usage = ctx.usage
        tokens = usage.total_tokens if usage is not None else 0
        self.after_response(admission.settle(tokens, ctx.cost_micros))

    def after_response(self, work: Coroutine[Any, Any, None]) -> None:
        """Run `work` in the background, off the response path; shutdown waits for it."""
        task = asyncio.get_running_loop().create_task(work)
        self._settling.add(task)
        task.add_done_callback(self._settling.discard)

    def reload(self) -> str:
        """Re-read the config file and serve it without dropping in-flight requests (they
        finish on the objects they started with). Raises ConfigError, keeping the old one."""
        config = load_config(self.config_path)
        table = RoutingTable.build(config, str(self.config_path or "config"))
        self.router.reload(table, config.routing)
        self.config, self.table = config, table
        egress = policy_for(config.egress, *self.listen)
        self.plane.egress = egress
        self.workspace_routes.set_policies(egress, config.upstream_limits)
        self.plane.sso.configure(config.sso)
        self.plane.api_keys = config.api_keys
        self.plane.currency = config.currency
        if self.metrics is not None:
            self.metrics.aliases, self.metrics.providers = set(table.aliases), set(config.providers)
        log.info("configuration reloaded: %d aliases", len(table.aliases))
        return f"reloaded {len(table.aliases)} aliases from {self.config_path or 'defaults'}"

    async def reload_everywhere(self) -> str:
        """Reload here, then tell the other instances to reload their copy of the file."""
        message = self.reload()
        await self.plane.changes.publish_remote(CONFIG, "reload")
        return message

    def _reload_on_change(self, _: str) -> None:
        try:
            self.reload()
        except ConfigError as exc:
            log.error("configuration reload refused, keeping the running one: %s", exc)

    async def start(self) -> None:
        """Background work: cross-instance change feed, batched key last-used writes."""
        if (demo := embedded_if_used()) is not None:
            await demo.start()  # `type: demo` providers answer from this process
        await self.limits.start()
        self.plane.changes.subscribe(CONFIG, self._reload_on_change)
        await self.plane.changes.start()
        await self.usage.start()
        await self.responses.start()
        await self.chat_sessions.start()
        await self.plane.mail.start(self.plane.db)  # delivers the outbox, when mail is set up
        if self.plane.billing is not None:
            await self.plane.billing.start()  # recharges, trial ends, grace periods
        self._tasks.append(asyncio.create_task(self._flush_key_usage_forever()))
        self._tasks.append(asyncio.create_task(self._refresh_keys_forever()))
        self._tasks.append(asyncio.create_task(self._prune_logs_forever()))
        await self.router.start()  # active health checks, where configured
        if self.alerts is not None:
            self.alerts.sources = routing_sources(self.plane.db, self.router)
            self.alerts.start()
        if self.metrics is not None:
            self._tasks.append(asyncio.create_task(self._refresh_gauges_forever()))
            self.loop_lag = LoopLagMonitor(self.metrics.loop_lag.observe).start()
        heap.set_aside_startup()  # last: everything built so far lives as long as the process

    async def _refresh_gauges_forever(self, interval: float = 2.0) -> None:
        assert self.metrics is not None
        while True:
            breakers = {d: h["state"] for d, h in self.router.state.snapshot().items()}
            self.metrics.refresh(
                queue_depth=self.usage.queue_depth,
                spilled=self.usage.spilled,
                flush_seconds=self.usage.last_flush_seconds,
                breakers=breakers,
            )
            usage = self.usage
            sampled_out, access_dropped = logs.access_counts()
            self.metrics.refresh_request_log(
                usage.health(),
                {
                    **self.metrics.request_log_totals(usage),
                    "sampled_out": sampled_out,
                    "access_dropped": access_dropped,
                },
            )
            self.metrics.refresh_limits(self.limits.stats)
            await asyncio.sleep(interval)

    async def _prune_logs_forever(self, interval: float = 3600.0) -> None:
        await asyncio.sleep(random.uniform(60, 600))  # instances started together spread out
        while True:
            try:
                await prune_request_logs(self.plane.db)
                await self.responses.prune()
                await self.chat_sessions.prune()
            except Exception as exc:
                log.warning("request-log retention pass failed: %s", exc)
            await asyncio.sleep(interval)

    async def _flush_key_usage_forever(self, interval: float = 15.0) -> None:
        while True:
            await asyncio.sleep(interval)
            await flush_last_used(self.plane.db, self.keys)

    async def _refresh_keys_forever(self, interval: float = 10.0) -> None:
        """Keys in use are read again before they expire, in batches (auth/key_cache.py)."""
        while True:
            await asyncio.sleep(interval)
            try:
                await self.keys.refresh_due(within=2 * interval)
            except Exception as exc:  # entries then expire and load on use, as without this
                log.warning("could not refresh cached API keys: %s", exc)

    async def aclose(self) -> None:
        if self.loop_lag is not None:
            self.loop_lag.stop()
        if self.alerts is not None:
            await self.alerts.aclose()
        await self.router.aclose()
        await self.cache.aclose()
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.plane.changes.stop()
        if self.plane.billing is not None:
            await self.plane.billing.aclose()
        await self.plane.mail.aclose()
        await self.plane.throttle.aclose()
        if self.authenticator.throttle is not None:
            await self.authenticator.throttle.aclose()
        if self._settling:
            await asyncio.gather(*self._settling, return_exceptions=True)
        await self.limits.aclose()
        await self.usage.stop()
        await self.responses.aclose()
        await self.chat_sessions.aclose()
        self.tracing.shutdown()
        await flush_last_used(self.plane.db, self.keys)
        await self.client.aclose()
        if (demo := embedded_if_used()) is not None:
            await demo.aclose()
        await self.plane.db.dispose()
        heap.release()
