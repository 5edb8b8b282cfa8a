"""Prepaid credits: grants through the control-plane service (platform admins only), requests
reserving their maximum cost against the balance, 402 when it runs out, a grant restoring
service, usage written back to the ledger, and a restarted engine reading the ledger."""

from __future__ import annotations

import asyncio

import pytest
from pydantic import ValidationError
from sqlalchemy import select

from perpetuo.control import credits
from perpetuo.control.actor import Actor
from perpetuo.limits import LimitEngine, WorkspaceLimits
from perpetuo.limits.history import DatabaseHistory
from perpetuo.limits.ledger import CreditLedgerWriter
from perpetuo.limits.memory import MemoryBackend
from perpetuo.schema.errors import ErrorCode, GatewayError
from perpetuo.store.schema import audit_log, credit_ledger
from tests.limits.support import admit_all, attempt, engine, make_request
from tests.support.admin_api import MASTER, admin_api, bearer
from tests.support.people import make_user, make_workspace, sign_in
from tests.support.plane import make_plane

ROOT = Actor(kind="master", is_superadmin=True)
PAYING = WorkspaceLimits(credits_required=True)


def grant(usd: float, note: str = "top-up") -> credits.CreditEntryCreate:
    return credits.CreditEntryCreate(amount_usd=usd, note=note)


@pytest.fixture
async def plane(store_url):
    plane = await make_plane(store_url)
    yield plane
    await plane.db.dispose()


def paying_engine(backend, plane) -> LimitEngine:
    limits = engine(
        backend,
        history=DatabaseHistory(plane.db),
        ledger=CreditLedgerWriter(plane.db, interval=3600),
    )
    plane.credit_listener = limits.credits_granted
    return limits


async def test_credits_run_out_and_a_grant_restores_service(backends, plane):
    workspace_id = await make_workspace(plane, {})
    limits = paying_engine(backends(), plane)

    def request(max_cost: int = 50_000):
        return make_request(workspace_id, "key_1", workspace=PAYING, max_cost_micros=max_cost)

    with pytest.raises(GatewayError) as refused:  # no credit yet
        await limits.admit(request())
    assert (refused.value.status, refused.value.code) == (402, ErrorCode.INSUFFICIENT_CREDITS)
    entry = await credits.add_entry(plane, ROOT, workspace_id, grant(1.0, "welcome"))
    assert (entry["kind"], entry["balance_micros"]) == ("grant", 1_000_000)
    admitted, refused = await admit_all([limits], [request() for _ in range(30)])
    assert (len(admitted), len(refused)) == (20, 10)  # $1 holds 20 requests of up to $0.05
    assert "has $0.00 of prepaid credit available" in refused[0].message
    await asyncio.gather(*(a.settle(10, 30_000) for a in admitted))  # they cost $0.60
    admitted, _ = await admit_all([limits], [request() for _ in range(30)])
    assert len(admitted) == 8  # $0.40 left
    await asyncio.gather(*(a.settle(10, 50_000) for a in admitted))
    with pytest.raises(GatewayError):
        await limits.admit(request(1))  # exhausted: even a tiny request is refused
    await credits.add_entry(plane, ROOT, workspace_id, grant(0.1))
    admitted, _ = await admit_all([limits], [request() for _ in range(3)])
    assert len(admitted) == 2  # the grant reached the live balance at once
    await asyncio.gather(*(a.settle(10, 0) for a in admitted))
    # Usage goes to the ledger in batches; the ledger's balance then matches the live one.
    await limits.ledger.flush()
    async with plane.db.connect() as conn:
        rows = (
            await conn.execute(
                select(credit_ledger)
                .where(credit_ledger.c.workspace_id == workspace_id)
                .order_by(credit_ledger.c.id)
            )
        ).all()
    assert [r.kind for r in rows] == ["grant", "grant", "usage"]
    assert rows[2].amount_micros == -1_000_000
    assert sum(r.amount_micros for r in rows) == 100_000


async def test_a_new_instance_starts_from_the_ledger(plane):
    workspace_id = await make_workspace(plane, {})
    first = paying_engine(MemoryBackend(), plane)
    await credits.add_entry(plane, ROOT, workspace_id, grant(0.1))
    admission = await first.admit(
        make_request(workspace_id, workspace=PAYING, max_cost_micros=60_000)
    )
    await admission.settle(10, 60_000)
    await first.aclose()  # writes its usage to the ledger
    second = paying_engine(MemoryBackend(), plane)
    admitted, refused = await admit_all(
        [second],
        [make_request(workspace_id, workspace=PAYING, max_cost_micros=20_000) for _ in range(3)],
    )
    assert (len(admitted), len(refused)) == (2, 1)  # $0.04 left of $0.10


