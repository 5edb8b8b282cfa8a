"""Amounts in a workspace's display currency.

Costs are stored and enforced in micro-USD; a workspace may choose another currency to read
them in (its `currency` setting), at the rate the operator configured for it, which comes
with its date. A workspace whose currency has no rate (the operator removed it) reads USD.
A budget entered in the display currency becomes USD at the day's rate, once, when it is set.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select

from perpetuo.config.currency import CurrencyConfig
from perpetuo.control.errors import invalid
from perpetuo.control.plane import ControlPlane
from perpetuo.store.schema import workspaces

MICROS = 1_000_000
# Exports end with these: the cost in the display currency, at the rate of the given date.
CURRENCY_COLUMNS = ("cost", "currency", "per_usd", "rate_date")


@dataclass(frozen=True, slots=True)
class Currency:
    code: str
    per_usd: float = 1.0
    date: dt.date | None = None  # None: USD itself, no conversion

    def from_usd(self, usd: float | None) -> float | None:
        return None if usd is None else usd * self.per_usd

    def from_micros(self, micros: int | None) -> float | None:
        return None if micros is None else micros / MICROS * self.per_usd

    def to_usd(self, amount: float) -> float:
        return amount / self.per_usd

    def entry(self, usd: float) -> float:
        """A USD figure as a form shows it in this currency (two decimals; USD as it is)."""
        return usd if self.date is None else round(usd * self.per_usd, 2)

    def entered(self, amount: float | None, stored_usd: float | None) -> float | None:
        """A figure entered in this currency, in USD: one shown unchanged keeps its dollars
        (no drift through rounding or a newer rate); a new one converts at today's rate."""
        if amount is None or self.date is None:
            return amount
        if stored_usd is not None and amount == self.entry(stored_usd):
            return stored_usd
        return round(self.to_usd(amount), 6)

    def view(self) -> dict[str, Any]:
        """What answers carry beside converted amounts: the currency, its rate and its date."""
        return {
            "code": self.code,
            "per_usd": self.per_usd,
            "rate_date": self.date.isoformat() if self.date else None,
        }

    def label(self, amount: float | None) -> str:
        if amount is None:
            return "—"
        digits = 2 if abs(amount) >= 1 or amount == 0 else 4 if abs(amount) >= 0.01 else 6
        text = f"{amount:,.{digits}f}"
        return f"${text}" if self.code == "USD" else f"{text} {self.code}"

    @property
    def rate_note(self) -> str:
        """`1 USD = 84.10 INR (rate of 2026-12-01)`; empty for USD."""
        if self.date is None:
            return ""
        return f"1 USD = {self.per_usd:,.4g} {self.code} (rate of {self.date.isoformat()})"


USD = Currency("USD")


def currency_of(config: CurrencyConfig, code: str | None) -> Currency:
    """The workspace's display currency; USD when unset or when no rate is configured."""
    if not code or code == "USD":
        return USD
    rate = config.rate(code)
    if rate is None:
        return USD
    return Currency(code, rate.per_usd, rate.date)


class BudgetEntry(BaseModel):
    """A workspace budget in a currency other than USD: converted at the operator's rate of
    the day when it is set, and stored (and enforced) in USD from then on."""

    model_config = ConfigDict(extra="forbid")

    amount: Annotated[float, Field(gt=0)] = Field(description="Spend limit per budget period")
    soft_amount: Annotated[float, Field(gt=0)] | None = Field(
        default=None, description="Alert once at this spend"
    )
    period: Literal["daily", "weekly", "monthly", "total"] | None = Field(
        default=None, description="Default: monthly"
    )
    currency: str | None = Field(
        default=None, description="The amounts' currency; default: the workspace's display one"
    )


def budget_settings(
    config: CurrencyConfig, entry: BudgetEntry, workspace_currency: str | None
) -> tuple[dict[str, Any], Currency]:
    """The USD settings a budget entry stands for, and the rate used; 422 without a rate."""
    code = entry.currency or workspace_currency or "USD"
    currency = currency_of(config, code)
    if currency.code != code:
        raise invalid(
            f"No exchange rate for {code} is configured on this server, so a budget cannot be "
            "given in it.",
            "budget.currency",
        )
    values: dict[str, Any] = {"budget_usd": round(currency.to_usd(entry.amount), 6)}
    if entry.soft_amount is not None:
        values["budget_soft_usd"] = round(currency.to_usd(entry.soft_amount), 6)
    if entry.period is not None:
        values["budget_period"] = entry.period
    return values, currency


def check_display_currency(config: CurrencyConfig, code: str | None) -> None:
    """A workspace may display only USD or a currency the operator gave a rate for."""
    if code is None or code == "USD":
        return
    if config.rate(code) is None:
        known = ", ".join(["USD", *sorted(config.rates)])
        raise invalid(
            f"No exchange rate for {code!r} is configured on this server (it has: {known}).",
            "settings.currency",
        )


async def workspace_currency(plane: ControlPlane, workspace_id: str) -> Currency:
    """The display currency of a workspace the caller was already allowed to read."""
    async with plane.db.connect() as conn:
        settings = await conn.scalar(
            select(workspaces.c.settings).where(workspaces.c.id == workspace_id)
        )
    return currency_of(plane.currency, (settings or {}).get("currency"))


def with_costs(rows: list[dict[str, Any]], currency: Currency) -> list[dict[str, Any]]:
    """Usage rows with `cost` and `saved` in the display currency beside the USD figures."""
    return [
        {
            **row,
            "cost": currency.from_usd(row.get("cost_usd")),
            "saved": currency.from_usd(row.get("saved_usd")),
        }
        for row in rows
    ]
