"""The platform's alert routes: platform administrators only, every one of them; and a
channel's secrets never come back out of the API or the audit log."""

from __future__ import annotations

from tests.api.test_isolation import PLATFORM_ALERT_ROUTES
from tests.control.alerts.conftest import make_channel, make_rule
from tests.support.admin_api import MASTER, bearer, error_of
from tests.support.people import make_user, make_workspace, sign_in


async def test_platform_alert_routes_refuse_workspace_people(api, receiver):
    plane = api.plane
    owner = await make_user(plane, "owner@example.com")
    await make_workspace(plane, {owner: "owner"})
    token = (await sign_in(plane, owner)).access_token
    channel = await make_channel(
        api, "/api/admin", {"name": "ops", "kind": "webhook", "url": receiver.url}
    )
    rule = await make_rule(api, "/api/admin", {"name": "keys", "kind": "key_expiring"})
    bodies = {
        "alert-rules": {"name": "x", "kind": "key_expiring"},
        "alert-channels": {"name": "x", "kind": "slack", "url": receiver.url},
    }
    for method, template in sorted(PLATFORM_ALERT_ROUTES):
        path = template.replace("{rule_id}", rule["id"]).replace("{channel_id}", channel["id"])
        body = next((b for k, b in bodies.items() if path.endswith(k)), None)
        if method == "PATCH":
            body = {"name": "renamed"}
        response = await api.http.request(method, path, headers=bearer(token), json=body)
        assert response.status_code == 403, (method, path, response.text)
        assert error_of(response)["code"] == "forbidden"
    listed = await api.http.get("/api/admin/alert-rules", headers=MASTER)
    assert [r["name"] for r in listed.json()["data"]] == ["keys"]  # nothing was changed


async def test_channel_secrets_stay_sealed(api, receiver):
    url = receiver.url + "?token=very-secret-path"
    channel = await make_channel(api, "/api/admin", {"name": "ops", "kind": "slack", "url": url})
    for path in ("/api/admin/alert-channels", f"/api/admin/alert-channels/{channel['id']}"):
        response = await api.http.get(path, headers=MASTER)
        assert "very-secret-path" not in response.text
    audit = await api.http.get("/api/admin/audit?limit=200", headers=MASTER)
    assert "alert_channel.create" in audit.text and "very-secret-path" not in audit.text
    changed = await api.http.patch(
        f"/api/admin/alert-channels/{channel['id']}",
        headers=MASTER,
        json={"url": "http://169.254.169.254/latest"},
    )
    assert changed.status_code == 422 and error_of(changed)["param"] == "url"
    gone = await api.http.delete(f"/api/admin/alert-channels/{channel['id']}", headers=MASTER)
    assert gone.status_code == 204