async def test_only_platform_admins_grant_credits_and_admins_read_them(plane):
    owner, viewer, stranger = [await make_user(plane) for _ in range(3)]
    workspace_id = await make_workspace(plane, {owner: "owner", viewer: "viewer"})
    for who, status in ((owner, 403), (stranger, 404)):
        with pytest.raises(GatewayError) as refused:
            await credits.add_entry(
                plane, Actor(kind="user", user_id=who), workspace_id, grant(100)
            )
        assert refused.value.status == status
    root = await make_user(plane, superadmin=True)
    await credits.add_entry(
        plane,
        Actor(kind="user", user_id=root, is_superadmin=True),
        workspace_id,
        grant(2.5, "trial"),
    )
    await credits.add_entry(
        plane, ROOT, workspace_id, credits.CreditEntryCreate(amount_usd=-0.5, note="correction")
    )
    balance, page = await credits.ledger(
        plane, Actor(kind="user", user_id=owner), workspace_id, limit=1, cursor=None
    )
    assert balance == 2_000_000 and len(page.rows) == 1 and page.next_cursor
    assert page.rows[0].kind == "adjustment" and page.rows[0].amount_micros == -500_000
    _, rest = await credits.ledger(plane, ROOT, workspace_id, limit=5, cursor=page.next_cursor)
    assert [r.note for r in rest.rows] == ["trial"] and rest.rows[0].actor_id == root
    with pytest.raises(GatewayError) as refused:
        await credits.ledger(
            plane, Actor(kind="user", user_id=viewer), workspace_id, limit=5, cursor=None
        )
    assert refused.value.status == 403
    async with plane.db.connect() as conn:
        actions = (
            (
                await conn.execute(
                    select(audit_log.c.action).where(audit_log.c.workspace_id == workspace_id)
                )
            )
            .scalars()
            .all()
        )
    assert sorted(actions) == ["credits.adjustment", "credits.grant"]
    for bad in (
        {"amount_usd": 0},
        {"amount_usd": -1, "kind": "grant"},
        {"amount_usd": 2_000_000},
        {"amount_usd": 1, "note": "x" * 301},
    ):
        with pytest.raises(ValidationError):
            credits.CreditEntryCreate.model_validate(bad)


async def test_credits_admin_api(tmp_path):
    async with admin_api(f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}", tmp_path) as api:
        owner = await make_user(api.plane)
        workspace_id = await make_workspace(api.plane, {owner: "owner"})
        token = (await sign_in(api.plane, owner)).access_token
        path = f"/api/workspaces/{workspace_id}/credits"
        denied = await api.http.post(path, headers=bearer(token), json={"amount_usd": 5})
        assert denied.status_code == 403
        created = await api.http.post(
            path, headers=MASTER, json={"amount_usd": 5, "note": "welcome"}
        )
        assert created.status_code == 201, created.text
        assert created.json()["data"]["balance_usd"] == 5.0
        bad = await api.http.post(path, headers=MASTER, json={"amount_usd": 0})
        assert bad.status_code == 422
        listed = await api.http.get(path, headers=bearer(token), params={"limit": 10})
        body = listed.json()
        assert body["balance"] == {"balance_micros": 5_000_000, "balance_usd": 5.0}
        assert [e["note"] for e in body["data"]] == ["welcome"] and body["has_more"] is False


async def test_instances_without_redis_pick_up_grants_from_the_ledger(plane):
    """Two instances on memory counters: a grant made through one reaches the other when
    that one re-reads the ledger (every credit_refresh_seconds)."""
    workspace_id = await make_workspace(plane, {})
    history, ledger = DatabaseHistory(plane.db), CreditLedgerWriter(plane.db, interval=3600)
    granting = paying_engine(MemoryBackend(), plane)
    other = engine(MemoryBackend(), history=history, ledger=ledger, credit_refresh_seconds=0)

    def request():
        return make_request(workspace_id, workspace=PAYING, max_cost_micros=10_000)

    await credits.add_entry(plane, ROOT, workspace_id, grant(0.01))
    await (await other.admit(request())).settle(1, 10_000)  # spends it all, on its own counter
    with pytest.raises(GatewayError):
        await other.admit(request())
    await credits.add_entry(plane, ROOT, workspace_id, grant(1.0))  # told to `granting` only
    outcome = None
    for _ in range(100):
        outcome = await attempt(
            other.admit(make_request(workspace_id, workspace=PAYING, max_cost_micros=10_000))
        )
        if not isinstance(outcome, GatewayError):
            break
        await asyncio.sleep(0.01)
    assert not isinstance(outcome, GatewayError)
    await granting.aclose()
    await other.aclose()
