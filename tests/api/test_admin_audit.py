"""The audit log over HTTP: every change made through the API is recorded (who, where from,
before and after, no secrets) and can be filtered and paged."""

from __future__ import annotations

from sqlalchemy import select

from perpetuo.store.schema import audit_log
from tests.support.admin_api import MASTER, admin_api, bearer, error_of
from tests.support.people import make_user, sign_in

PASSWORD = "Quiet-harbour-77"


async def test_changes_are_recorded_filterable_and_free_of_secrets(store_url, tmp_path):
    async with admin_api(store_url, tmp_path) as api:
        signup = await api.http.post(
            "/api/auth/signup", json={"email": "wes@example.com", "password": PASSWORD}
        )
        owner = signup.json()["data"]
        h = bearer(owner["access_token"])
        guest = await make_user(api.plane, "xan@example.com")
        guest_session = await sign_in(api.plane, guest)

        async with api.client("10.3.3.3") as remote:
            made = await remote.post(
                "/api/workspaces",
                json={"name": "Audit"},
                headers={**h, "user-agent": "audit-test/1"},
            )
        ws = made.json()["data"]["id"]
        base = f"/api/workspaces/{ws}"
        await api.http.patch(base, headers=h, json={"settings": {"log_request_bodies": True}})
        invite = (
            await api.http.post(f"{base}/invites", headers=h, json={"email": "xan@example.com"})
        ).json()["data"]
        await api.http.post(
            "/api/invites/accept",
            headers=bearer(guest_session.access_token),
            json={"token": invite["token"]},
        )
        await api.http.patch(f"{base}/members/{guest}", headers=h, json={"role": "viewer"})

        async def actions(**params) -> list[str]:
            response = await api.http.get(f"{base}/audit", headers=h, params=params)
            assert response.status_code == 200, response.text
            return [e["action"] for e in response.json()["data"]]

        assert await actions() == [
            "member.role_change",
            "invite.accept",
            "invite.create",
            "workspace.update",
            "workspace.create",
        ]
        entries = (await api.http.get(f"{base}/audit", headers=h)).json()["data"]
        created = entries[-1]
        assert created["actor"] == {"type": "user", "id": owner["user"]["id"]}
        assert (created["ip"], created["user_agent"]) == ("10.3.3.3", "audit-test/1")
        assert created["target"] == {"type": "workspace", "id": ws}
        role_change = entries[0]
        assert (
            role_change["before"]["role"] == "member" and role_change["after"]["role"] == "viewer"
        )
        update = entries[3]
        assert update["before"]["settings"]["log_request_bodies"] is False
        assert update["after"]["settings"]["log_request_bodies"] is True

        assert await actions(action="invite.create") == ["invite.create"]
        assert await actions(actor_id=guest) == ["invite.accept"]
        assert await actions(target_type="invite") == ["invite.accept", "invite.create"]
        assert await actions(target_id=guest) == ["member.role_change"]
        assert await actions(since=entries[1]["created_at"]) == [
            "member.role_change",
            "invite.accept",
        ]
        assert await actions(until=entries[3]["created_at"]) == ["workspace.create"]
        assert await actions(
            since=entries[3]["created_at"], until=entries[1]["created_at"], target_type="invite"
        ) == ["invite.create"]

        first = (await api.http.get(f"{base}/audit", headers=h, params={"limit": 3})).json()
        assert len(first["data"]) == 3 and first["has_more"]
        second = (
            await api.http.get(
                f"{base}/audit", headers=h, params={"limit": 3, "cursor": first["next_cursor"]}
            )
        ).json()
        assert [e["id"] for e in first["data"] + second["data"]] == [e["id"] for e in entries]
        assert second["has_more"] is False and second["next_cursor"] is None

        for params, field in [
            ({"since": "yesterday"}, "since"),
            ({"cursor": "???"}, "cursor"),
            ({"limit": 0}, "limit"),
        ]:
            bad = await api.http.get(f"{base}/audit", headers=h, params=params)
            assert bad.status_code == 422 and error_of(bad)["param"] == field, params
        viewer = await api.http.get(f"{base}/audit", headers=bearer(guest_session.access_token))
        assert viewer.status_code == 403

        platform = (await api.http.get("/api/admin/audit", headers=MASTER)).json()["data"]
        assert [e["action"] for e in platform] == ["user.signup"]
        assert all(e["workspace_id"] is None for e in platform)

        async with api.plane.db.connect() as conn:
            everything = str([tuple(r) for r in (await conn.execute(select(audit_log))).all()])
        for secret in (
            PASSWORD,
            invite["token"],
            owner["refresh_token"],
            owner["access_token"],
            guest_session.refresh_token,
        ):
            assert secret not in everything
