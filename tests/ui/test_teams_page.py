"""The Teams page: the hierarchy as people see it (teams, their members, the keys that count
to them, budgets and spend), managed by admins from forms; the usage page filtered by team."""

from __future__ import annotations

import re
import time

import pytest

from perpetuo.auth.credential_crypto import new_key_spec
from perpetuo.metering.record import RequestRecord
from perpetuo.metering.writer import write_batch
from tests.ui.world import World, world


@pytest.fixture
async def w(tmp_path, monkeypatch):
    monkeypatch.setenv("PERPETUO_ENCRYPTION_KEYS", new_key_spec("k1"))
    async with world(tmp_path) as made:
        yield made


def stat(html: str, name: str) -> str:
    match = re.search(rf'data-stat="{name}">([^<]+)<', html)
    assert match, name
    return match[1]


async def test_admins_build_a_team_and_everyone_sees_its_members_keys_and_spend(w: World):
    a = w.a
    owner, member, viewer = a.people["owner"], a.people["member"], a.people["viewer"]
    base = f"/ui/w/{a.workspace_id}/teams"
    made = await owner.post(
        base, {"name": "Research", "limits.budget_usd": "5", "limits.rpm": "60"}
    )
    assert made.status_code == 303, made.text[:500]
    team_url = made.headers["location"]
    team_id = team_url.rsplit("/", 1)[1]
    joined = await owner.post(f"{team_url}/members", {"user_id": member.user_id})
    assert joined.status_code == 303
    # Spend of the team this period: two requests of its member's key, $1.25 in all.
    now = time.time()
    records = [
        RequestRecord(
            id=f"req_team_{i}",
            workspace_id=a.workspace_id,
            created_at=now,
            endpoint="chat",
            status=200,
            key_id=a.ids["key_id"],
            user_id=member.user_id,
            team_id=team_id,
            cost_micros=625_000,
        )
        for i in range(2)
    ]
    await write_batch(w.api.plane.db, records)
    page = await viewer.get(team_url)
    assert page.status_code == 200
    assert "Research" in page.text and "aaa-member@example.com" in page.text
    assert a.marker in page.text  # the member's key counts to the team through its owner
    assert "its owner" in page.text
    assert "$5.00" in page.text and "$1.25" in page.text
    assert "Save team" not in page.text and "Delete team" not in page.text  # viewers read
    listing = await viewer.get(base)
    assert "Research" in listing.text and "$1.25" in listing.text
    assert "Create team" not in listing.text
    assert "Create team" in (await owner.get(base)).text
    # Usage filtered by the team: its two requests, not the workspace's three.
    usage = f"/ui/w/{a.workspace_id}/usage"
    assert stat((await viewer.get(usage)).text, "requests") == "3"
    filtered = await viewer.get(f"{usage}?range=7d&team={team_id}")
    assert stat(filtered.text, "requests") == "2"
    csv = await viewer.get(f"{usage}/export.csv?range=7d&team={team_id}")
    assert csv.status_code == 200 and ",2," in csv.text
    # Another workspace's team id filters nothing: the workspace's own figures.
    theirs = await w.b.people["owner"].post(f"/ui/w/{w.b.workspace_id}/teams", {"name": "B"})
    their_team = theirs.headers["location"].rsplit("/", 1)[1]
    other = await viewer.get(f"{usage}?team={their_team}")
    assert stat(other.text, "requests") == "3" and their_team not in other.text


async def test_renaming_limits_and_deleting_a_team_from_the_page(w: World):
    a = w.a
    owner = a.people["owner"]
    base = f"/ui/w/{a.workspace_id}/teams"
    made = await owner.post(base, {"name": "Sales"})
    team_url = made.headers["location"]
    bad = await owner.post(team_url, {"name": "Sales", "limits.rpm": "-3"})
    assert bad.status_code == 422
    saved = await owner.post(team_url, {"name": "Sales EU", "limits.tpm": "1000"})
    assert saved.status_code == 303
    page = await owner.get(team_url)
    assert "Sales EU" in page.text and "1,000" in page.text
    duplicate = await owner.post(base, {"name": "Sales EU"})
    assert duplicate.status_code == 409 and "already has a team of that name" in duplicate.text
    gone = await owner.post(f"{team_url}/delete", {})
    assert gone.status_code == 303
    assert (await owner.get(team_url)).status_code == 404


async def test_admins_put_a_key_in_a_team_from_the_keys_page(w: World):
    a = w.a
    owner, member = a.people["owner"], a.people["member"]
    made = await owner.post(f"/ui/w/{a.workspace_id}/teams", {"name": "Platform"})
    team_id = made.headers["location"].rsplit("/", 1)[1]
    key_url = f"/ui/w/{a.workspace_id}/keys/{a.ids['key_id']}"
    assert 'name="team_id"' not in (await member.get(key_url)).text  # the member's own key
    form = {"name": "renamed", "scopes": "chat", "team_id": team_id}
    saved = await owner.post(key_url, form)
    assert saved.status_code == 303, saved.text[:500]
    page = await member.get(key_url)
    assert f"teams/{team_id}" in page.text and "Platform" in page.text
    team = await member.get(f"/ui/w/{a.workspace_id}/teams/{team_id}")
    assert "renamed" in team.text and "in the team" in team.text
    # A member replaying the admin's field is refused: a key's team is the admins' to set.
    refused = await member.post(key_url, {"name": "mine", "scopes": "chat", "team_id": ""})
    assert refused.status_code == 403
