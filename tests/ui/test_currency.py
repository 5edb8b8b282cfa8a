"""Costs in a workspace's currency, as people read them: the dashboard's overview and usage
pages, the usage and request-log CSVs and the usage API show the converted amount with the
operator's rate and its date; a budget entered in the currency is kept in USD."""

from __future__ import annotations

import csv
import io
import time

import pytest

from perpetuo.auth.credential_crypto import new_key_spec
from perpetuo.config.currency import CurrencyConfig
from perpetuo.metering.record import RequestRecord
from perpetuo.metering.writer import write_batch
from tests.support.admin_api import bearer
from tests.ui.world import World, world

RATE_NOTE = "1 USD = 80 INR (rate of 2026-12-01)"


@pytest.fixture
async def w(tmp_path, monkeypatch):
    monkeypatch.setenv("PERPETUO_ENCRYPTION_KEYS", new_key_spec("k1"))
    async with world(tmp_path) as made:
        made.api.plane.currency = CurrencyConfig.model_validate(
            {"rates": {"INR": {"per_usd": 80, "date": "2026-12-01"}}}
        )
        yield made


async def spend(w: World, usd_micros: int) -> None:
    record = RequestRecord(
        id="req_rupees",
        workspace_id=w.a.workspace_id,
        created_at=time.time(),
        endpoint="chat",
        status=200,
        alias="gpt-4o-mini",
        cost_micros=usd_micros,
    )
    await write_batch(w.api.plane.db, [record])


async def set_currency(w: World, code: str) -> None:
    owner = w.a.people["owner"]
    response = await w.api.http.patch(
        f"/api/workspaces/{w.a.workspace_id}",
        headers=bearer(owner.access_token),
        json={"settings": {"currency": code}},
    )
    assert response.status_code == 200, response.text


async def test_pages_and_exports_show_the_workspace_currency_with_its_rate(w: World):
    await spend(w, 1_250_000)  # $1.25 = 100 INR at 80
    viewer = w.a.people["viewer"]
    base = f"/ui/w/{w.a.workspace_id}"
    before = (await viewer.get(f"{base}/usage?range=24h")).text
    assert "INR" not in before and RATE_NOTE not in before

    await set_currency(w, "INR")
    for page in (f"{base}/usage?range=24h", base):  # usage, overview
        html = (await viewer.get(page)).text
        assert "100.00 INR" in html and RATE_NOTE in html, page

    usage_csv = await viewer.get(f"{base}/usage/export.csv?range=24h")
    rows = list(csv.DictReader(io.StringIO(usage_csv.text)))
    spent = [r for r in rows if float(r["cost_usd"]) > 0]
    assert len(spent) == 1 and float(spent[0]["cost"]) == pytest.approx(100.0)
    assert {(r["currency"], r["per_usd"], r["rate_date"]) for r in rows} == {
        ("INR", "80.0", "2026-12-01")
    }

    logs_csv = await viewer.get(f"{base}/logs/export.csv?range=24h")
    (row,) = [r for r in csv.DictReader(io.StringIO(logs_csv.text)) if r["id"] == "req_rupees"]
    assert float(row["cost"]) == pytest.approx(100.0) and row["cost_usd"] == "1.25"
    assert (row["currency"], row["rate_date"]) == ("INR", "2026-12-01")

    api = await w.api.http.get(
        f"/api/workspaces/{w.a.workspace_id}/usage",
        headers=bearer(viewer.access_token),
    )
    body = api.json()
    assert body["currency"] == {"code": "INR", "per_usd": 80.0, "rate_date": "2026-12-01"}
    assert sum(r["cost"] for r in body["data"]) == pytest.approx(100.0)
    assert sum(r["cost_usd"] for r in body["data"]) == pytest.approx(1.25)


async def test_a_budget_entered_in_rupees_is_enforced_in_dollars(w: World):
    await set_currency(w, "INR")
    owner = w.a.people["owner"]
    response = await w.api.http.patch(
        f"/api/workspaces/{w.a.workspace_id}",
        headers=bearer(owner.access_token),
        json={"budget": {"amount": 4000, "period": "monthly"}},
    )
    assert response.status_code == 200, response.text
    assert response.json()["data"]["settings"]["budget_usd"] == 50.0
    html = (await owner.get(f"/ui/w/{w.a.workspace_id}/usage?range=24h")).text
    assert "of 4,000.00 INR" in html
    refused = await w.api.http.patch(
        f"/api/workspaces/{w.a.workspace_id}",
        headers=bearer(owner.access_token),
        json={"settings": {"currency": "JPY"}},
    )
    assert refused.status_code == 422 and refused.json()["error"]["param"] == "settings.currency"


async def test_the_dashboard_sets_the_currency_and_a_budget_in_it(w: World):
    owner = w.a.people["owner"]
    base = f"/ui/w/{w.a.workspace_id}"
    settings = (await owner.get(f"{base}/settings")).text
    assert "INR (1 USD = 80 INR, rate of 2026-12-01)" in settings
    saved = await owner.post(
        f"{base}/settings",
        {
            "name": "renamed",
            "default_strategy": "default",
            "log_retention_days": "30",
            "chat_session_retention_days": "30",
            "currency": "INR",
        },
    )
    assert saved.status_code == 303, saved.text[:500]
    limits = (await owner.get(f"{base}/limits")).text
    assert "Budget (INR)" in limits
    saved = await owner.post(
        f"{base}/limits/budget", {"budget_usd": "8000", "budget_soft_usd": "6000"}
    )
    assert saved.status_code == 303, saved.text[:500]
    stored = await workspace_settings(w)
    assert (stored["budget_usd"], stored["budget_soft_usd"]) == (100.0, 75.0)
    limits = (await owner.get(f"{base}/limits")).text
    assert 'value="8000.0"' in limits and "8,000.00 INR per monthly period" in limits
    # Saved again unchanged after the rate moved: the dollars stay what they were.
    w.api.plane.currency = CurrencyConfig.model_validate(
        {"rates": {"INR": {"per_usd": 90, "date": "2026-12-02"}}}
    )
    resaved = await owner.post(
        f"{base}/limits/budget", {"budget_usd": "9000", "budget_soft_usd": "100"}
    )
    assert resaved.status_code == 303
    stored = await workspace_settings(w)
    assert stored["budget_usd"] == 100.0 and stored["budget_soft_usd"] == pytest.approx(100 / 90)


async def workspace_settings(w: World) -> dict:
    response = await w.api.http.get(
        f"/api/workspaces/{w.a.workspace_id}",
        headers=bearer(w.a.people["owner"].access_token),
    )
    return response.json()["data"]["settings"]
