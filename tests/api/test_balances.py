"""GET /v1/key and GET /v1/credits: what a key may still spend and what its workspace has
left, read with the key itself; from the limits engine's live counters where they exist,
else from the store; never another workspace's figures."""

from __future__ import annotations

import time

import pytest

from perpetuo.limits import LimitRequest
from perpetuo.limits.plans import WorkspaceLimits
from perpetuo.metering.record import RequestRecord
from perpetuo.metering.writer import write_batch
from perpetuo.store.repos.credits import add_entry
from perpetuo.store.timeutil import utcnow
from tests.support.admin_api import MASTER, admin_api, bearer, error_of
from tests.support.people import make_user, make_workspace, sign_in


@pytest.fixture
async def api(tmp_path):
    async with admin_api(f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}", tmp_path) as api:
        yield api


async def _tenant(api, name: str, key_limits: dict | None = None) -> dict:
    owner = await make_user(api.plane, f"{name}@example.com")
    workspace_id = await make_workspace(api.plane, {owner: "owner"})
    token = (await sign_in(api.plane, owner)).access_token
    created = await api.http.post(
        f"/api/workspaces/{workspace_id}/keys",
        headers=bearer(token),
        json={"name": f"{name} key", "limits": key_limits or {}},
    )
    assert created.status_code == 201, created.text
    key = created.json()["data"]
    return {"workspace_id": workspace_id, "key": key["key"], "key_id": key["id"], "owner": owner}


async def _spent(api, t: dict, usd: float, request_id: str) -> None:
    """A request of the key that cost `usd`, as the request-log writer records it."""
    record = RequestRecord(
        id=request_id,
        workspace_id=t["workspace_id"],
        key_id=t["key_id"],
        created_at=time.time(),
        endpoint="chat",
        status=200,
        cost_micros=int(usd * 1_000_000),
    )
    await write_batch(api.plane.db, [record])


async def test_a_key_reads_its_limits_spend_and_remaining_budget(api):
    limits = {"budget_usd": 10.0, "budget_period": "monthly", "rpm": 30, "daily_tokens": 5000}
    t = await _tenant(api, "ann", limits)
    await _spent(api, t, 2.5, "req_a1")
    response = await api.http.get("/v1/key", headers=bearer(t["key"]))
    assert response.status_code == 200, response.text
    data = response.json()["data"]
    assert data["name"] == "ann key" and data["id"] == t["key_id"]
    assert data["label"].startswith("pk_live_") and data["label"].endswith(t["key"][-4:])
    assert t["key"] not in response.text  # never the secret itself
    assert (data["limit"], data["usage"], data["limit_remaining"]) == (10.0, 2.5, 7.5)
    assert data["limit_reset"] == "monthly"
    assert data["rate_limit"] == {"requests": 30, "tokens": None, "interval": "1m"}
    assert data["quotas"]["daily_tokens"]["limit"] == 5000

    # A request settles through the limits engine: its live counter is what counts now.
    gateway = api.app.gateway
    state = await gateway.workspace(await gateway.authenticator.authenticate(bearer(t["key"])))
    admission = await gateway.limits.admit(
        LimitRequest(
            request_id="req_live",
            workspace_id=t["workspace_id"],
            key_id=t["key_id"],
            key_limits=limits,
            workspace=state.limits,
            max_cost_micros=2_000_000,
        )
    )
    await admission.settle(100, 1_000_000)
    data = (await api.http.get("/v1/key", headers=bearer(t["key"]))).json()["data"]
    assert (data["usage"], data["limit_remaining"]) == (3.5, 6.5)
    assert data["quotas"]["daily_tokens"]["used"] == 100


async def test_a_key_without_a_budget_reports_its_spend_so_far(api):
    t = await _tenant(api, "bo")
    await _spent(api, t, 0.75, "req_b1")
    data = (await api.http.get("/api/v1/key", headers=bearer(t["key"]))).json()["data"]
    assert (data["limit"], data["limit_remaining"], data["usage"]) == (None, None, 0.75)


