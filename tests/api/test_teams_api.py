"""The teams admin API: teams, team membership and member limits, keys put in teams, each
change audited; and the data plane following a change to a team at once (the keys it
affects are re-read), with no restart and no query per request."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import select

from perpetuo.store.schema import audit_log
from tests.api.test_teams_e2e import config
from tests.support.admin_api import admin_api, bearer, error_of
from tests.support.people import make_user, make_workspace, sign_in

CHAT = {"model": "priced", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 5}


@pytest.fixture
async def api(mocks, tmp_path):
    async with admin_api(
        f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}", tmp_path, config(mocks)
    ) as made:
        yield made


async def people(api) -> tuple[str, dict[str, tuple[str, dict[str, str]]]]:
    """A workspace with an admin, a member and a viewer: role -> (user id, headers)."""
    ids = {role: await make_user(api.plane) for role in ("admin", "member", "viewer")}
    workspace_id = await make_workspace(api.plane, {uid: role for role, uid in ids.items()})
    out = {}
    for role, uid in ids.items():
        out[role] = (uid, bearer((await sign_in(api.plane, uid)).access_token))
    return workspace_id, out


async def test_teams_lifecycle_membership_keys_and_audit(api):
    ws, who = await people(api)
    (admin_id, admin), (member_id, member), (_, viewer) = who["admin"], who["member"], who["viewer"]
    base = f"/api/workspaces/{ws}"
    made = await api.http.post(
        f"{base}/teams", headers=admin, json={"name": "Research", "limits": {"budget_usd": 50}}
    )
    assert made.status_code == 201, made.text
    team = made.json()["data"]
    assert (team["object"], team["name"], team["limits"]) == (
        "team",
        "Research",
        {"budget_usd": 50.0},
    )
    # Viewers read; members and viewers may not write.
    assert (await api.http.get(f"{base}/teams", headers=viewer)).json()["data"][0]["id"] == team[
        "id"
    ]
    for headers in (viewer, member):
        refused = await api.http.post(f"{base}/teams", headers=headers, json={"name": "x"})
        assert refused.status_code == 403 and error_of(refused)["code"]
    duplicate = await api.http.post(f"{base}/teams", headers=admin, json={"name": "Research"})
    assert duplicate.status_code == 409 and error_of(duplicate)["param"] == "name"
    bad = await api.http.post(
        f"{base}/teams", headers=admin, json={"name": "y", "limits": {"rpm": 0}}
    )
    assert bad.status_code == 422
    # Membership: at most one team; the member's key counts to it through its owner.
    other = (await api.http.post(f"{base}/teams", headers=admin, json={"name": "Sales"})).json()[
        "data"
    ]
    for team_id in (other["id"], team["id"]):
        joined = await api.http.put(f"{base}/teams/{team_id}/members/{member_id}", headers=admin)
        assert joined.status_code == 200 and joined.json()["data"]["team_id"] == team_id
    key = (await api.http.post(f"{base}/keys", headers=member, json={"name": "mine"})).json()[
        "data"
    ]
    assert key["team_id"] is None
    detail = (await api.http.get(f"{base}/teams/{team['id']}", headers=viewer)).json()["data"]
    assert [m["user_id"] for m in detail["members"]] == [member_id]
    assert [(k["id"], k["assigned"]) for k in detail["keys"]] == [(key["id"], False)]
    assert detail["spend"]["budget_usd"] == 50.0 and detail["spend"]["spent_usd"] == 0
    sales = (await api.http.get(f"{base}/teams/{other['id']}", headers=viewer)).json()["data"]
    assert sales["members"] == [] and sales["keys"] == []
    # Keys: only admins put a key in a team, and only a team of the key's workspace.
    path = f"{base}/keys/{key['id']}"
    refused = await api.http.patch(path, headers=member, json={"team_id": other["id"]})
    assert refused.status_code == 403
    moved = await api.http.patch(path, headers=admin, json={"team_id": other["id"]})
    assert moved.status_code == 200 and moved.json()["data"]["team_id"] == other["id"]
    sales = (await api.http.get(f"{base}/teams/{other['id']}", headers=viewer)).json()["data"]
    assert [(k["id"], k["assigned"]) for k in sales["keys"]] == [(key["id"], True)]
    # Member limits.
    limits = await api.http.put(
        f"{base}/members/{member_id}/limits", headers=admin, json={"limits": {"rpm": 5}}
    )
    assert limits.status_code == 200 and limits.json()["data"]["limits"] == {"rpm": 5}
    read = await api.http.get(f"{base}/members/{member_id}/limits", headers=viewer)
    assert read.json()["data"]["team_id"] == team["id"] and read.json()["data"]["spend"]["period"]
    # Deleting a team leaves its members and keys in no team.
    assert (await api.http.delete(f"{base}/teams/{other['id']}", headers=admin)).status_code == 204
    assert (await api.http.get(path, headers=admin)).json()["data"]["team_id"] is None
    assert (await api.http.get(f"{base}/teams/{other['id']}", headers=admin)).status_code == 404
    left = await api.http.delete(f"{base}/teams/{team['id']}/members/{member_id}", headers=admin)
    assert left.status_code == 204
    again = await api.http.delete(f"{base}/teams/{team['id']}/members/{member_id}", headers=admin)
    assert again.status_code == 404
    async with api.plane.db.connect() as conn:
        actions = (
            await conn.execute(
                select(audit_log.c.action, audit_log.c.actor_id)
                .where(
                    audit_log.c.workspace_id == ws, audit_log.c.target_type.in_(("team", "member"))
                )
                .order_by(audit_log.c.id)
            )
        ).all()
    assert [a for a, _ in actions] == [
        "team.create",
        "team.create",
        "team.member_add",
        "team.member_add",
        "member.limits_change",
        "team.delete",
        "team.member_remove",
    ]
    assert {actor for _, actor in actions} == {admin_id}


async def test_a_keys_team_from_another_workspace_is_not_found(api):
    ws, who = await people(api)
    other_ws, other = await people(api)
    theirs = await api.http.post(
        f"/api/workspaces/{other_ws}/teams", headers=other["admin"][1], json={"name": "Theirs"}
    )
    team_id = theirs.json()["data"]["id"]
    admin = who["admin"][1]
    made = await api.http.post(
        f"/api/workspaces/{ws}/keys", headers=admin, json={"name": "k", "team_id": team_id}
    )
    assert made.status_code == 404 and "Theirs" not in made.text
    joined = await api.http.put(
        f"/api/workspaces/{ws}/teams/{team_id}/members/{who['member'][0]}", headers=admin
    )
    assert joined.status_code == 404


async def test_a_change_to_a_team_reaches_the_data_plane_at_once(api):
    ws, who = await people(api)
    admin = who["admin"][1]
    base = f"/api/workspaces/{ws}"
    team = (
        await api.http.post(
            f"{base}/teams", headers=admin, json={"name": "T", "limits": {"rpm": 1}}
        )
    ).json()["data"]
    body = {"name": "k", "service": True, "team_id": team["id"]}
    made = (await api.http.post(f"{base}/keys", headers=admin, json=body)).json()["data"]
    key = made["key"]

    async def chat() -> int:
        response = await api.http.post("/v1/chat/completions", headers=bearer(key), json=CHAT)
        return response.status_code

    assert await chat() == 200
    refused = await api.http.post("/v1/chat/completions", headers=bearer(key), json=CHAT)
    assert refused.status_code == 429 and "this team allows 1 requests" in refused.text
    raised = await api.http.patch(
        f"{base}/teams/{team['id']}", headers=admin, json={"limits": {"rpm": 100}}
    )
    assert raised.status_code == 200
    assert await chat() == 200  # the cached key was dropped and read again with the new limit
    # Taking the key out of the team ends the team's limits for it too.
    await api.http.patch(f"{base}/teams/{team['id']}", headers=admin, json={"limits": {"rpm": 1}})
    assert await chat() == 429
    out = await api.http.patch(f"{base}/keys/{made['id']}", headers=admin, json={"team_id": None})
    assert out.status_code == 200 and out.json()["data"]["team_id"] is None
    assert await chat() == 200
    # The request log says which team each request counted to: filtered and exported by it.
    for _ in range(100):  # all five rows written (they may come in more than one batch)
        every = await api.http.get(f"{base}/logs", headers=admin)
        if len(every.json()["data"]) == 5:
            break
        await asyncio.sleep(0.1)
    logs = await api.http.get(f"{base}/logs", headers=admin, params={"team_id": team["id"]})
    assert [row["team_id"] for row in logs.json()["data"]] == [team["id"]] * 4
    export = await api.http.get(f"{base}/logs/export.csv", headers=admin)
    header, *rows = export.text.strip().splitlines()
    column = header.split(",").index("team_id")
    teams = [row.split(",")[column] for row in rows]
    assert sorted(teams) == ["", *[team["id"]] * 4]  # the last request had no team


async def test_the_hot_path_reads_no_team_or_membership_from_the_database(api):
    """The key's team, the team's limits and the owner's limits come with the cached key:
    after a key's first request, requests query none of keys, teams or memberships."""
    from sqlalchemy import event

    ws, who = await people(api)
    (member_id, member), admin = who["member"], who["admin"][1]
    base = f"/api/workspaces/{ws}"
    team = await api.http.post(
        f"{base}/teams", headers=admin, json={"name": "T", "limits": {"rpm": 1000, "budget_usd": 5}}
    )
    await api.http.put(
        f"{base}/teams/{team.json()['data']['id']}/members/{member_id}", headers=admin
    )
    await api.http.put(
        f"{base}/members/{member_id}/limits", headers=admin, json={"limits": {"rpm": 500}}
    )
    key = (await api.http.post(f"{base}/keys", headers=member, json={"name": "k"})).json()["data"]
    first = await api.http.post("/v1/chat/completions", headers=bearer(key["key"]), json=CHAT)
    assert first.status_code == 200 and first.headers["x-ratelimit-limit-requests"] == "500"
    seen: list[str] = []

    def record(conn, cursor, statement, *args) -> None:
        seen.append(statement.lower())

    engine = api.plane.db.engine.sync_engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        for _ in range(10):
            response = await api.http.post(
                "/v1/chat/completions", headers=bearer(key["key"]), json=CHAT
            )
            assert response.status_code == 200
    finally:
        event.remove(engine, "before_cursor_execute", record)
    assert not [s for s in seen if any(t in s for t in ("api_keys", "teams", "memberships"))]
