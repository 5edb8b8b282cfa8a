"""Mail people act on, end to end: the admin API on a real gateway, a real SMTP server
receiving what the outbox sends, and the links in those mails used as people would."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import update

from perpetuo.store.schema import user_tokens
from tests.support.admin_api import MASTER, admin_api, bearer, error_of
from tests.support.people import PASSWORD, make_user, make_workspace, sign_in
from tests.support.smtp import SMTPServer, html_of, link_in, text_of, token_in

NEW_PASSWORD = "Battery-staple-97"


@pytest.fixture
async def api(tmp_path, smtp: SMTPServer):
    url = f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}"
    async with admin_api(url, tmp_path, **smtp.settings()) as api:
        yield api


async def _signup(api, email: str) -> dict:
    response = await api.http.post(
        "/api/auth/signup", json={"email": email, "password": PASSWORD, "name": "Ada"}
    )
    assert response.status_code == 201, response.text
    return response.json()["data"]


async def test_signup_mails_a_link_that_verifies_the_address_once(api, smtp: SMTPServer):
    tokens = await _signup(api, "ada@example.com")
    assert tokens["user"]["email_verified"] is False
    [mail] = await smtp.inbox.wait_for(To="ada@example.com")
    assert mail["From"] == "Perpetuo <noreply@example.com>"
    assert "Confirm your email address" in mail["Subject"]
    assert "List-Unsubscribe" not in mail  # account mail is transactional
    token = token_in(mail, "/ui/verify-email")
    assert link_in(mail, "/ui/verify-email") in html_of(mail).replace("&amp;", "&")

    verified = await api.http.post("/api/auth/verify-email", json={"token": token})
    assert verified.status_code == 200, verified.text
    me = await api.http.get("/api/auth/me", headers=bearer(tokens["access_token"]))
    assert me.json()["data"]["email_verified"] is True

    again = await api.http.post("/api/auth/verify-email", json={"token": token})
    assert again.status_code == 410
    assert error_of(again)["code"] == "token_used"
    forged = await api.http.post("/api/auth/verify-email", json={"token": token[:-3] + "abc"})
    assert forged.status_code == 422


async def test_unverified_people_can_ask_for_another_link_once_a_minute(api, smtp):
    tokens = await _signup(api, "bo@example.com")
    await smtp.inbox.wait_for(To="bo@example.com")
    headers = bearer(tokens["access_token"])
    too_soon = await api.http.post("/api/auth/verify-email/resend", headers=headers)
    assert too_soon.status_code == 429 and "retry-after" in too_soon.headers
    async with api.plane.db.begin() as conn:  # a minute later
        a_minute_ago = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=61)
        await conn.execute(update(user_tokens).values(created_at=a_minute_ago))
    resent = await api.http.post("/api/auth/verify-email/resend", headers=headers)
    assert resent.status_code == 202, resent.text
    mails = await smtp.inbox.wait_for(2, To="bo@example.com")
    assert len(mails) == 2
    verified = await api.http.post(
        "/api/auth/verify-email", json={"token": token_in(mails[1], "/ui/verify-email")}
    )
    assert verified.status_code == 200
    done = await api.http.post("/api/auth/verify-email/resend", headers=headers)
    assert done.status_code == 409


async def test_password_reset_link_works_once_and_ends_every_session(api, smtp):
    user_id = await make_user(api.plane, "cy@example.com")
    session = await sign_in(api.plane, user_id)
    asked = await api.http.post("/api/auth/password-reset", json={"email": "CY@example.com"})
    assert asked.status_code == 202
    [mail] = await smtp.inbox.wait_for(To="cy@example.com")
    assert "127.0.0.1" in text_of(mail)  # who asked, so the owner can tell it was not them
    token = token_in(mail, "/ui/reset-password")

    weak = await api.http.post(
        "/api/auth/password-reset/confirm", json={"token": token, "password": "short"}
    )
    assert weak.status_code == 422 and error_of(weak)["param"] == "password"
    done = await api.http.post(
        "/api/auth/password-reset/confirm", json={"token": token, "password": NEW_PASSWORD}
    )
    assert done.status_code == 204, done.text

    old = await api.http.get("/api/auth/me", headers=bearer(session.access_token))
    assert old.status_code == 401  # the session from before the reset is over
    refused = await api.http.post(
        "/api/auth/login", json={"email": "cy@example.com", "password": PASSWORD}
    )
    assert refused.status_code == 401
    login = await api.http.post(
        "/api/auth/login", json={"email": "cy@example.com", "password": NEW_PASSWORD}
    )
    assert login.status_code == 200
    assert login.json()["data"]["user"]["email_verified"] is True  # the mail reached them

    reused = await api.http.post(
        "/api/auth/password-reset/confirm", json={"token": token, "password": "Other-pass-123"}
    )
    assert reused.status_code == 410 and error_of(reused)["code"] == "token_used"


async def test_an_expired_reset_link_is_refused(api, smtp):
    await make_user(api.plane, "di@example.com")
    await api.http.post("/api/auth/password-reset", json={"email": "di@example.com"})
    [mail] = await smtp.inbox.wait_for(To="di@example.com")
    async with api.plane.db.begin() as conn:
        await conn.execute(update(user_tokens).values(expires_at=dt.datetime.now(dt.UTC)))
    expired = await api.http.post(
        "/api/auth/password-reset/confirm",
        json={"token": token_in(mail, "/ui/reset-password"), "password": NEW_PASSWORD},
    )
    assert expired.status_code == 410 and error_of(expired)["code"] == "token_expired"


async def test_reset_answers_alike_for_unknown_addresses_and_sends_nothing(api, smtp):
    await make_user(api.plane, "known@example.com")
    unknown = await api.http.post("/api/auth/password-reset", json={"email": "nobody@example.com"})
    known = await api.http.post("/api/auth/password-reset", json={"email": "known@example.com"})
    assert unknown.status_code == known.status_code == 202
    assert unknown.json() == known.json()
    await smtp.inbox.wait_for(To="known@example.com")
    twice = await api.http.post("/api/auth/password-reset", json={"email": "known@example.com"})
    assert twice.status_code == 202
    await smtp.inbox.wait_for(2, within=1.0)
    assert [m["To"] for m in smtp.inbox.messages] == ["known@example.com"]  # one a minute


async def test_an_invite_is_mailed_and_its_link_joins_the_workspace(api, smtp):
    owner = await make_user(api.plane, "owner@example.com")
    workspace_id = await make_workspace(api.plane, {owner: "owner"})
    headers = bearer((await sign_in(api.plane, owner)).access_token)
    created = await api.http.post(
        f"/api/workspaces/{workspace_id}/invites",
        headers=headers,
        json={"email": "Eve@Example.com", "role": "member"},
    )
    assert created.status_code == 201
    assert created.json()["data"]["emailed"] is True
    [mail] = await smtp.inbox.wait_for(To="eve@example.com")
    assert "invited you to test" in mail["Subject"]
    token = token_in(mail, "/ui/invite")
    assert token == created.json()["data"]["token"]

    signup = await api.http.post(
        "/api/auth/signup",
        json={"email": "eve@example.com", "password": PASSWORD, "invite_token": token},
    )
    assert signup.status_code == 201, signup.text
    me = await api.http.get("/api/auth/me", headers=bearer(signup.json()["data"]["access_token"]))
    assert [m["workspace_id"] for m in me.json()["data"]["memberships"]] == [workspace_id]
    assert me.json()["data"]["email_verified"] is True  # the invitation went to the address
    assert len(smtp.inbox.to("eve@example.com")) == 1  # so no verification mail either


async def test_requiring_verification_holds_back_workspaces_and_keys(tmp_path, smtp):
    url = f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}"
    settings = smtp.settings(require_email_verification=True)
    async with admin_api(url, tmp_path, **settings) as api:
        await make_user(api.plane, "root@example.com", superadmin=True)  # not the first
        tokens = await _signup(api, "fay@example.com")
        headers = bearer(tokens["access_token"])
        refused = await api.http.post("/api/workspaces", headers=headers, json={"name": "w"})
        assert refused.status_code == 403
        assert "Confirm your e-mail address" in error_of(refused)["message"]
        [mail] = await smtp.inbox.wait_for(To="fay@example.com")
        verify = {"token": token_in(mail, "/ui/verify-email")}
        assert (await api.http.post("/api/auth/verify-email", json=verify)).status_code == 200
        allowed = await api.http.post("/api/workspaces", headers=headers, json={"name": "w"})
        assert allowed.status_code == 201


async def test_without_smtp_nothing_is_queued_and_mail_flows_say_so(tmp_path):
    url = f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}"
    async with admin_api(url, tmp_path) as api:
        tokens = await _signup(api, "gus@example.com")
        reset = await api.http.post("/api/auth/password-reset", json={"email": "gus@example.com"})
        assert reset.status_code == 403 and error_of(reset)["code"] == "mail_not_configured"
        owner = await make_user(api.plane, "o@example.com")
        workspace_id = await make_workspace(api.plane, {owner: "owner"})
        invite = await api.http.post(
            f"/api/workspaces/{workspace_id}/invites",
            headers=bearer((await sign_in(api.plane, owner)).access_token),
            json={"email": "h@example.com"},
        )
        assert invite.json()["data"]["emailed"] is False
        assert invite.json()["data"]["token"].startswith("pinv_")  # passed on by hand
        assert tokens["user"]["email_verified"] is False
        from sqlalchemy import func, select

        from perpetuo.store.schema import mail_outbox

        async with api.plane.db.connect() as conn:
            assert await conn.scalar(select(func.count()).select_from(mail_outbox)) == 0


def test_mail_settings_are_checked_at_start():
    from pydantic import ValidationError

    from perpetuo.config import Settings

    with pytest.raises(ValidationError, match="MAIL_FROM"):
        Settings(smtp_host="smtp.example.com")
    with pytest.raises(ValidationError, match="SMTP_HOST"):
        Settings(require_email_verification=True)


_ = MASTER
