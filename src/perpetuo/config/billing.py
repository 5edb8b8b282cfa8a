"""The `billing:` section of the config file: the plan catalog and what customers may buy.

Off unless `enabled: true`; a self-hosted install that sells nothing never sets it. The
Stripe keys are not here but in the environment (PERPETUO_STRIPE_*), like every secret.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

Tier = Literal["free", "starter", "pro", "enterprise"]
Usd = Annotated[float, Field(ge=0, le=1_000_000)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PlanLimits(_Strict):
    """Over the tier's own numbers (limits/plans.py); unset: the tier's."""

    rpm: Annotated[int, Field(ge=1)] | None = None
    tpm: Annotated[int, Field(ge=1)] | None = None
    daily_tokens: Annotated[int, Field(ge=1)] | None = None
    monthly_tokens: Annotated[int, Field(ge=1)] | None = None
    max_parallel: Annotated[int, Field(ge=1)] | None = None


class PlanConfig(_Strict):
    id: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")]
    name: Annotated[str, Field(min_length=1, max_length=80)]
    tier: Tier = Field(description="The limits tier the plan's workspaces get")
    monthly_usd: Usd = 0.0
    annual_usd: Usd | None = Field(default=None, description="None: no annual price")
    credits_usd: Usd = Field(
        default=0.0, description="Credits included per month (an annual payment adds 12 months')"
    )
    limits: PlanLimits | None = None
    features: list[Annotated[str, Field(max_length=200)]] = Field(default_factory=list)
    stripe_price_monthly: str | None = Field(
        default=None, description="An existing Stripe Price; else one is made by `sync`"
    )
    stripe_price_annual: str | None = None

    @property
    def free(self) -> bool:
        return self.monthly_usd == 0 and not self.annual_usd


class TopUpConfig(_Strict):
    presets_usd: list[Annotated[float, Field(gt=0)]] = Field(default=[10.0, 25.0, 50.0, 100.0])
    min_usd: Annotated[float, Field(gt=0)] = 5.0
    max_usd: Annotated[float, Field(gt=0)] = 1000.0


class AutoRechargeConfig(_Strict):
    enabled: bool = True
    min_threshold_usd: Annotated[float, Field(ge=0)] = 1.0
    min_amount_usd: Annotated[float, Field(gt=0)] = 5.0
    max_amount_usd: Annotated[float, Field(gt=0)] = 1000.0


class TrialConfig(_Strict):
    enabled: bool = False
    days: Annotated[int, Field(ge=1, le=365)] = 14
    plan: str | None = Field(default=None, description="The catalog plan whose limits apply")
    credits_usd: Usd = 5.0
    remind_days_before: Annotated[int, Field(ge=0, le=60)] = 3
    require_card: bool = Field(
        default=False,
        description="A card is taken first (Stripe Checkout, setup mode); one trial per card",
    )


class ReferralConfig(_Strict):
    enabled: bool = False
    referrer_credits_usd: Usd = 10.0
    referred_credits_usd: Usd = 10.0
    max_rewards_per_referrer: Annotated[int, Field(ge=0)] = 20


class BillingConfig(_Strict):
    enabled: bool = False
    currency: Literal["usd"] = "usd"  # credits are counted in micro-USD
    plans: list[PlanConfig] = Field(default_factory=list)
    free_plan: str | None = Field(
        default=None, description="Where a canceled, unpaid or ended-trial workspace goes"
    )
    topup: TopUpConfig = Field(default_factory=TopUpConfig)
    auto_recharge: AutoRechargeConfig = Field(default_factory=AutoRechargeConfig)
    low_balance_usd: Annotated[float, Field(ge=0)] = Field(
        default=5.0, description="Mail owners and admins when the balance falls below this"
    )
    grace_days: Annotated[int, Field(ge=0, le=60)] = Field(
        default=7, description="Days a failed renewal keeps the plan before the free plan"
    )
    require_credits: bool = Field(
        default=True, description="Workspaces that buy or try are made to spend credits"
    )
    pause_keys_below_zero: bool = Field(
        default=False,
        description="A refund or dispute that takes the balance below zero refuses every "
        "request of the workspace (credits_required) until it is paid back",
    )
    trial: TrialConfig = Field(default_factory=TrialConfig)
    referrals: ReferralConfig = Field(default_factory=ReferralConfig)
    success_path: str = "/ui/w/{workspace_id}/billing?checkout=done"
    cancel_path: str = "/ui/w/{workspace_id}/billing?checkout=canceled"

    @model_validator(mode="after")
    def _check(self) -> BillingConfig:
        ids = [p.id for p in self.plans]
        if len(set(ids)) != len(ids):
            raise ValueError("billing.plans: plan ids must be unique")
        for name in ("free_plan",):
            value = getattr(self, name)
            if value is not None and value not in ids:
                raise ValueError(f"billing.{name}: unknown plan {value!r}")
        if self.trial.plan is not None and self.trial.plan not in ids:
            raise ValueError(f"billing.trial.plan: unknown plan {self.trial.plan!r}")
        if self.free_plan is not None and not self.plan(self.free_plan).free:  # type: ignore[union-attr]
            raise ValueError("billing.free_plan: that plan has a price")
        if self.topup.min_usd > self.topup.max_usd:
            raise ValueError("billing.topup: min_usd is above max_usd")
        for preset in self.topup.presets_usd:
            if not self.topup.min_usd <= preset <= self.topup.max_usd:
                raise ValueError(f"billing.topup.presets_usd: {preset} is outside min..max")
        return self

    def plan(self, plan_id: str | None) -> PlanConfig | None:
        return next((p for p in self.plans if p.id == plan_id), None)
