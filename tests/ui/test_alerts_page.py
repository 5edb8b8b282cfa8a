"""The Alerts page: admins create channels and rules from its forms (a webhook's signing secret
shown once, a URL never), change, switch off, test and delete them; refused forms say why next
to the input; viewers read the same page and can change nothing."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from sqlalchemy import func, select, update

from perpetuo.auth.credential_crypto import new_key_spec
from perpetuo.store.alert_tables import alert_channels, alert_rules
from perpetuo.store.schema import api_keys
from perpetuo.store.timeutil import utcnow
from tests.control.alerts.conftest import Receiver, quiet, receiver  # noqa: F401 (a fixture)
from tests.ui.world import World, world

HOOK = "https://unreachable.invalid/hooks/T000/very-secret-path"  # reserved: never resolves


@pytest.fixture
async def w(tmp_path, monkeypatch):
    monkeypatch.setenv("PERPETUO_ENCRYPTION_KEYS", new_key_spec("k1"))
    async with world(tmp_path) as made:
        yield made


async def _count(w: World, table) -> int:
    async with w.api.plane.db.connect() as conn:
        return int(await conn.scalar(select(func.count()).select_from(table)))


def _channel_form(name: str) -> dict[str, str]:
    return {
        "channel.name": name,
        "channel.kind": "webhook",
        "channel.url": HOOK,
        "channel.enabled": "on",
    }


async def test_an_admin_creates_a_channel_and_a_rule_and_a_viewer_sees_them(w: World):
    a = w.a
    admin, viewer = a.people["admin"], a.people["viewer"]
    base = f"/ui/w/{a.workspace_id}/alerts"

    made = await admin.post(f"{base}/channels", _channel_form("ops hook"))
    assert made.status_code == 201, made.text[:500]
    secret = re.search(r'id="signing-secret">(whsec_[^<]+)<', made.text)
    assert secret, "the signing secret is shown when the channel is created"
    assert "very-secret-path" not in made.text  # only the URL's host is ever shown
    async with w.api.plane.db.connect() as conn:
        channel_id = await conn.scalar(select(alert_channels.c.id))

    rule = await admin.post(
        f"{base}/rules",
        {
            "rule.name": "Failing deployment",
            "rule.kind": "deployment_degraded",
            "rule.params": "condition = error_rate\nthreshold = 0.2\nwindow_minutes = 10",
            "rule.channel_ids": channel_id,
            "rule.for_minutes": "5",
            "rule.enabled": "on",
        },
    )
    assert rule.status_code == 303, rule.text[:500]
    async with w.api.plane.db.connect() as conn:
        stored = (await conn.execute(select(alert_rules))).one()
    assert stored.params["threshold"] == 0.2 and stored.params["window_minutes"] == 10
    assert stored.channel_ids == [channel_id] and stored.for_minutes == 5

    seen = await viewer.get(base)
    assert seen.status_code == 200
    assert "Failing deployment" in seen.text and "ops hook" in seen.text
    assert "https://unreachable.invalid/…" in seen.text  # the display target
    assert secret[1] not in seen.text and "very-secret-path" not in seen.text
    assert 'data-test="rule-state"' in seen.text and ">ok<" in seen.text
    assert "Create rule" not in seen.text and "Create channel" not in seen.text  # no forms
    assert "Create rule" in (await admin.get(base)).text


async def test_a_viewer_cannot_create_change_or_delete_anything(w: World):
    a = w.a
    admin, viewer = a.people["admin"], a.people["viewer"]
    base = f"/ui/w/{a.workspace_id}/alerts"
    assert (await admin.post(f"{base}/channels", _channel_form("kept"))).status_code == 201
    async with w.api.plane.db.connect() as conn:
        channel_id = await conn.scalar(select(alert_channels.c.id))
    rule = {
        "rule.name": "Keys",
        "rule.kind": "key_expiring",
        "rule.params": "days = 3",
        "rule.enabled": "on",
    }
    assert (await admin.post(f"{base}/rules", rule)).status_code == 303
    async with w.api.plane.db.connect() as conn:
        rule_id = await conn.scalar(select(alert_rules.c.id))

    attempts = [
        (f"{base}/channels", _channel_form("mine")),
        (f"{base}/rules", {**rule, "rule.name": "mine"}),
        (f"{base}/rules/{rule_id}", {"edit.name": "renamed", "edit.params": "days = 9"}),
        (f"{base}/rules/{rule_id}/enabled", {"enabled": "off"}),
        (f"{base}/rules/{rule_id}/delete", {}),
        (f"{base}/channels/{channel_id}", {"edit.name": "renamed"}),
        (f"{base}/channels/{channel_id}/enabled", {"enabled": "off"}),
        (f"{base}/channels/{channel_id}/test", {}),
        (f"{base}/channels/{channel_id}/delete", {}),
    ]
    for url, form in attempts:
        response = await viewer.post(url, form)
        assert response.status_code == 403, (url, response.status_code)
    assert await _count(w, alert_channels) == 1 and await _count(w, alert_rules) == 1
    async with w.api.plane.db.connect() as conn:
        row = (await conn.execute(select(alert_rules))).one()
    assert row.name == "Keys" and row.enabled and row.params["days"] == 3


async def test_refused_forms_say_why_next_to_the_input_never_a_500(w: World):
    a = w.a
    admin = a.people["admin"]
    base = f"/ui/w/{a.workspace_id}/alerts"
    # A URL the egress policy refuses (plain http): 422 naming the URL, which is not echoed.
    bad_url = {**_channel_form("plain"), "channel.url": "http://example.com/hook-secret"}
    refused = await admin.post(f"{base}/channels", bad_url)
    assert refused.status_code == 422
    assert 'id="f-channel-url-error"' in refused.text and "hook-secret" not in refused.text
    # A parameter the kind does not take, a kind the workspace cannot have, a bad number.
    for form, field in (
        ({"rule.kind": "key_expiring", "rule.params": "dayz = 3"}, "f-rule-params-error"),
        ({"rule.kind": "health_check_failing"}, "f-rule-kind-error"),
        ({"rule.kind": "key_expiring", "rule.for_minutes": "soon"}, "f-rule-for_minutes-error"),
    ):
        response = await admin.post(f"{base}/rules", {"rule.name": "r", **form})
        assert response.status_code == 422, (form, response.status_code)
        assert f'id="{field}"' in response.text, form
    assert await _count(w, alert_rules) == 0 and await _count(w, alert_channels) == 0


async def test_an_admin_changes_switches_off_tests_and_deletes(w: World):
    a = w.a
    admin = a.people["admin"]
    base = f"/ui/w/{a.workspace_id}/alerts"
    await admin.post(f"{base}/channels", _channel_form("hook"))
    async with w.api.plane.db.connect() as conn:
        channel_id = await conn.scalar(select(alert_channels.c.id))
    rule = {"rule.name": "Keys", "rule.kind": "key_expiring", "rule.enabled": "on"}
    await admin.post(f"{base}/rules", rule)
    async with w.api.plane.db.connect() as conn:
        rule_id = await conn.scalar(select(alert_rules.c.id))

    edit = {
        "edit.name": "Keys soon",
        "edit.params": "days = 14",
        "edit.channel_ids": channel_id,
        "edit.enabled": "on",
        "edit.renotify_minutes": "60",
    }
    assert (await admin.post(f"{base}/rules/{rule_id}", edit)).status_code == 303
    off = await admin.post(f"{base}/rules/{rule_id}/enabled", {"enabled": "off"})
    assert off.status_code == 303
    async with w.api.plane.db.connect() as conn:
        row = (await conn.execute(select(alert_rules))).one()
    assert (row.name, row.params["days"], row.renotify_minutes) == ("Keys soon", 14, 60)
    assert row.channel_ids == [channel_id] and not row.enabled

    # The receiver cannot be reached: the page says so, and the history shows the attempt.
    tested = await admin.post(f"{base}/channels/{channel_id}/test")
    assert tested.status_code == 200
    assert "Test alert not delivered" in tested.text
    assert "very-secret-path" not in tested.text
    assert "a test of the webhook alert channel hook" in (await admin.get(base)).text

    gone = await admin.post(f"{base}/channels/{channel_id}/delete")
    assert gone.status_code == 303 and await _count(w, alert_channels) == 0
    assert (await admin.post(f"{base}/rules/{rule_id}/delete")).status_code == 303
    assert await _count(w, alert_rules) == 0


async def test_the_page_shows_firing_rules_and_test_outcomes(
    w: World,
    receiver: Receiver,  # noqa: F811 (the fixture imported above)
):
    service = await quiet(w.api)  # the test drives evaluation; loopback receivers allowed
    a = w.a
    admin, viewer = a.people["admin"], a.people["viewer"]
    base = f"/ui/w/{a.workspace_id}/alerts"
    made = await admin.post(
        f"{base}/channels", {**_channel_form("receiver"), "channel.url": receiver.url}
    )
    assert made.status_code == 201
    async with w.api.plane.db.connect() as conn:
        channel_id = await conn.scalar(select(alert_channels.c.id))
    rule = {
        "rule.name": "Keys expiring",
        "rule.kind": "key_expiring",
        "rule.params": "days = 7",
        "rule.channel_ids": channel_id,
        "rule.enabled": "on",
    }
    assert (await admin.post(f"{base}/rules", rule)).status_code == 303
    async with w.api.plane.db.begin() as conn:
        await conn.execute(
            update(api_keys)
            .where(api_keys.c.id == a.ids["key_id"])
            .values(expires_at=utcnow() + dt.timedelta(days=2))
        )
    assert len(await service.evaluate_once(utcnow())) == 1
    await service.deliver_due()

    seen = (await viewer.get(base)).text
    state = re.search(r'data-test="rule-state">(.*?)</td>', seen, re.S)
    assert state and "firing" in state[1]
    assert 'data-test="firing"' in seen and "Keys expiring" in seen
    assert receiver.bodies()[0]["type"] == "alert.firing"

    tested = await admin.post(f"{base}/channels/{channel_id}/test")
    assert tested.status_code == 200 and "Test alert delivered" in tested.text
    assert receiver.bodies()[-1]["type"] == "alert.test"
