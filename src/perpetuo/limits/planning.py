"""From a request's description to the counter checks it must pass.

A request is checked in up to four scopes, the hierarchy workspace → team → user → key: its
API key, its workspace, the key's team (when the team sets limits) and the person who owns
the key (when the workspace sets `user_limits` or the member has limits of their own); then
against its workspace's prepaid credits, all reserved in one atomic step. Each limit that
is set becomes one `Check`; the `Planned` beside it says what the check means, for error
messages, response headers and budget alerts.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal

from perpetuo.limits.backend import UNLIMITED, Check, Kind
from perpetuo.limits.plans import NO_WORKSPACE_LIMITS, ScopeLimits, WorkspaceLimits
from perpetuo.limits.windows import Window, window_of
from perpetuo.metering.pricing import to_micro_usd
from perpetuo.schema.errors import ErrorCode

Scope = Literal["key", "workspace", "team", "user"]
Measure = Literal["requests", "tokens", "cost", "credits", "parallel"]


@dataclass(frozen=True, slots=True)
class LimitRequest:
    """A request as the limits engine sees it. The pipeline fills it in."""

    request_id: str
    workspace_id: str | None
    key_id: str | None = None
    user_id: str | None = None
    team_id: str | None = None  # the key's team, or its owner's (Principal.team_id)
    key_limits: Mapping[str, Any] | None = None  # the key's `limits` (KeyRecord.limits)
    team_limits: Mapping[str, Any] | None = None  # the team's `limits`
    user_limits: Mapping[str, Any] | None = None  # the member's own, over the workspace's
    workspace: WorkspaceLimits | None = None  # WorkspaceLimits.from_settings(effective)
    prompt_tokens: int = 0  # an estimate of the prompt
    max_output_tokens: int = 0  # max_tokens, or the default the router assumes
    max_cost_micros: int = 0  # the most this request may cost (prompt + max output, priced)

    @property
    def estimated_tokens(self) -> int:
        return max(1, self.prompt_tokens + self.max_output_tokens)


@dataclass(frozen=True, slots=True)
class SeedSource:
    """Where a counter's starting value comes from when it is missing."""

    measure: Literal["tokens", "cost", "credits"]
    workspace_id: str
    dim: str  # usage_rollups dimension: key | all | team | user
    value: str
    since: dt.datetime | None
    until: dt.datetime | None


@dataclass(frozen=True, slots=True)
class Planned:
    check: Check
    code: ErrorCode
    scope: Scope
    scope_id: str
    measure: Measure
    limit: int  # in the measure's unit: requests, tokens, micro-USD, in-flight requests
    header: Literal["requests", "tokens"] | None = None
    window: Window | None = None
    seed: SeedSource | None = None
    soft_micros: int | None = None  # budget alert threshold


_DIMS: dict[Scope, tuple[str, str]] = {
    "key": ("key", "k"),
    "workspace": ("all", "w"),
    "team": ("team", "t"),
    "user": ("user", "u"),
}


def credit_key(workspace_id: str) -> str:
    return "{" + workspace_id + "}:credits"


def counter_key(
    workspace_id: str, kind: str, scope: Scope, scope_id: str, window: Window | None = None
) -> str:
    """A counter's name: `{workspace}:<kind>:<k|w|t|u>:<scope id>[:<window id>]` (kinds: rpm,
    tpm, tok, par, usd). The hash tag keeps a workspace's counters in one Redis slot."""
    base = "{" + workspace_id + "}" + f":{kind}:{_DIMS[scope][1]}:{scope_id}"
    return f"{base}:{window.id}" if window else base


@functools.lru_cache(maxsize=4096)  # the same few budgets, on every request
def micros(usd: float) -> int:
    return to_micro_usd(Decimal(str(usd)))


