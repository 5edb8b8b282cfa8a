"""The config file's `currency:` section: exchange rates the operator sets, for showing costs
in a workspace's own currency.

Costs are kept in micro-USD everywhere; a rate only changes what people read (the dashboard,
usage answers and exports) and how a budget entered in another currency becomes USD. Each
rate carries the date it is from, shown beside every converted amount. Rates come from the
file itself or from `rates_file` (JSON or YAML of the same shape), the file's own winning.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, field_validator, model_validator

CODE = re.compile(r"^[A-Z]{3}$")  # ISO 4217


class ExchangeRate(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    per_usd: Annotated[float, Field(gt=0, lt=1e7)] = Field(
        description="Units of the currency one US dollar buys"
    )
    date: dt.date = Field(description="The day the rate is from (shown with every amount)")


_RATES = TypeAdapter(dict[str, ExchangeRate])


def _codes(rates: dict[str, ExchangeRate]) -> dict[str, ExchangeRate]:
    for code in rates:
        if not CODE.match(code):
            raise ValueError(f"{code!r} is not a currency code (three capital letters: EUR)")
    return rates


class CurrencyConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    rates: dict[str, ExchangeRate] = Field(
        default_factory=dict,
        description="Currency code -> {per_usd, date}, e.g. INR: {per_usd: 84.1, date: 2026-12-01}",
    )
    rates_file: str | None = Field(
        default=None,
        description="A JSON or YAML file of more rates, same shape (read at start and reload)",
    )

    _check_codes = field_validator("rates")(_codes)

    @model_validator(mode="before")
    @classmethod
    def _load_file(cls, data: Any) -> Any:
        if not isinstance(data, dict) or not data.get("rates_file"):
            return data
        path = Path(data["rates_file"])
        try:
            loaded = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise ValueError(f"rates_file {str(path)!r}: cannot read it ({exc})") from None
        try:
            from_file = _codes(_RATES.validate_python(loaded))
        except ValueError as exc:
            raise ValueError(f"rates_file {str(path)!r}: {exc}") from None
        return {**data, "rates": {**from_file, **(data.get("rates") or {})}}

    def rate(self, code: str) -> ExchangeRate | None:
        return self.rates.get(code)
