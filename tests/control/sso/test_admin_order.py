"""Who may comes before what the body says: on a workspace's SSO routes a viewer or an admin
who may not act is refused with 403 whatever the body holds (never a 422 telling them what
is wrong with a request they may not make, nor whether a URL passes the egress policy), and
someone with no role in the workspace gets 404."""

from __future__ import annotations

import pytest

from perpetuo.auth.credential_crypto import new_key_spec
from tests.support.admin_api import admin_api, bearer
from tests.support.people import make_user, make_workspace, sign_in

# Wrong in every way the body can be: an unknown role, no issuer for an OIDC provider, a
# domain that is not one, an issuer the egress policy refuses.
BAD_BODIES = [
    {"name": "x", "client_id": "c", "client_secret": "s", "role_mapping": {"g": "emperor"}},
    {"name": "x", "client_id": "c", "client_secret": "s"},
    {
        "name": "x",
        "issuer": "https://i.example",
        "client_id": "c",
        "client_secret": "s",
        "domains": ["not a domain"],
    },
    {"name": "x", "issuer": "http://127.0.0.1:1", "client_id": "c", "client_secret": "s"},
]


@pytest.fixture
async def api(tmp_path, monkeypatch):
    monkeypatch.setenv("PERPETUO_ENCRYPTION_KEYS", new_key_spec("k1"))
    async with admin_api(f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}", tmp_path) as made:
        yield made


async def test_the_role_is_judged_before_the_body(api):
    plane = api.plane
    people = {role: await make_user(plane, f"{role}@example.com") for role in ("viewer", "admin")}
    outsider = await make_user(plane, "outsider@example.com")
    workspace_id = await make_workspace(plane, {uid: role for role, uid in people.items()})
    token = {role: (await sign_in(plane, uid)).access_token for role, uid in people.items()}
    token["outsider"] = (await sign_in(plane, outsider)).access_token
    base = f"/api/workspaces/{workspace_id}/sso"
    made = await api.http.post(
        f"{base}/providers",
        headers=bearer(token["admin"]),
        json={"name": "p", "issuer": "https://i.example", "client_id": "c", "client_secret": "s"},
    )
    assert made.status_code == 201, made.text
    provider = f"{base}/providers/{made.json()['data']['id']}"
    for body in BAD_BODIES:
        for method, path in (("POST", f"{base}/providers"), ("PATCH", provider)):
            viewer = await api.http.request(
                method, path, headers=bearer(token["viewer"]), json=body
            )
            assert viewer.status_code == 403, (method, body, viewer.text)
            nobody = await api.http.request(
                method, path, headers=bearer(token["outsider"]), json=body
            )
            assert nobody.status_code == 404, (method, body, nobody.text)
        admin = await api.http.post(f"{base}/providers", headers=bearer(token["admin"]), json=body)
        assert admin.status_code == 422, (body, admin.text)  # the body is judged, for an admin
    # Verifying a domain is the platform's: an admin is refused even a malformed domain.
    for domain in ("acme.example.com", "not a domain!"):
        for method in ("PUT", "DELETE"):
            admin = await api.http.request(
                method, f"{base}/domains/{domain}", headers=bearer(token["admin"])
            )
            assert admin.status_code == 403, (method, domain, admin.text)
            nobody = await api.http.request(
                method, f"{base}/domains/{domain}", headers=bearer(token["outsider"])
            )
            assert nobody.status_code == 404, (method, domain, nobody.text)
