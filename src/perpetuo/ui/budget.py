"""A workspace's budget and credit standing, for the alerts several pages show."""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass

from perpetuo.control import analytics
from perpetuo.limits.plans import DEFAULT_BUDGET_PERIOD, PERIODS
from perpetuo.limits.windows import window_of
from perpetuo.store.repos import credits as credit_rows
from perpetuo.store.timeutil import utcnow
from perpetuo.ui.context import WorkspacePage

ALL_TIME = dt.timedelta(days=399)  # the longest range usage analytics answer
# The budget-period menu: unset (the default period) first, then the others, each once.
PERIOD_CHOICES = [
    ("", f"{DEFAULT_BUDGET_PERIOD} (default)"),
    *((period, period) for period in PERIODS if period != DEFAULT_BUDGET_PERIOD),
]


@dataclass(frozen=True)
class BudgetStatus:
    period: str
    period_start: dt.datetime
    spent_usd: float
    budget_usd: float | None
    soft_usd: float | None
    credits_required: bool
    balance_usd: float | None  # None: credits are not required

    @property
    def level(self) -> str:
        """ok, soft (past the alert threshold), over (budget spent), or no_credits."""
        if self.credits_required and self.balance_usd is not None and self.balance_usd <= 0:
            return "no_credits"
        if self.budget_usd is not None and self.spent_usd >= self.budget_usd:
            return "over"
        if self.soft_usd is not None and self.spent_usd >= self.soft_usd:
            return "soft"
        return "ok"

    @property
    def used_fraction(self) -> float | None:
        if not self.budget_usd:
            return None
        return min(1.0, self.spent_usd / self.budget_usd)


async def budget_status(page: WorkspacePage) -> BudgetStatus:
    settings = page.settings
    period = settings.budget_period or DEFAULT_BUDGET_PERIOD
    window = window_of(period, time.time())
    now = utcnow()
    start = window.start or now - ALL_TIME
    rows = await analytics.usage_series(
        page.plane,
        page.actor,
        page.id,
        since=start,
        until=now + dt.timedelta(hours=1),
        granularity="day",
    )
    balance = None
    if settings.credits_required:  # every member sees what is left (only admins the ledger)
        async with page.plane.db.connect() as conn:
            balance = await credit_rows.balance(conn, page.id) / 1_000_000
    return BudgetStatus(
        period=period,
        period_start=start,
        spent_usd=sum(row["cost_usd"] for row in rows),
        budget_usd=settings.budget_usd,
        soft_usd=settings.budget_soft_usd,
        credits_required=settings.credits_required,
        balance_usd=balance,
    )
