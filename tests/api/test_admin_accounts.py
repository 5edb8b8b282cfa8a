"""The accounts API over HTTP (the real application in-process): sign-up, sign-in, refresh
rotation and replay, sign-out, /me, password rules, sign-in throttling (memory and Redis,
including Redis being down), and the super-administrator endpoints."""

from __future__ import annotations

import pytest

from perpetuo.auth.throttle import LoginThrottle, MemoryThrottleStore, RedisThrottleStore
from tests.support.admin_api import MASTER, admin_api, bearer, error_of
from tests.support.gateway import free_port
from tests.support.people import PASSWORD, make_user, sign_in

GOOD = "Tall-ships-sail-9"


@pytest.fixture
async def api(store_url, tmp_path):
    async with admin_api(store_url, tmp_path) as api:
        yield api


@pytest.fixture
async def sqlite_api(tmp_path):
    """For what does not depend on the database engine (the throttle)."""
    async with admin_api(f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}", tmp_path) as api:
        yield api


async def signup(api, email: str, password: str = GOOD, **extra) -> dict:
    response = await api.http.post(
        "/api/auth/signup", json={"email": email, "password": password, **extra}
    )
    assert response.status_code == 201, response.text
    return response.json()["data"]


async def login(client, email: str, password: str):
    return await client.post("/api/auth/login", json={"email": email, "password": password})


async def test_signup_login_me_refresh_logout(api):
    grant = await signup(api, "Kim@Example.com", name="Kim")
    assert set(grant) == {"access_token", "token_type", "expires_in", "refresh_token", "user"}
    assert grant["token_type"] == "bearer" and grant["expires_in"] == 900
    assert grant["user"]["email"] == "kim@example.com"

    me = await api.http.get("/api/auth/me", headers=bearer(grant["access_token"]))
    assert me.status_code == 200
    assert me.json()["data"]["name"] == "Kim" and me.json()["data"]["memberships"] == []

    signed_in = await login(api.http, "KIM@example.com", GOOD)
    assert signed_in.status_code == 200
    session = signed_in.json()["data"]

    rotated = await api.http.post(
        "/api/auth/refresh", json={"refresh_token": session["refresh_token"]}
    )
    assert rotated.status_code == 200
    fresh = rotated.json()["data"]
    assert fresh["refresh_token"] != session["refresh_token"]
    assert (
        await api.http.get("/api/auth/me", headers=bearer(fresh["access_token"]))
    ).status_code == 200

    logout = await api.http.post("/api/auth/logout", headers=bearer(fresh["access_token"]))
    assert logout.status_code == 204
    # Access tokens of the ended session stop at once, including ones issued before.
    for token in (fresh["access_token"], session["access_token"]):
        gone = await api.http.get("/api/auth/me", headers=bearer(token))
        assert gone.status_code == 401 and error_of(gone)["code"] == "session_revoked"
    again = await api.http.post("/api/auth/refresh", json={"refresh_token": fresh["refresh_token"]})
    assert again.status_code == 401
    # The sign-up session is a separate one and goes on.
    assert (
        await api.http.get("/api/auth/me", headers=bearer(grant["access_token"]))
    ).status_code == 200
    by_refresh = await api.http.post(
        "/api/auth/logout", json={"refresh_token": grant["refresh_token"]}
    )
    assert by_refresh.status_code == 204
    assert (
        await api.http.get("/api/auth/me", headers=bearer(grant["access_token"]))
    ).status_code == 401


async def test_refresh_token_replay_ends_the_session(api):
    grant = await signup(api, "lee@example.com")
    first = await api.http.post("/api/auth/refresh", json={"refresh_token": grant["refresh_token"]})
    current = first.json()["data"]
    replay = await api.http.post(
        "/api/auth/refresh", json={"refresh_token": grant["refresh_token"]}
    )
    assert replay.status_code == 401 and error_of(replay)["code"] == "refresh_token_reused"
    dead = await api.http.get("/api/auth/me", headers=bearer(current["access_token"]))
    assert dead.status_code == 401
    trail = await api.http.get(
        "/api/admin/audit", headers=MASTER, params={"action": "session.refresh_reuse"}
    )
    assert [e["target"]["type"] for e in trail.json()["data"]] == ["session"]


