"""Several gateway instances on one PostgreSQL and Redis: each alert fires, resolves and is
delivered once. And e-mail alerts through the outbox to a real SMTP server."""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools

from sqlalchemy import update

from perpetuo.auth.credential_crypto import new_key_spec
from perpetuo.control.alerts.budget import raise_budget_alert
from perpetuo.store.schema import api_keys
from perpetuo.store.timeutil import utcnow
from tests.control.alerts.conftest import history, make_channel, make_rule, quiet
from tests.control.alerts.test_rules import _budget_event
from tests.support.admin_api import MASTER, admin_api, bearer, error_of
from tests.support.people import make_user, make_workspace, sign_in
from tests.support.smtp import SMTPServer, text_of

MINUTE = dt.timedelta(minutes=1)
_names = itertools.count()


async def test_two_instances_fire_resolve_and_deliver_each_alert_once(
    tmp_path, monkeypatch, postgres, redis_server, receiver
):
    monkeypatch.setenv("PERPETUO_ENCRYPTION_KEYS", new_key_spec("k1"))
    url = postgres.create_database(f"alerts_two_{next(_names)}")
    options = {"redis_url": redis_server.url}
    async with (
        admin_api(url, tmp_path / "one", **options) as one,
        admin_api(url, tmp_path / "two", **options) as two,
    ):
        services = [await quiet(one), await quiet(two)]
        ws = await make_workspace(one.plane, {})
        base = f"/api/workspaces/{ws}"
        channel = await make_channel(
            one, base, {"name": "hook", "kind": "webhook", "url": receiver.url}
        )
        await make_rule(
            two,
            base,
            {"name": "keys", "kind": "key_expiring", "channel_ids": [channel["id"]]},
        )
        await make_rule(
            one,
            base,
            {"name": "budget", "kind": "budget_threshold", "channel_ids": [channel["id"]]},
        )
        key = (await one.http.post(f"{base}/keys", headers=MASTER, json={"name": "k"})).json()
        now = utcnow()
        async with one.plane.db.begin() as conn:
            await conn.execute(
                update(api_keys)
                .where(api_keys.c.id == key["data"]["id"])
                .values(expires_at=now + dt.timedelta(days=2))
            )
        fired = []
        for step in range(5):  # both evaluate at the same moments
            at = now + step * MINUTE
            fired += await asyncio.gather(*(s.evaluate_once(at) for s in services))
        assert sum(len(f) for f in fired) == 1
        event = _budget_event(ws, now)  # both engines would tell their alert path
        raised = await asyncio.gather(
            raise_budget_alert(one.plane, event, now), raise_budget_alert(two.plane, event, now)
        )
        assert sum(len(r) for r in raised) == 1

        await one.http.post(f"{base}/keys/{key['data']['id']}/revoke", headers=MASTER)
        later = now + dt.timedelta(hours=2)  # the key's alert and the budget period are over
        resolved = await asyncio.gather(*(s.evaluate_once(later) for s in services))
        assert sum(len(r) for r in resolved) == 2
        for _ in range(10):  # both deliver from the same queue at the same time
            claimed = await asyncio.gather(*(s.deliver_due() for s in services))
            if not any(claimed):
                break
        kinds = sorted((b["type"], b["alert"]["kind"]) for b in receiver.bodies())
        assert kinds == [
            ("alert.firing", "budget_threshold"),
            ("alert.firing", "key_expiring"),
            ("alert.resolved", "budget_threshold"),
            ("alert.resolved", "key_expiring"),
        ]
        events = await history(one, base)
        assert len(events) == 4
        assert all([d["status"] for d in e["deliveries"]] == ["sent"] for e in events)


async def test_email_alerts_go_to_the_workspace_admins_through_the_outbox(tmp_path, monkeypatch):
    monkeypatch.setenv("PERPETUO_ENCRYPTION_KEYS", new_key_spec("k1"))
    smtp = SMTPServer().start()
    try:
        url = f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}"
        async with admin_api(url, tmp_path, **smtp.settings()) as api:
            service = await quiet(api)
            plane = api.plane
            people = {
                await make_user(plane, "own@example.com"): "owner",
                await make_user(plane, "adm@example.com"): "admin",
                await make_user(plane, "mem@example.com"): "member",
            }
            ws = await make_workspace(plane, people)
            outsider = await make_user(plane, "out@example.com")
            base = f"/api/workspaces/{ws}"
            refused = await api.http.post(
                f"{base}/alert-channels",
                headers=MASTER,
                json={"name": "m", "kind": "email", "to": ["out@example.com"]},
            )
            assert refused.status_code == 422 and error_of(refused)["param"] == "to"
            outsider_token = (await sign_in(plane, outsider)).access_token
            hidden = await api.http.get(f"{base}/alerts", headers=bearer(outsider_token))
            assert hidden.status_code == 404
            channel = await make_channel(api, base, {"name": "admins", "kind": "email"})
            assert channel["display"] == "owners and admins"
            tested = await api.http.post(
                f"{base}/alert-channels/{channel['id']}/test", headers=MASTER
            )
            assert tested.json()["data"]["ok"] is True
            mails = await smtp.inbox.wait_for(2)
            assert sorted(m["To"] for m in mails) == ["adm@example.com", "own@example.com"]
            assert (
                mails[0]["Subject"]
                == "test: Test alert: admins: a test of the email alert channel admins"
            )
            assert "List-Unsubscribe" in mails[0]  # people may turn alert mail off
            assert "/ui/w/" in text_of(mails[0]) and "/alerts" in text_of(mails[0])
            assert service.deliverer.sent == 1
    finally:
        smtp.stop()


async def test_platform_alert_mail_links_to_the_admin_api_not_a_missing_page(tmp_path, monkeypatch):
    monkeypatch.setenv("PERPETUO_ENCRYPTION_KEYS", new_key_spec("k1"))
    smtp = SMTPServer().start()
    try:
        url = f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}"
        async with admin_api(url, tmp_path, **smtp.settings()) as api:
            await quiet(api)
            await make_user(api.plane, "root@example.com", superadmin=True)
            channel = await make_channel(api, "/api/admin", {"name": "ops", "kind": "email"})
            tested = await api.http.post(
                f"/api/admin/alert-channels/{channel['id']}/test", headers=MASTER
            )
            assert tested.json()["data"]["ok"] is True
            (mail,) = await smtp.inbox.wait_for(1)
            text = text_of(mail)
            # The dashboard has no platform alerts page: the mail points at the API instead.
            assert "/ui/admin" not in text and "/ui/w/" not in text
            assert "/docs#/Alerts" in text and "GET /api/admin/alerts" in text
    finally:
        smtp.stop()
