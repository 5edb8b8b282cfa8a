"""Accounts and sessions at the service level: sign-up, sign-in, single-use refresh tokens,
replay detection, expiry, disabled accounts, and password changes ending other sessions."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from perpetuo.auth.passwords import DUMMY_HASH
from perpetuo.control import accounts, sessions, users
from perpetuo.control.actor import CLI_ACTOR, Actor
from perpetuo.control.sessions import ClientInfo
from perpetuo.schema.errors import GatewayError
from perpetuo.store.schema import audit_log
from perpetuo.store.schema import sessions as sessions_table
from tests.support.people import PASSWORD, make_user, password_hash, sign_in
from tests.support.plane import make_plane

CLIENT = ClientInfo("10.0.0.7", "pytest")


@pytest.fixture
async def plane(store_url):
    plane = await make_plane(store_url)
    yield plane
    await plane.db.dispose()


async def refresh(plane, token: str) -> dict:
    return await accounts.refresh(plane, accounts.Refresh(refresh_token=token), CLIENT)


async def refused(call, status: int, code: str | None = None) -> GatewayError:
    with pytest.raises(GatewayError) as exc:
        await call
    assert exc.value.status == status, exc.value.message
    if code is not None:
        assert exc.value.code == code
    return exc.value


async def test_signup_stores_only_hashes_and_signs_in(plane):
    spec = accounts.UserCreate(email=" Gil@Example.COM", password="a-Good-passw0rd", name=" Gil ")
    grant = await accounts.signup(plane, spec, CLIENT)
    assert grant["token_type"] == "bearer" and grant["expires_in"] == 900
    assert grant["user"]["email"] == "gil@example.com" and grant["user"]["name"] == "Gil"
    async with plane.db.connect() as conn:
        row = (await conn.execute(select(sessions_table))).one()
        trail = (await conn.execute(select(audit_log))).all()
    assert row.refresh_hash != grant["refresh_token"] and len(row.refresh_hash) == 64
    assert (row.ip, row.user_agent) == ("10.0.0.7", "pytest")
    assert [r.action for r in trail] == ["user.signup"]
    assert "a-Good-passw0rd" not in str([tuple(r) for r in trail])
    login = accounts.Login(email="GIL@example.com", password="a-Good-passw0rd")
    assert (await accounts.login(plane, login, CLIENT))["user"]["id"] == grant["user"]["id"]
    await refused(accounts.signup(plane, spec, CLIENT), 409)


async def test_refresh_rotates_and_a_replay_ends_the_session(plane):
    user_id = await make_user(plane)
    first = await sign_in(plane, user_id)
    second = await refresh(plane, first.refresh_token)
    assert second["refresh_token"] != first.refresh_token
    third = await refresh(plane, second["refresh_token"])  # the new one works, once
    error = await refused(refresh(plane, first.refresh_token), 401, "refresh_token_reused")
    assert "already used" in error.message
    # The replay revoked the session: the newest token is dead too.
    await refused(refresh(plane, third["refresh_token"]), 401, "session_revoked")
    async with plane.db.connect() as conn:
        trail = (await conn.execute(select(audit_log))).all()
    assert [(r.action, r.target_id) for r in trail] == [("session.refresh_reuse", first.session_id)]


async def test_refresh_refusals_are_specific(plane):
    user_id = await make_user(plane)
    tokens = await sign_in(plane, user_id)
    await refused(refresh(plane, "not-a-token"), 401, "invalid_refresh_token")
    await refused(refresh(plane, "prt_ses_nosuchsession.abc"), 401, "invalid_refresh_token")
    await users.set_disabled(plane, CLI_ACTOR, user_id, True)
    await refused(refresh(plane, tokens.refresh_token), 401, "session_revoked")
    await users.set_disabled(plane, CLI_ACTOR, user_id, False)
    plane.tokens.refresh_ttl = -1  # a session that has already run its course
    expired = await sign_in(plane, user_id)
    await refused(refresh(plane, expired.refresh_token), 401, "session_expired")


async def test_login_refusals(plane, monkeypatch):
    user_id = await make_user(plane, "hal@example.com")
    verified: list[str] = []
    real_verify = accounts.verify_password

    def spy(stored_hash: str, password: str) -> bool:
        verified.append(stored_hash)
        return real_verify(stored_hash, password)

    monkeypatch.setattr(accounts, "verify_password", spy)
    wrong = accounts.Login(email="hal@example.com", password="not-the-password-1")
    nobody = accounts.Login(email="nobody@example.com", password=PASSWORD)
    bad = await refused(accounts.login(plane, wrong, CLIENT), 401, "invalid_credentials")
    unknown = await refused(accounts.login(plane, nobody, CLIENT), 401, "invalid_credentials")
    assert bad.message == unknown.message  # which accounts exist is not revealed
    assert verified == [password_hash(), DUMMY_HASH]  # an unknown address costs a hash check too
    await users.set_disabled(plane, CLI_ACTOR, user_id, True)
    right = accounts.Login(email="hal@example.com", password=PASSWORD)
    error = await refused(accounts.login(plane, right, CLIENT), 403)
    assert "disabled" in error.message


async def test_logout_by_session_or_refresh_token(plane):
    user_id = await make_user(plane)
    a, b = await sign_in(plane, user_id), await sign_in(plane, user_id)
    await accounts.logout(plane, a.session_id, None)
    await refused(refresh(plane, a.refresh_token), 401, "session_revoked")
    await accounts.logout(plane, None, b.refresh_token)
    await refused(refresh(plane, b.refresh_token), 401, "session_revoked")
    await refused(accounts.logout(plane, None, b.refresh_token), 401)
    await refused(accounts.logout(plane, None, None), 401)


async def test_password_change_needs_the_current_one_and_ends_other_sessions(plane):
    user_id = await make_user(plane, "ida@example.com")
    current, other = await sign_in(plane, user_id), await sign_in(plane, user_id)
    actor = Actor(kind="user", user_id=user_id, ip="10.0.0.8")
    change = accounts.update_me
    missing = await refused(
        change(
            plane, actor, accounts.ProfileUpdate(password="New-password-99"), current.session_id
        ),
        422,
    )
    assert missing.param == "current_password"
    wrong = accounts.ProfileUpdate(password="New-password-99", current_password="guess-guess-1")
    assert (await refused(change(plane, actor, wrong, current.session_id), 422)).param == (
        "current_password"
    )
    weak = accounts.ProfileUpdate(password="short", current_password=PASSWORD)
    error = await refused(change(plane, actor, weak, current.session_id), 422)
    assert error.param == "password" and "at least 10 characters" in error.message
    good = accounts.ProfileUpdate(name="Ida", password="New-password-99", current_password=PASSWORD)
    view = await change(plane, actor, good, current.session_id)
    assert view["name"] == "Ida"
    await refresh(plane, current.refresh_token)  # this session goes on
    await refused(refresh(plane, other.refresh_token), 401, "session_revoked")
    old = accounts.Login(email="ida@example.com", password=PASSWORD)
    await refused(accounts.login(plane, old, CLIENT), 401)
    await accounts.login(
        plane, accounts.Login(email="ida@example.com", password="New-password-99"), CLIENT
    )
    async with plane.db.connect() as conn:
        trail = (await conn.execute(select(audit_log).order_by(audit_log.c.id))).all()
    assert [r.action for r in trail] == ["user.update", "user.password_change"]
    assert trail[1].after == {"password_changed": True, "other_sessions_revoked": 1}
    assert "New-password-99" not in str([tuple(r) for r in trail])


async def test_wrong_current_password_counts_toward_the_throttle(plane):
    user_id = await make_user(plane, "jo@example.com")
    plane.throttle.pair_limit = 2
    actor = Actor(kind="user", user_id=user_id, ip="10.0.0.9")
    wrong = accounts.ProfileUpdate(password="New-password-99", current_password="guess-guess-1")
    for _ in range(2):
        await refused(accounts.update_me(plane, actor, wrong, None), 422)
    await refused(accounts.update_me(plane, actor, wrong, None), 429)


async def test_create_user_keeps_its_contract(plane):
    view = await accounts.create_user(
        plane,
        CLI_ACTOR,
        accounts.UserCreate(email="root@example.com", password=PASSWORD),
        superadmin=True,
    )
    assert view["is_superadmin"] and view["email"] == "root@example.com"
    dup = accounts.UserCreate(email="ROOT@example.com", password=PASSWORD)
    assert (await refused(accounts.create_user(plane, CLI_ACTOR, dup), 409)).param == "email"
    async with plane.db.connect() as conn:
        assert await sessions.find_by_refresh(conn, "prt_x.y") is None
