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
from dataclasses import dataclass, fields
from decimal import Decimal
from operator import attrgetter
from typing import Any, Literal, NamedTuple

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


class Planned(NamedTuple):
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


# What a check reserves: one request, the request's tokens, or its worst-case cost.
_ONE, _TOKENS, _COST = 0, 1, 2
_new = tuple.__new__
PLAN_CACHE_SIZE = 4096  # plans kept (one per key, team, member and workspace settings in use)


# A plan: a request's checks with everything but its amounts and counter lifetimes, the same
# for every request with the same scopes and settings in one UTC day. Per check: the template
# check, the rest of its Planned, where its amount comes from, its window's expiry (ms).
Plan = list[tuple[Check, tuple[Any, ...], int, int | None]]
_plans: dict[tuple[Any, ...], Plan] = {}
_workspace_values = attrgetter(*(field.name for field in fields(WorkspaceLimits)))


def plan_checks(request: LimitRequest, now: float, hold_seconds: float) -> list[Planned]:
    """Every check the request must pass, key scope first; empty when nothing applies."""
    hold_ms = int(hold_seconds * 1000)
    # Keyed by the settings' values, not their objects: a settings object made per request
    # still finds its plan, and one changed in place cannot find a stale one.
    workspace = request.workspace
    cache_key = (
        request.workspace_id,
        request.key_id,
        request.team_id,
        request.user_id,
        _frozen(request.key_limits),
        _frozen(request.team_limits),
        _frozen(request.user_limits),
        workspace and tuple(map(_frozen, _workspace_values(workspace))),
        int(now // 86_400),  # calendar windows change at midnight UTC
        hold_ms,
    )
    try:
        plan = _plans.get(cache_key)
    except TypeError:  # a setting that cannot be a key (a list): planned afresh
        return _fill(_build(request, now, hold_ms), request, now)
    if plan is None:
        if len(_plans) >= PLAN_CACHE_SIZE:
            for stale in list(_plans)[: PLAN_CACHE_SIZE // 4]:  # the oldest quarter
                del _plans[stale]
        plan = _plans[cache_key] = _build(request, now, hold_ms)
    return _fill(plan, request, now)


def _fill(plan: Plan, request: LimitRequest, now: float) -> list[Planned]:
    """The plan's checks with this request's amounts and its counters' lifetimes."""
    amounts = (1, request.estimated_tokens, max(1, request.max_cost_micros))  # by source
    now_ms = int(now * 1000)
    planned = []
    # tuple.__new__ skips the named tuples' own __new__ (the fields are complete): half the
    # time, on every check of every request.
    for check, rest, source, expiry_ms in plan:
        ttl_ms = check.ttl_ms if expiry_ms is None else expiry_ms - now_ms
        filled = _new(Check, (*check[:3], amounts[source], ttl_ms, *check[5:]))
        planned.append(_new(Planned, (filled, *rest)))
    return planned


_PLAIN = frozenset({type(None), int, float, str, bool})


def _frozen(value: Any) -> Any:
    """A settings value as part of a key: a mapping as its items, anything else as it is.
    Plain values and dicts are told by their type first: `isinstance(value, Mapping)` is an
    ABC check, a dozen per request on every request."""
    kind = type(value)
    if kind in _PLAIN:
        return value
    if kind is dict or isinstance(value, Mapping):
        return tuple(value.items()) or None
    return value


def _build(request: LimitRequest, now: float, hold_ms: int) -> Plan:
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
    builder = _Builder(request.workspace_id or "-", now, hold_ms)
    for scope, scope_id, limits in scopes:
        if not limits.empty:
            builder.scope(scope, scope_id, limits)
    if workspace.credits_required and request.workspace_id:
        builder.credits()
    return builder.items


class _Builder:
    def __init__(self, workspace_id: str, now: float, hold_ms: int) -> None:
        self.now = now
        self.hold_ms = hold_ms
        self.workspace_id = workspace_id
        self.items: Plan = []
        self._scope: tuple[Scope, str] = ("workspace", self.workspace_id)

    def scope(self, scope: Scope, scope_id: str, limits: ScopeLimits) -> None:
        self._scope = (scope, scope_id)
        dim = _DIMS[scope][0]
        value = "" if scope == "workspace" else scope_id  # the rollup dimension's value

        def name(kind: str, window: Window | None = None) -> str:
            return counter_key(self.workspace_id, kind, scope, scope_id, window)

        if limits.rpm:
            check = Check(Kind.RATE, name("rpm"), limits.rpm)
            self._add(check, _ONE, ErrorCode.RATE_LIMIT_REQUESTS, "requests", header="requests")
        if limits.tpm:
            check = Check(Kind.RATE, name("tpm"), limits.tpm, corrected=True)
            self._add(check, _TOKENS, ErrorCode.RATE_LIMIT_TOKENS, "tokens", header="tokens")
        for quota, period, code in (
            (limits.daily_tokens, "daily", ErrorCode.QUOTA_DAILY_TOKENS),
            (limits.monthly_tokens, "monthly", ErrorCode.QUOTA_MONTHLY_TOKENS),
        ):
            if quota:
                window = window_of(period, self.now)
                seed = SeedSource("tokens", self.workspace_id, dim, value, window.start, window.end)
                check = self._window(name("tok", window), quota, window)
                self._add(check, _TOKENS, code, "tokens", header="tokens", window=window, seed=seed)
        if limits.max_parallel:
            check = Check(Kind.SLOTS, name("par"), limits.max_parallel, hold_ms=self.hold_ms)
            self._add(check, _ONE, ErrorCode.CONCURRENCY_LIMIT, "parallel")
        if limits.budget_usd or limits.budget_soft_usd:
            window = window_of(limits.period, self.now)
            budget = micros(limits.budget_usd) if limits.budget_usd else UNLIMITED
            soft = micros(limits.budget_soft_usd) if limits.budget_soft_usd else None
            check = self._window(name("usd", window), budget, window)
            check = check._replace(alerting=soft is not None)
            seed = SeedSource("cost", self.workspace_id, dim, value, window.start, window.end)
            code = ErrorCode.BUDGET_EXCEEDED
            self._add(check, _COST, code, "cost", window=window, seed=seed, soft_micros=soft)

    def credits(self) -> None:
        """Prepaid credits as a window with limit 0 whose settled total starts at -balance."""
        self._scope = ("workspace", self.workspace_id)
        window = window_of("total", self.now)
        check = self._window(credit_key(self.workspace_id), 0, window)
        seed = SeedSource("credits", self.workspace_id, "all", "", None, None)
        code = ErrorCode.INSUFFICIENT_CREDITS
        self._add(check, _COST, code, "credits", window=window, seed=seed)

    def _window(self, key: str, limit: int, window: Window) -> Check:
        # A calendar window's counter lives until the window ends (plus slack), counted from
        # each request's time; an all-time counter for a fixed time after its last use.
        ttl_ms = window.ttl_ms(self.now) if window.end is None else 0
        return Check(Kind.WINDOW, key, limit, 0, ttl_ms, self.hold_ms, seedable=True)

    def _add(
        self, check: Check, source: int, code: ErrorCode, measure: Measure, **extra: Any
    ) -> None:
        scope, scope_id = self._scope
        meaning = Planned(check, code, scope, scope_id, measure, check.limit, **extra)
        expiry_ms = None if meaning.window is None else meaning.window.expiry_ms
        self.items.append((check, meaning[1:], source, expiry_ms))
