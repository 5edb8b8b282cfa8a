"""Plan tiers, and the limits that apply to each scope (key, user, team, workspace) of a request.

A workspace's limits are its plan's defaults with the workspace's own `limits` laid over
them; a workspace without a plan has only what its overrides set. Per-user limits come from
the workspace's `user_limits`, with a member's own limits laid over them; a team's from the
team's `limits`; a key's from the key's `limits`. Every scope is enforced on
its own: a request must fit all of them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any, Literal

Period = Literal["daily", "weekly", "monthly", "total"]
PERIODS: tuple[Period, ...] = ("daily", "weekly", "monthly", "total")
DEFAULT_BUDGET_PERIOD: Period = "monthly"


@dataclass(frozen=True, slots=True)
class ScopeLimits:
    """What one scope allows; None means no limit of that kind."""

    rpm: int | None = None
    tpm: int | None = None
    daily_tokens: int | None = None
    monthly_tokens: int | None = None
    max_parallel: int | None = None
    budget_usd: float | None = None
    budget_period: Period | None = None
    budget_soft_usd: float | None = None

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any] | None) -> ScopeLimits:
        """From stored JSON (a key's `limits`, a workspace's `user_limits`); unknown names
        are ignored so an older instance can read what a newer one wrote."""
        if not values:
            return EMPTY
        return cls(**{k: v for k, v in values.items() if k in _NAMES and v is not None})

    def over(self, base: ScopeLimits) -> ScopeLimits:
        """These limits where set, `base`'s elsewhere."""
        if base is EMPTY or self is EMPTY:
            return base if self is EMPTY else self
        pairs = ((getattr(self, name), getattr(base, name)) for name in _NAMES)
        return ScopeLimits(*(mine if mine is not None else theirs for mine, theirs in pairs))

    @property
    def period(self) -> Period:
        return self.budget_period or DEFAULT_BUDGET_PERIOD

    @property
    def empty(self) -> bool:
        return self == EMPTY


EMPTY = ScopeLimits()
_NAMES = tuple(f.name for f in fields(ScopeLimits))  # in the constructor's order

# The plan tiers, exactly as offered: requests/minute, tokens/minute, tokens/day, tokens/month.
# They nest: the per-minute rates shape bursts, a day holds an hour at the full token rate,
# and a month a week of full days (tests/limits/test_plans_and_settings.py checks each tier).
PLANS: dict[str, ScopeLimits] = {
    "free": ScopeLimits(rpm=10, tpm=10_000, daily_tokens=600_000, monthly_tokens=5_000_000),
    "starter": ScopeLimits(rpm=60, tpm=100_000, daily_tokens=6_000_000, monthly_tokens=50_000_000),
    "pro": ScopeLimits(rpm=200, tpm=500_000, daily_tokens=30_000_000, monthly_tokens=250_000_000),
    "enterprise": ScopeLimits(
        rpm=1_000, tpm=2_000_000, daily_tokens=120_000_000, monthly_tokens=1_000_000_000
    ),
}
PlanName = Literal["free", "starter", "pro", "enterprise"]


@dataclass(frozen=True, slots=True)
class WorkspaceLimits:
    """What the engine needs of a workspace's settings (see control/workspaces.py)."""

    plan: str | None = None
    limits: Mapping[str, Any] | None = None  # overrides of the plan's numbers
    user_limits: Mapping[str, Any] | None = None  # applied to each user separately
    budget_usd: float | None = None
    budget_period: Period | None = None
    budget_soft_usd: float | None = None
    credits_required: bool = False
    alert_webhook_url: str | None = None

    @classmethod
    def from_settings(cls, settings: Any) -> WorkspaceLimits:
        """From a WorkspaceSettings (or anything with the same attributes)."""

        def dumped(value: Any) -> Mapping[str, Any] | None:
            if value is None or isinstance(value, Mapping):
                return value
            return value.model_dump(exclude_none=True)

        return cls(
            plan=getattr(settings, "plan", None),
            limits=dumped(getattr(settings, "limits", None)),
            user_limits=dumped(getattr(settings, "user_limits", None)),
            budget_usd=getattr(settings, "budget_usd", None),
            budget_period=getattr(settings, "budget_period", None),
            budget_soft_usd=getattr(settings, "budget_soft_usd", None),
            credits_required=bool(getattr(settings, "credits_required", False)),
            alert_webhook_url=getattr(settings, "alert_webhook_url", None),
        )

    def scope_limits(self) -> ScopeLimits:
        """The workspace scope: plan defaults, then overrides, then the workspace budget."""
        base = PLANS.get(self.plan or "", EMPTY)
        own = ScopeLimits.from_mapping(self.limits)
        budget = ScopeLimits(
            budget_usd=self.budget_usd,
            budget_period=self.budget_period,
            budget_soft_usd=self.budget_soft_usd,
        )
        return budget.over(own.over(base))

    def user_scope_limits(self) -> ScopeLimits:
        return ScopeLimits.from_mapping(self.user_limits)


NO_WORKSPACE_LIMITS = WorkspaceLimits()