async def test_credits_show_granted_used_and_left_live(api):
    t = await _tenant(api, "cy")
    granted = await api.http.post(
        f"/api/workspaces/{t['workspace_id']}/credits", headers=MASTER, json={"amount_usd": 20}
    )
    assert granted.status_code == 201
    async with api.plane.db.begin() as conn:
        row = {"workspace_id": t["workspace_id"], "kind": "usage", "amount_micros": -5_000_000}
        await add_entry(conn, {**row, "note": None, "actor_id": None, "created_at": utcnow()})
    data = (await api.http.get("/v1/credits", headers=bearer(t["key"]))).json()["data"]
    assert data["workspace_id"] == t["workspace_id"]
    assert (data["total_credits"], data["total_usage"], data["remaining"]) == (20.0, 5.0, 15.0)

    gateway = api.app.gateway
    admission = await gateway.limits.admit(
        LimitRequest(
            request_id="req_credit",
            workspace_id=t["workspace_id"],
            key_id=t["key_id"],
            workspace=WorkspaceLimits(credits_required=True),
            max_cost_micros=1_000_000,
        )
    )
    await admission.settle(10, 1_000_000)  # not yet in the ledger: the live balance has it
    data = (await api.http.get("/v1/credits", headers=bearer(t["key"]))).json()["data"]
    assert (data["total_credits"], data["total_usage"], data["remaining"]) == (20.0, 6.0, 14.0)


async def test_a_key_sees_only_its_own_workspace(api):
    a = await _tenant(api, "dee", {"budget_usd": 3.0})
    b = await _tenant(api, "eve")
    await _spent(api, a, 1.0, "req_d1")
    await api.http.post(
        f"/api/workspaces/{a['workspace_id']}/credits", headers=MASTER, json={"amount_usd": 99}
    )
    for path in ("/v1/key", "/v1/credits"):
        response = await api.http.get(path, headers=bearer(b["key"]))
        assert response.status_code == 200
        for leak in (a["workspace_id"], a["key_id"], "dee", "99"):
            assert leak not in response.text, (path, leak)
    credits = (await api.http.get("/v1/credits", headers=bearer(b["key"]))).json()["data"]
    assert credits["total_credits"] == 0 and credits["workspace_id"] == b["workspace_id"]
    key = (await api.http.get("/v1/key", headers=bearer(b["key"]))).json()["data"]
    assert (key["id"], key["usage"], key["limit"]) == (b["key_id"], 0.0, None)


async def test_balances_need_a_valid_key(api):
    for path in ("/v1/key", "/v1/credits"):
        missing = await api.http.get(path)
        assert missing.status_code == 401 and error_of(missing)["code"] == "missing_api_key"
        wrong = await api.http.get(path, headers=bearer("pk_live_" + "x" * 43))
        assert wrong.status_code == 401 and error_of(wrong)["code"] == "invalid_api_key"


async def test_members_read_the_balance_without_admin_rights(api):
    t = await _tenant(api, "fay")
    viewer = await make_user(api.plane, "viewer@example.com")
    async with api.plane.db.begin() as conn:
        from sqlalchemy import insert

        from perpetuo.store.schema import memberships

        await conn.execute(
            insert(memberships).values(
                workspace_id=t["workspace_id"], user_id=viewer, role="viewer", created_at=utcnow()
            )
        )
    await api.http.post(
        f"/api/workspaces/{t['workspace_id']}/credits", headers=MASTER, json={"amount_usd": 8}
    )
    headers = bearer((await sign_in(api.plane, viewer)).access_token)
    ledger = await api.http.get(f"/api/workspaces/{t['workspace_id']}/credits", headers=headers)
    assert ledger.status_code == 403  # the ledger stays with admins
    balance = await api.http.get(
        f"/api/workspaces/{t['workspace_id']}/credits/balance", headers=headers
    )
    assert balance.status_code == 200
    assert balance.json()["data"]["remaining_usd"] == 8.0
