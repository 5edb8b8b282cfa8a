"""Workspaces, members and invites over HTTP: CRUD, every role against every member action,
the last-owner rule, and the invite lifecycle (wrong address, expired, revoked, reused)."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import update

from perpetuo.control import invites
from perpetuo.control.actor import CLI_ACTOR
from perpetuo.store.schema import invites as invites_table
from tests.support.admin_api import MASTER, admin_api, bearer, error_of
from tests.support.people import make_user, make_workspace, sign_in

ROLES = ("viewer", "member", "admin", "owner")


@pytest.fixture
async def api(store_url, tmp_path):
    async with admin_api(store_url, tmp_path) as api:
        yield api


async def headers_for(api, user_id: str) -> dict[str, str]:
    return bearer((await sign_in(api.plane, user_id)).access_token)


async def test_workspace_crud(api):
    ann = await make_user(api.plane)
    h = await headers_for(api, ann)
    made = await api.http.post("/api/workspaces", headers=h, json={"name": "Research"})
    assert made.status_code == 201
    ws = made.json()["data"]
    assert ws["role"] == "owner" and ws["settings"]["default_strategy"] == "default"
    for i in range(2):
        await api.http.post("/api/workspaces", headers=h, json={"name": f"extra {i}"})
    first = (await api.http.get("/api/workspaces", headers=h, params={"limit": 2})).json()
    assert len(first["data"]) == 2 and first["has_more"]
    rest = await api.http.get("/api/workspaces", headers=h, params={"cursor": first["next_cursor"]})
    assert len(rest.json()["data"]) == 1 and rest.json()["has_more"] is False
    me = (await api.http.get("/api/auth/me", headers=h)).json()["data"]
    assert {m["workspace_id"] for m in me["memberships"]} >= {ws["id"]}

    path = f"/api/workspaces/{ws['id']}"
    patched = await api.http.patch(
        path,
        headers=h,
        json={
            "name": "R&D",
            "settings": {"default_strategy": "least-busy", "log_retention_days": 90},
        },
    )
    assert patched.status_code == 200
    assert patched.json()["data"]["name"] == "R&D"
    assert patched.json()["data"]["settings"]["log_retention_days"] == 90
    assert (await api.http.get(path, headers=h)).json()["data"]["settings"]["default_strategy"] == (
        "least-busy"
    )
    for body, field in [
        ({}, "name"),
        ({"name": ""}, "name"),
        ({"name": "x", "owner": ann}, "owner"),
    ]:
        bad = await api.http.post("/api/workspaces", headers=h, json=body)
        assert bad.status_code == 422 and error_of(bad)["param"] == field, body
    bad = await api.http.patch(path, headers=h, json={"settings": {"log_retention_days": 5000}})
    assert error_of(bad)["param"] == "settings.log_retention_days"
    bad = await api.http.patch(path, headers=h, json={"settings": {"default_strategy": "fast"}})
    assert error_of(bad)["param"] == "settings.default_strategy"

    assert (await api.http.delete(path, headers=h)).status_code == 204
    assert (await api.http.get(path, headers=h)).status_code == 404
    default = await api.http.delete("/api/workspaces/ws_default", headers=MASTER)
    assert default.status_code == 409
    assert (await api.http.get("/api/workspaces/ws_default", headers=h)).status_code == 404


# (action, method, path under the workspace, body, expected status for viewer/member/admin/owner)
MATRIX = [
    ("read workspace", "GET", "", None, (200, 200, 200, 200)),
    ("list members", "GET", "/members", None, (200, 200, 200, 200)),
    ("rename", "PATCH", "", {"name": "new"}, (403, 403, 200, 200)),
    (
        "change settings",
        "PATCH",
        "",
        {"settings": {"log_request_bodies": True}},
        (403, 403, 200, 200),
    ),
    ("delete workspace", "DELETE", "", None, (403, 403, 403, 204)),
    ("member to viewer", "PATCH", "/members/{tm}", {"role": "viewer"}, (403, 403, 200, 200)),
    ("viewer to member", "PATCH", "/members/{tv}", {"role": "member"}, (403, 403, 200, 200)),
    ("member to admin", "PATCH", "/members/{tm}", {"role": "admin"}, (403, 403, 403, 200)),
    ("admin to member", "PATCH", "/members/{ta}", {"role": "member"}, (403, 403, 403, 200)),
    ("member to owner", "PATCH", "/members/{tm}", {"role": "owner"}, (403, 403, 403, 200)),
    ("owner to admin", "PATCH", "/members/{o2}", {"role": "admin"}, (403, 403, 403, 200)),
    ("remove member", "DELETE", "/members/{tm}", None, (403, 403, 204, 204)),
    ("remove viewer", "DELETE", "/members/{tv}", None, (403, 403, 204, 204)),
    ("remove admin", "DELETE", "/members/{ta}", None, (403, 403, 403, 204)),
    ("remove owner", "DELETE", "/members/{o2}", None, (403, 403, 403, 204)),
    ("leave", "DELETE", "/members/{me}", None, (204, 204, 204, 204)),
    ("lower own role", "PATCH", "/members/{me}", {"role": "viewer"}, (200, 200, 200, 200)),
    ("raise own role", "PATCH", "/members/{me}", {"role": "owner"}, (403, 403, 403, 200)),
    ("list invites", "GET", "/invites", None, (403, 403, 200, 200)),
    ("invite a member", "POST", "/invites", {"email": "new@example.com"}, (403, 403, 201, 201)),
    (
        "invite a viewer",
        "POST",
        "/invites",
        {"email": "new@example.com", "role": "viewer"},
        (403, 403, 201, 201),
    ),
    (
        "invite an admin",
        "POST",
        "/invites",
        {"email": "new@example.com", "role": "admin"},
        (403, 403, 403, 201),
    ),
    (
        "invite an owner",
        "POST",
        "/invites",
        {"email": "new@example.com", "role": "owner"},
        (403, 403, 403, 201),
    ),
    ("revoke invite", "DELETE", "/invites/{invite}", None, (403, 403, 204, 204)),
    ("read audit log", "GET", "/audit", None, (403, 403, 200, 200)),
]


async def test_every_role_against_every_member_action(api):
    """Each case runs in a fresh workspace holding one person of each role, two targets of
    each kind and a second owner (so the last-owner rule stays out of the way)."""
    plane = api.plane
    people = {role: await make_user(plane) for role in ROLES}
    targets = {
        "tm": await make_user(plane),
        "tv": await make_user(plane),
        "ta": await make_user(plane),
        "o2": await make_user(plane),
    }
    outsider = await make_user(plane)
    tokens = {uid: await headers_for(api, uid) for uid in [*people.values(), outsider]}
    wrong = []
    for action, method, suffix, body, expected in MATRIX:
        for actor_role, want in [*zip(ROLES, expected, strict=True), ("outsider", 404)]:
            actor = people.get(actor_role, outsider)
            members = {uid: role for role, uid in people.items()}
            members |= {
                targets["tm"]: "member",
                targets["tv"]: "viewer",
                targets["ta"]: "admin",
                targets["o2"]: "owner",
            }
            ws = await make_workspace(plane, members)
            pending, _ = await invites.create_invite(
                plane, CLI_ACTOR, ws, invites.InviteCreate(email="pending@example.com")
            )
            path = f"/api/workspaces/{ws}" + suffix.format(
                me=actor, invite=pending["id"], **targets
            )
            response = await api.http.request(method, path, json=body, headers=tokens[actor])
            if response.status_code != want:
                wrong.append(
                    f"{actor_role} {action}: {response.status_code} (want {want}) "
                    f"{response.text[:120]}"
                )
    assert not wrong, "\n".join(wrong)


async def test_a_workspace_keeps_an_owner(api):
    plane = api.plane
    owner, admin = await make_user(plane), await make_user(plane)
    ws = await make_workspace(plane, {owner: "owner", admin: "admin"})
    h = await headers_for(api, owner)
    for method, body in (("PATCH", {"role": "admin"}), ("DELETE", None)):
        refused = await api.http.request(
            method, f"/api/workspaces/{ws}/members/{owner}", json=body, headers=h
        )
        assert refused.status_code == 409, method
        assert "at least one owner" in error_of(refused)["message"]
    # The master key acts as an owner: it can make the admin an owner ...
    promoted = await api.http.patch(
        f"/api/workspaces/{ws}/members/{admin}", headers=MASTER, json={"role": "owner"}
    )
    assert promoted.status_code == 200 and promoted.json()["data"]["role"] == "owner"
    # ... after which the first owner may step down and leave.
    assert (
        await api.http.delete(f"/api/workspaces/{ws}/members/{owner}", headers=h)
    ).status_code == 204
    assert (await api.http.get(f"/api/workspaces/{ws}", headers=h)).status_code == 404
    listed = (await api.http.get(f"/api/workspaces/{ws}/members", headers=MASTER)).json()
    assert [(m["user_id"], m["role"]) for m in listed["data"]] == [(admin, "owner")]
    missing = await api.http.patch(
        f"/api/workspaces/{ws}/members/usr_nobody", headers=MASTER, json={"role": "viewer"}
    )
    assert missing.status_code == 404
    bad = await api.http.patch(
        f"/api/workspaces/{ws}/members/{admin}", headers=MASTER, json={"role": "superuser"}
    )
    assert bad.status_code == 422 and error_of(bad)["param"] == "role"


async def test_invite_lifecycle(api):
    plane = api.plane
    owner = await make_user(plane)
    uma = await make_user(plane, "uma@example.com")
    val = await make_user(plane, "val@example.com")
    ws = await make_workspace(plane, {owner: "owner"})
    h, uma_h, val_h = [await headers_for(api, u) for u in (owner, uma, val)]
    base = f"/api/workspaces/{ws}/invites"

    made = await api.http.post(base, headers=h, json={"email": "Uma@Example.COM", "role": "admin"})
    assert made.status_code == 201
    invite = made.json()["data"]
    token = invite["token"]
    assert invite["email"] == "uma@example.com" and invite["status"] == "pending"
    listed = await api.http.get(base, headers=h)
    assert token not in listed.text and listed.json()["data"][0]["id"] == invite["id"]
    dup = await api.http.post(base, headers=h, json={"email": "uma@example.com"})
    assert dup.status_code == 409 and error_of(dup)["param"] == "email"

    accept = "/api/invites/accept"
    assert (await api.http.post(accept, json={"token": token})).status_code == 401
    assert (await api.http.post(accept, headers=MASTER, json={"token": token})).status_code == 403
    other = await api.http.post(accept, headers=val_h, json={"token": token})
    assert other.status_code == 403 and "different email" in error_of(other)["message"]
    unknown = await api.http.post(accept, headers=uma_h, json={"token": "pinv_nope"})
    assert unknown.status_code == 404
    joined = await api.http.post(accept, headers=uma_h, json={"token": token})
    assert joined.status_code == 200 and joined.json()["data"]["role"] == "admin"
    me = (await api.http.get("/api/auth/me", headers=uma_h)).json()["data"]
    assert me["memberships"] == [{"workspace_id": ws, "workspace_name": "test", "role": "admin"}]
    reused = await api.http.post(accept, headers=uma_h, json={"token": token})
    assert reused.status_code == 410 and error_of(reused)["code"] == "invite_used"
    member = await api.http.post(base, headers=h, json={"email": "uma@example.com"})
    assert member.status_code == 409 and "already a member" in error_of(member)["message"]
    accepted = await api.http.delete(f"{base}/{invite['id']}", headers=h)
    assert accepted.status_code == 409

    revoked = (await api.http.post(base, headers=h, json={"email": "val@example.com"})).json()[
        "data"
    ]
    assert (await api.http.delete(f"{base}/{revoked['id']}", headers=h)).status_code == 204
    refused = await api.http.post(accept, headers=val_h, json={"token": revoked["token"]})
    assert refused.status_code == 410 and error_of(refused)["code"] == "invite_revoked"

    expiring = (await api.http.post(base, headers=h, json={"email": "val@example.com"})).json()[
        "data"
    ]
    async with plane.db.begin() as conn:
        await conn.execute(
            update(invites_table)
            .where(invites_table.c.id == expiring["id"])
            .values(expires_at=dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1))
        )
    expired = await api.http.post(accept, headers=val_h, json={"token": expiring["token"]})
    assert expired.status_code == 410 and error_of(expired)["code"] == "invite_expired"
    statuses = {i["id"]: i["status"] for i in (await api.http.get(base, headers=h)).json()["data"]}
    assert statuses == {
        invite["id"]: "accepted",
        revoked["id"]: "revoked",
        expiring["id"]: "expired",
    }
    assert (await api.http.delete(f"{base}/inv_nosuchinvite", headers=h)).status_code == 404