@pytest.mark.parametrize(
    ("password", "message"),
    [
        ("short-1", "at least 10 characters"),
        ("x" * 120 + "-" * 9, "at most 128 characters"),
        (" padded-pass-1", "must not start or end with spaces"),
        ("abababababab", "at least 4 different characters"),
        ("onlyletterswords", "letters and at least one digit or symbol"),
        ("mo-maxwell-1234", "must not contain your email address"),
    ],
)
async def test_password_rules_are_explained(sqlite_api, password, message):
    response = await sqlite_api.http.post(
        "/api/auth/signup", json={"email": "maxwell@example.com", "password": password}
    )
    error = error_of(response)
    assert response.status_code == 422 and error["param"] == "password"
    assert message in error["message"]


async def test_validation_errors_name_the_field(sqlite_api):
    cases = [
        ({"email": "not-an-email", "password": GOOD}, "email"),
        ({"password": GOOD}, "email"),
        ({"email": "a@example.com", "password": GOOD, "admin": True}, "admin"),
    ]
    for body, field in cases:
        response = await sqlite_api.http.post("/api/auth/signup", json=body)
        assert response.status_code == 422 and error_of(response)["param"] == field, body
    await signup(sqlite_api, "dup@example.com")
    dup = await sqlite_api.http.post(
        "/api/auth/signup", json={"email": "DUP@example.com", "password": GOOD}
    )
    assert dup.status_code == 409 and error_of(dup)["param"] == "email"


async def test_profile_and_password_change(api):
    grant = await signup(api, "ned@example.com")
    other = (await login(api.http, "ned@example.com", GOOD)).json()["data"]
    headers = bearer(grant["access_token"])
    wrong = await api.http.patch(
        "/api/auth/me",
        headers=headers,
        json={"password": "Brand-new-pass-1", "current_password": "nope-nope-1"},
    )
    assert wrong.status_code == 422 and error_of(wrong)["param"] == "current_password"
    changed = await api.http.patch(
        "/api/auth/me",
        headers=headers,
        json={
            "name": "Ned",
            "password": "Brand-new-pass-1",
            "current_password": GOOD,
        },
    )
    assert changed.status_code == 200 and changed.json()["data"]["name"] == "Ned"
    assert (await api.http.get("/api/auth/me", headers=headers)).status_code == 200
    assert (
        await api.http.get("/api/auth/me", headers=bearer(other["access_token"]))
    ).status_code == 401
    assert (await login(api.http, "ned@example.com", GOOD)).status_code == 401
    assert (await login(api.http, "ned@example.com", "Brand-new-pass-1")).status_code == 200


async def test_sign_in_throttled_per_account_and_address(sqlite_api):
    await signup(sqlite_api, "oz@example.com")
    for _ in range(5):
        assert (
            await login(sqlite_api.http, "oz@example.com", "wrong-password-1")
        ).status_code == 401
    locked = await login(sqlite_api.http, "oz@example.com", GOOD)  # even the right password
    async with sqlite_api.client("10.7.7.7") as elsewhere:  # but only from that address
        assert (await login(elsewhere, "oz@example.com", GOOD)).status_code == 200
    assert locked.status_code == 429
    assert 1 <= int(locked.headers["retry-after"]) <= 900
    assert error_of(locked)["code"] == "rate_limit_exceeded"
    assert "Too many failed sign-in attempts" in error_of(locked)["message"]


async def test_success_clears_the_account_count(sqlite_api):
    await signup(sqlite_api, "pia@example.com")
    for _ in range(2):
        for _ in range(4):
            assert (
                await login(sqlite_api.http, "pia@example.com", "wrong-password-1")
            ).status_code == 401
        assert (await login(sqlite_api.http, "pia@example.com", GOOD)).status_code == 200


async def test_sign_in_throttled_per_address(sqlite_api):
    sqlite_api.plane.throttle = LoginThrottle(MemoryThrottleStore(), ip_limit=3)
    await make_user(sqlite_api.plane, "quin@example.com")
    async with sqlite_api.client("10.8.0.1") as guesser, sqlite_api.client("10.8.0.2") as honest:
        for i in range(3):  # unknown accounts count too
            assert (
                await login(guesser, f"nobody{i}@example.com", "wrong-password-1")
            ).status_code == 401
        assert (await login(guesser, "quin@example.com", PASSWORD)).status_code == 429
        assert (await login(honest, "quin@example.com", PASSWORD)).status_code == 200


