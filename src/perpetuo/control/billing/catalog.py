"""The plan catalog: the config file's plans, their Stripe Prices, and how they read.

Each priced plan maps to one Stripe Product (`perpetuo_<plan>`) and a Price per interval,
found by a lookup key that carries the amount (`perpetuo_pro_month_4900`): changing a price
in the file makes a new Stripe Price, and existing subscribers keep theirs until they change
plan. Prices named in the file (`stripe_price_monthly`) are used as they are. The mapping is
made on first need and kept; events naming a price the catalog does not know are answered
from a fresh sync.
"""

from __future__ import annotations

import asyncio
from typing import Any, Literal

from perpetuo.config.billing import BillingConfig, PlanConfig
from perpetuo.control.billing.stripe_api import StripeAPI
from perpetuo.limits.plans import PLANS, ScopeLimits

Interval = Literal["month", "year"]
INTERVALS: tuple[Interval, ...] = ("month", "year")


def cents(usd: float) -> int:
    return round(usd * 100)


def price_usd(plan: PlanConfig, interval: Interval) -> float | None:
    return plan.monthly_usd if interval == "month" else plan.annual_usd


def lookup_key(plan: PlanConfig, interval: Interval) -> str:
    amount = price_usd(plan, interval) or 0.0
    return f"perpetuo_{plan.id}_{interval}_{cents(amount)}"


def included_micros(plan: PlanConfig, interval: Interval) -> int:
    """Credits one full period of the plan includes."""
    months = 12 if interval == "year" else 1
    return round(plan.credits_usd * months * 1_000_000)


def plan_limits(plan: PlanConfig) -> ScopeLimits:
    """The limits a workspace on this plan gets: its tier's, with the plan's own over them."""
    own = ScopeLimits.from_mapping(plan.limits.model_dump(exclude_none=True) if plan.limits else {})
    return own.over(PLANS[plan.tier])


class Catalog:
    def __init__(self, config: BillingConfig, stripe: StripeAPI) -> None:
        self.config = config
        self.stripe = stripe
        self._prices: dict[tuple[str, Interval], str] = {}
        self._plans_by_price: dict[str, tuple[str, Interval]] = {}
        self._lock = asyncio.Lock()
        self._synced = False
        for plan in config.plans:
            for interval, given in (
                ("month", plan.stripe_price_monthly),
                ("year", plan.stripe_price_annual),
            ):
                if given:
                    self._remember(plan.id, interval, given)  # type: ignore[arg-type]

    @property
    def plans(self) -> list[PlanConfig]:
        return self.config.plans

    def plan(self, plan_id: str | None) -> PlanConfig | None:
        return self.config.plan(plan_id)

    def _remember(self, plan_id: str, interval: Interval, price_id: str) -> None:
        self._prices[(plan_id, interval)] = price_id
        self._plans_by_price[price_id] = (plan_id, interval)

    async def sync(self) -> dict[str, dict[str, str]]:
        """Find or make every priced plan's Stripe Price; {plan: {interval: price id}}."""
        async with self._lock:
            wanted = {
                lookup_key(plan, interval): (plan, interval)
                for plan in self.plans
                for interval in INTERVALS
                if price_usd(plan, interval) and (plan.id, interval) not in self._prices
            }
            if wanted:
                found = await self.stripe.prices_by_lookup_key(list(wanted))
                for price in found:
                    plan, interval = wanted.pop(price["lookup_key"])
                    self._remember(plan.id, interval, price["id"])
                for key, (plan, interval) in wanted.items():
                    price = await self.stripe.create_price(
                        {"id": f"perpetuo_{plan.id}", "name": plan.name},
                        {
                            "currency": self.config.currency,
                            "unit_amount": cents(price_usd(plan, interval) or 0),
                            "recurring": {"interval": interval},
                            "lookup_key": key,
                            "metadata": {"plan_id": plan.id},
                        },
                    )
                    self._remember(plan.id, interval, price["id"])
            self._synced = True
        mapping: dict[str, dict[str, str]] = {}
        for (plan_id, interval), price_id in self._prices.items():
            mapping.setdefault(plan_id, {})[interval] = price_id
        return mapping

    async def price_id(self, plan: PlanConfig, interval: Interval) -> str:
        if (plan.id, interval) not in self._prices:
            await self.sync()
        return self._prices[(plan.id, interval)]

    async def plan_of_price(self, price_id: str | None) -> tuple[PlanConfig, Interval] | None:
        if not price_id:
            return None
        if price_id not in self._plans_by_price and not self._synced:
            await self.sync()
        found = self._plans_by_price.get(price_id)
        if found is None:
            return None
        plan = self.plan(found[0])
        return (plan, found[1]) if plan is not None else None

    def view(self, plan: PlanConfig) -> dict[str, Any]:
        limits = plan_limits(plan)
        return {
            "id": plan.id,
            "object": "plan",
            "name": plan.name,
            "tier": plan.tier,
            "monthly_usd": plan.monthly_usd,
            "annual_usd": plan.annual_usd,
            "credits_usd": plan.credits_usd,
            "free": plan.free,
            "limits": {
                "rpm": limits.rpm,
                "tpm": limits.tpm,
                "daily_tokens": limits.daily_tokens,
                "monthly_tokens": limits.monthly_tokens,
                "max_parallel": limits.max_parallel,
            },
            "features": list(plan.features),
            "stripe_prices": {
                interval: self._prices[(plan.id, interval)]
                for interval in INTERVALS
                if (plan.id, interval) in self._prices
            },
        }