def plan_checks(request: LimitRequest, now: float, hold_seconds: float) -> list[Planned]:
    """Every check the request must pass, key scope first; empty when nothing applies."""
    workspace = request.workspace or NO_WORKSPACE_LIMITS
    scopes: list[tuple[Scope, str, ScopeLimits]] = []
    if request.key_id:
        scopes.append(("key", request.key_id, ScopeLimits.from_mapping(request.key_limits)))
    if request.workspace_id:
        scopes.append(("workspace", request.workspace_id, workspace.scope_limits()))
        if request.team_id and request.team_limits:
            team = ScopeLimits.from_mapping(request.team_limits)
            scopes.append(("team", request.team_id, team))
        if request.user_id and (workspace.user_limits or request.user_limits):
            own = ScopeLimits.from_mapping(request.user_limits)
            scopes.append(("user", request.user_id, own.over(workspace.user_scope_limits())))
    builder = _Builder(request, now, int(hold_seconds * 1000))
    for scope, scope_id, limits in scopes:
        if not limits.empty:
            builder.scope(scope, scope_id, limits)
    if workspace.credits_required and request.workspace_id:
        builder.credits()
    return builder.planned


class _Builder:
    def __init__(self, request: LimitRequest, now: float, hold_ms: int) -> None:
        self.request = request
        self.now = now
        self.hold_ms = hold_ms
        self.workspace_id = request.workspace_id or "-"
        self.tag = "{" + self.workspace_id + "}"  # one Redis Cluster slot per workspace
        self.planned: list[Planned] = []
        self._scope: tuple[Scope, str] = ("workspace", self.workspace_id)

    def scope(self, scope: Scope, scope_id: str, limits: ScopeLimits) -> None:
        self._scope = (scope, scope_id)
        dim = _DIMS[scope][0]
        value = "" if scope == "workspace" else scope_id  # the rollup dimension's value

        def name(kind: str, window: Window | None = None) -> str:
            return counter_key(self.workspace_id, kind, scope, scope_id, window)

        tokens = self.request.estimated_tokens
        if limits.rpm:
            check = Check(Kind.RATE, name("rpm"), limits.rpm, 1)
            self._add(check, ErrorCode.RATE_LIMIT_REQUESTS, "requests", header="requests")
        if limits.tpm:
            check = Check(Kind.RATE, name("tpm"), limits.tpm, tokens, corrected=True)
            self._add(check, ErrorCode.RATE_LIMIT_TOKENS, "tokens", header="tokens")
        for quota, period, code in (
            (limits.daily_tokens, "daily", ErrorCode.QUOTA_DAILY_TOKENS),
            (limits.monthly_tokens, "monthly", ErrorCode.QUOTA_MONTHLY_TOKENS),
        ):
            if quota:
                window = window_of(period, self.now)
                seed = SeedSource("tokens", self.workspace_id, dim, value, window.start, window.end)
                check = self._window(name("tok", window), quota, tokens, window)
                self._add(check, code, "tokens", header="tokens", window=window, seed=seed)
        if limits.max_parallel:
            check = Check(Kind.SLOTS, name("par"), limits.max_parallel, hold_ms=self.hold_ms)
            self._add(check, ErrorCode.CONCURRENCY_LIMIT, "parallel")
        if limits.budget_usd or limits.budget_soft_usd:
            window = window_of(limits.period, self.now)
            budget = micros(limits.budget_usd) if limits.budget_usd else UNLIMITED
            soft = micros(limits.budget_soft_usd) if limits.budget_soft_usd else None
            amount = max(1, self.request.max_cost_micros)
            check = self._window(name("usd", window), budget, amount, window)
            seed = SeedSource("cost", self.workspace_id, dim, value, window.start, window.end)
            self._add(
                check, ErrorCode.BUDGET_EXCEEDED, "cost", window=window, seed=seed, soft_micros=soft
            )

    def credits(self) -> None:
        """Prepaid credits as a window with limit 0 whose settled total starts at -balance."""
        self._scope = ("workspace", self.workspace_id)
        window = window_of("total", self.now)
        amount = max(1, self.request.max_cost_micros)
        check = self._window(credit_key(self.workspace_id), 0, amount, window)
        seed = SeedSource("credits", self.workspace_id, "all", "", None, None)
        self._add(check, ErrorCode.INSUFFICIENT_CREDITS, "credits", window=window, seed=seed)

    def _window(self, key: str, limit: int, amount: int, window: Window) -> Check:
        return Check(
            Kind.WINDOW,
            key,
            limit,
            amount,
            ttl_ms=window.ttl_ms(self.now),
            hold_ms=self.hold_ms,
            seedable=True,
        )

    def _add(self, check: Check, code: ErrorCode, measure: Measure, **extra: Any) -> None:
        scope, scope_id = self._scope
        self.planned.append(Planned(check, code, scope, scope_id, measure, check.limit, **extra))