async def test_redis_throttle_is_shared_by_instances(store_url, tmp_path, redis_server):
    redis_server.flush()
    async with (
        admin_api(store_url, tmp_path, redis_url=redis_server.url) as one,
        admin_api(store_url, tmp_path, redis_url=redis_server.url) as two,
    ):
        assert isinstance(one.plane.throttle.store, RedisThrottleStore)
        await make_user(one.plane, "rae@example.com")
        for client in (one.http, two.http, one.http, two.http, one.http):
            assert (await login(client, "rae@example.com", "wrong-password-1")).status_code == 401
        assert (await login(two.http, "rae@example.com", PASSWORD)).status_code == 429


async def test_sign_in_works_while_redis_is_down(tmp_path):
    url = f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}"
    async with admin_api(url, tmp_path, redis_url=f"redis://127.0.0.1:{free_port()}/0") as api:
        assert isinstance(api.plane.throttle.store, RedisThrottleStore)
        await make_user(api.plane, "sam@example.com")
        assert (await login(api.http, "sam@example.com", PASSWORD)).status_code == 200
        for _ in range(5):
            assert (await login(api.http, "sam@example.com", "wrong-password-1")).status_code == 401
        # Still throttled, on this instance's own count.
        assert (await login(api.http, "sam@example.com", PASSWORD)).status_code == 429


async def test_superadmin_endpoints(api):
    root = await make_user(api.plane, superadmin=True)
    person = await make_user(api.plane, "tia@example.com")
    root_headers = bearer((await sign_in(api.plane, root)).access_token)
    person_session = await sign_in(api.plane, person)
    person_headers = bearer(person_session.access_token)
    for method, path in [
        ("GET", "/api/admin/users"),
        ("POST", f"/api/admin/users/{root}/disable"),
        ("POST", f"/api/admin/users/{person}/enable"),
        ("GET", "/api/admin/audit"),
    ]:
        refused = await api.http.request(method, path, headers=person_headers)
        assert refused.status_code == 403, (method, path)
        assert (await api.http.request(method, path)).status_code == 401

    listed = await api.http.get("/api/admin/users", headers=root_headers, params={"limit": 1})
    body = listed.json()
    assert len(body["data"]) == 1 and body["has_more"] and body["next_cursor"]
    rest = await api.http.get(
        "/api/admin/users", headers=root_headers, params={"limit": 1, "cursor": body["next_cursor"]}
    )
    assert {body["data"][0]["id"], rest.json()["data"][0]["id"]} == {root, person}
    found = await api.http.get(
        "/api/admin/users", headers=MASTER, params={"email": "TIA@example.com"}
    )
    assert [u["id"] for u in found.json()["data"]] == [person]

    self_disable = await api.http.post(f"/api/admin/users/{root}/disable", headers=root_headers)
    assert self_disable.status_code == 422
    disabled = await api.http.post(f"/api/admin/users/{person}/disable", headers=root_headers)
    assert disabled.status_code == 200 and disabled.json()["data"]["disabled"]
    assert (await api.http.get("/api/auth/me", headers=person_headers)).status_code == 401
    refused_login = await login(api.http, "tia@example.com", PASSWORD)
    assert refused_login.status_code == 403 and "disabled" in error_of(refused_login)["message"]
    enabled = await api.http.post(f"/api/admin/users/{person}/enable", headers=MASTER)
    assert enabled.status_code == 200 and not enabled.json()["data"]["disabled"]
    assert (await login(api.http, "tia@example.com", PASSWORD)).status_code == 200
    missing = await api.http.post("/api/admin/users/usr_nosuchuser/disable", headers=MASTER)
    assert missing.status_code == 404

    trail = await api.http.get(
        "/api/admin/audit", headers=root_headers, params={"target_id": person}
    )
    entries = trail.json()["data"]
    assert [e["action"] for e in entries] == ["user.enable", "user.disable"]
    assert entries[1]["actor"] == {"type": "user", "id": root}
    assert entries[1]["after"]["sessions_revoked"] == 1
    assert entries[0]["actor"] == {"type": "master", "id": None}


async def test_master_key_me(sqlite_api):
    me = await sqlite_api.http.get("/api/auth/me", headers=MASTER)
    assert me.json()["data"] == {
        "id": None,
        "object": "master_key",
        "is_superadmin": True,
        "memberships": [],
    }
