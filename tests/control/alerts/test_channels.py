"""Alert channels end to end: a signed webhook a receiver verifies as docs/alerts.md says,
Slack's message shape, the egress policy at save and connect time, retries with backoff."""

from __future__ import annotations

import hashlib
import hmac
import itertools
import time

from perpetuo.transport.egress import EgressPolicy
from tests.control.alerts.conftest import history, make_channel
from tests.support.admin_api import MASTER, error_of
from tests.support.people import make_user, make_workspace

PLATFORM = "/api/admin"


def verify(secret: str, header: str, raw: bytes, tolerance: float = 300) -> bool:
    """A receiver's check, written from docs/alerts.md alone."""
    parts = dict(item.split("=", 1) for item in header.split(","))
    timestamp = int(parts["t"])
    if abs(time.time() - timestamp) > tolerance:
        return False
    signed = f"{timestamp}.".encode() + raw
    expected = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, parts["v1"])


async def test_a_test_alert_is_signed_so_a_receiver_can_verify_it(api, receiver):
    channel = await make_channel(
        api, PLATFORM, {"name": "ops hook", "kind": "webhook", "url": receiver.url}
    )
    secret = channel["signing_secret"]
    assert secret.startswith("whsec_") and channel["display"] == "http://127.0.0.1/…"
    shown = await api.http.get(f"{PLATFORM}/alert-channels/{channel['id']}", headers=MASTER)
    assert secret not in shown.text and receiver.url not in shown.text  # never shown again

    tested = await api.http.post(f"{PLATFORM}/alert-channels/{channel['id']}/test", headers=MASTER)
    assert tested.status_code == 200, tested.text
    assert tested.json()["data"]["ok"] is True
    [got] = receiver.received
    assert verify(secret, got["headers"]["x-perpetuo-signature"], got["raw"])
    assert not verify("whsec_another", got["headers"]["x-perpetuo-signature"], got["raw"])
    assert not verify(secret, got["headers"]["x-perpetuo-signature"], got["raw"] + b" ")
    body = got["body"]
    assert body["type"] == "alert.test" and got["headers"]["x-perpetuo-event"] == "alert.test"
    assert got["headers"]["x-perpetuo-event-id"] == body["id"]
    assert body["alert"]["rule_name"] == "ops hook" and body["workspace_id"] is None
    [event] = await history(api, PLATFORM)
    assert event["id"] == body["id"]
    assert [d["status"] for d in event["deliveries"]] == ["sent"]
    assert event["deliveries"][0]["response_status"] == 200


async def test_slack_gets_its_message_format(api, receiver):
    channel = await make_channel(
        api, PLATFORM, {"name": "slack", "kind": "slack", "url": receiver.url}
    )
    assert "signing_secret" not in channel
    tested = await api.http.post(f"{PLATFORM}/alert-channels/{channel['id']}/test", headers=MASTER)
    assert tested.json()["data"]["ok"] is True
    [got] = receiver.received
    message = got["body"]
    assert "x-perpetuo-signature" not in got["headers"]
    assert message["text"].startswith("Test alert: ")
    kinds = [block["type"] for block in message["blocks"]]
    assert kinds[:2] == ["header", "section"] and "context" in kinds
    assert message["blocks"][0]["text"] == {"type": "plain_text", "text": "Test alert"}
    fields = message["blocks"][2]["fields"]
    assert all(f["type"] == "mrkdwn" for f in fields)
    assert {"type": "mrkdwn", "text": "*Rule*\nslack"} in fields


async def test_names_are_never_slack_markup(api, receiver):
    channel = await make_channel(
        api, PLATFORM, {"name": "<!channel> & co", "kind": "slack", "url": receiver.url}
    )
    await api.http.post(f"{PLATFORM}/alert-channels/{channel['id']}/test", headers=MASTER)
    raw = receiver.received[0]["raw"].decode()
    assert "<!channel>" not in raw and "&lt;!channel&gt; &amp; co" in raw


async def test_internal_urls_are_refused_when_saved_and_when_connecting(api, receiver):
    api.plane.egress = EgressPolicy(allow_http=True)  # the default policy, http allowed
    for url in ("http://127.0.0.1:9/hook", "http://169.254.169.254/latest", "http://[::1]/x"):
        refused = await api.http.post(
            f"{PLATFORM}/alert-channels",
            headers=MASTER,
            json={"name": "inside", "kind": "webhook", "url": url},
        )
        assert refused.status_code == 422, refused.text
        assert error_of(refused)["param"] == "url"
    # A name passes when saved; what it resolves to is checked when connecting.
    port = receiver.url.rsplit(":", 1)[1]
    channel = await make_channel(
        api, PLATFORM, {"name": "rebound", "kind": "webhook", "url": f"http://localhost:{port}"}
    )
    tested = await api.http.post(f"{PLATFORM}/alert-channels/{channel['id']}/test", headers=MASTER)
    result = tested.json()["data"]
    assert result["ok"] is False and result["status"] == "failed"  # not retried
    assert "egress policy" in result["error"]
    assert receiver.received == []


