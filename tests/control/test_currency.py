"""Display currencies at the service level: rates from the config and from a file (with their
dates), a workspace's currency checked against them, and budgets entered in a currency
stored in USD at the rate of the day."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from pydantic import ValidationError

from perpetuo.config.currency import CurrencyConfig
from perpetuo.control import money, workspaces
from perpetuo.control.actor import Actor
from perpetuo.schema.errors import GatewayError
from tests.support.people import make_user, make_workspace
from tests.support.plane import make_plane

RATES = {"INR": {"per_usd": 80.0, "date": "2026-12-01"}}


@pytest.fixture
async def plane(store_url):
    plane = await make_plane(store_url)
    plane.currency = CurrencyConfig.model_validate({"rates": RATES})
    yield plane
    await plane.db.dispose()


def test_rates_come_from_the_file_and_the_config_wins(tmp_path):
    path = tmp_path / "rates.json"
    path.write_text(
        json.dumps(
            {
                "EUR": {"per_usd": 0.9, "date": "2026-11-30"},
                "INR": {"per_usd": 70, "date": "2026-11-30"},
            }
        )
    )
    config = CurrencyConfig.model_validate({"rates_file": str(path), "rates": RATES})
    assert config.rate("EUR").per_usd == 0.9
    assert config.rate("EUR").date == dt.date(2026, 11, 30)
    assert config.rate("INR").per_usd == 80.0  # the config's own rate over the file's


@pytest.mark.parametrize(
    ("section", "problem"),
    [
        ({"rates": {"inr": {"per_usd": 80, "date": "2026-12-01"}}}, "not a currency code"),
        ({"rates": {"INR": {"per_usd": 0, "date": "2026-12-01"}}}, "per_usd"),
        ({"rates": {"INR": {"per_usd": 80}}}, "date"),
        ({"rates_file": "/no/such/rates.json"}, "rates.json"),
    ],
)
def test_bad_rates_are_refused_naming_what_is_wrong(section, problem):
    with pytest.raises(ValidationError, match=problem):
        CurrencyConfig.model_validate(section)


def test_amounts_convert_with_the_rate_and_its_date():
    inr = money.currency_of(CurrencyConfig.model_validate({"rates": RATES}), "INR")
    assert inr.from_micros(1_500_000) == 120.0 and inr.from_usd(2.5) == 200.0
    assert inr.label(8410) == "8,410.00 INR"
    assert inr.rate_note == "1 USD = 80 INR (rate of 2026-12-01)"
    assert inr.view() == {"code": "INR", "per_usd": 80.0, "rate_date": "2026-12-01"}
    # Unset, USD, or a currency whose rate the operator removed: dollars, unconverted.
    for code in (None, "USD", "EUR"):
        assert money.currency_of(CurrencyConfig(), code) is money.USD
    assert money.USD.label(100) == "$100.00" and money.USD.rate_note == ""


async def _owned(plane) -> tuple[Actor, str]:
    owner = await make_user(plane)
    return Actor(kind="user", user_id=owner), await make_workspace(plane, {owner: "owner"})


async def update(plane, actor, workspace_id, **body):
    spec = workspaces.WorkspaceUpdate.model_validate(body)
    return await workspaces.update_workspace(plane, actor, workspace_id, spec)


async def test_a_workspace_displays_only_a_currency_with_a_rate(plane):
    actor, workspace_id = await _owned(plane)
    view = await update(plane, actor, workspace_id, settings={"currency": "INR"})
    assert view["settings"]["currency"] == "INR"
    with pytest.raises(GatewayError) as exc:
        await update(plane, actor, workspace_id, settings={"currency": "JPY"})
    assert exc.value.status == 422 and exc.value.param == "settings.currency"
    assert "INR" in exc.value.message
    with pytest.raises(ValidationError):
        workspaces.WorkspaceUpdate.model_validate({"settings": {"currency": "rupees"}})
    assert (await money.workspace_currency(plane, workspace_id)).code == "INR"


async def test_a_budget_in_the_workspace_currency_is_stored_in_usd(plane):
    actor, workspace_id = await _owned(plane)
    view = await update(
        plane,
        actor,
        workspace_id,
        settings={"currency": "INR"},
        budget={"amount": 8000, "soft_amount": 6000, "period": "weekly"},
    )
    settings = view["settings"]
    assert settings["budget_usd"] == 100.0 and settings["budget_soft_usd"] == 75.0
    assert settings["budget_period"] == "weekly"
    # In dollars, whatever the display currency, when the entry says so.
    view = await update(plane, actor, workspace_id, budget={"amount": 5, "currency": "USD"})
    assert view["settings"]["budget_usd"] == 5.0
    with pytest.raises(GatewayError) as exc:
        await update(plane, actor, workspace_id, budget={"amount": 5, "currency": "EUR"})
    assert exc.value.status == 422 and exc.value.param == "budget.currency"