async def test_a_failing_receiver_is_retried_with_growing_delays(api, receiver):
    service = api.app.gateway.alerts
    receiver.statuses = [500, 503, 502]
    channel = await make_channel(
        api, PLATFORM, {"name": "flaky", "kind": "webhook", "url": receiver.url}
    )
    tested = await api.http.post(f"{PLATFORM}/alert-channels/{channel['id']}/test", headers=MASTER)
    assert tested.json()["data"] | {"event_id": None} == {
        "object": "alert_test",
        "event_id": None,
        "ok": False,
        "status": "pending",
        "response_status": 500,
        "error": "the receiver answered HTTP 500",
    }
    deadline = time.monotonic() + 15
    while len(receiver.received) < 4 and time.monotonic() < deadline:
        await service.deliver_due()
        await _sleep(0.02)
    assert len(receiver.received) == 4
    at = [r["at"] for r in receiver.received]
    gaps = [b - a for a, b in itertools.pairwise(at)]
    # 0.2 s, then 0.4 s, then 0.8 s (each +-10%), polled every 20 ms: never earlier than the
    # schedule; later only by what a busy machine adds to a poll.
    for gap, due in zip(gaps, (0.2, 0.4, 0.8), strict=True):
        assert due * 0.88 <= gap <= due * 1.1 + 1.0, gaps
    ids = {r["body"]["id"] for r in receiver.received}
    assert len(ids) == 1  # one event, delivered again: receivers deduplicate on the id
    [event] = await history(api, PLATFORM)
    [delivery] = event["deliveries"]
    assert (delivery["status"], delivery["attempts"], delivery["response_status"]) == (
        "sent",
        4,
        200,
    )


async def test_a_receiver_that_keeps_failing_is_given_up_after_the_last_attempt(api, receiver):
    service = api.app.gateway.alerts
    service.deliverer.policy.max_attempts = 2
    receiver.statuses = [500] * 5
    channel = await make_channel(
        api, PLATFORM, {"name": "down", "kind": "webhook", "url": receiver.url}
    )
    await api.http.post(f"{PLATFORM}/alert-channels/{channel['id']}/test", headers=MASTER)
    await _sleep(0.3)
    await service.deliver_due()
    await _sleep(0.5)
    assert await service.deliver_due() == 0
    [event] = await history(api, PLATFORM)
    assert event["deliveries"][0]["status"] == "failed"
    assert len(receiver.received) == 2


async def test_workspace_channels_need_the_admin_role_and_stay_in_their_workspace(api, receiver):
    from tests.support.people import sign_in

    plane = api.plane
    admin, viewer = await make_user(plane, "a@example.com"), await make_user(plane, "v@example.com")
    ws = await make_workspace(plane, {admin: "admin", viewer: "viewer"})
    other = await make_workspace(plane, {})
    headers = {
        r: {"authorization": f"Bearer {(await sign_in(plane, u)).access_token}"}
        for r, u in (("admin", admin), ("viewer", viewer))
    }
    base = f"/api/workspaces/{ws}"
    body = {"name": "hook", "kind": "webhook", "url": receiver.url}
    refused = await api.http.post(f"{base}/alert-channels", headers=headers["viewer"], json=body)
    assert refused.status_code == 403
    channel = await make_channel(api, base, body, headers=headers["admin"])
    listed = await api.http.get(f"{base}/alert-channels", headers=headers["viewer"])
    assert [c["id"] for c in listed.json()["data"]] == [channel["id"]]
    elsewhere = await api.http.get(
        f"/api/workspaces/{other}/alert-channels/{channel['id']}", headers=MASTER
    )
    assert elsewhere.status_code == 404
    platform = await api.http.get(f"{PLATFORM}/alert-channels", headers=headers["admin"])
    assert platform.status_code == 403
    rule = await api.http.post(
        f"/api/workspaces/{other}/alert-rules",
        headers=MASTER,
        json={"name": "x", "kind": "key_expiring", "channel_ids": [channel["id"]]},
    )
    assert rule.status_code == 422 and error_of(rule)["param"] == "channel_ids"
    mail = await api.http.post(
        f"{base}/alert-channels", headers=headers["admin"], json={"name": "m", "kind": "email"}
    )
    assert mail.status_code == 403  # no SMTP server configured
    assert "smtp" in error_of(mail)["message"].lower()


async def _sleep(seconds: float) -> None:
    import asyncio

    await asyncio.sleep(seconds)
