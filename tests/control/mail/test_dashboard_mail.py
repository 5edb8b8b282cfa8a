"""The mail flows in the dashboard, in-process: forgot password, the mailed reset page, the
verification banner and its resend button, the mailed verification link, mail preferences,
the unsubscribe page (one button, no sign-in), and the balance members see."""

from __future__ import annotations

import httpx
import pytest

from tests.support.admin_api import admin_api
from tests.support.people import PASSWORD, make_user
from tests.support.smtp import SMTPServer, token_in
from tests.ui.world import ORIGIN, csrf_of, signed_in

NEW_PASSWORD = "Battery-staple-97"


@pytest.fixture
async def api(tmp_path, smtp: SMTPServer):
    url = f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}"
    async with admin_api(url, tmp_path, **smtp.settings()) as api:
        yield api


async def _presession_post(http: httpx.AsyncClient, page: str, action: str, data: dict):
    """Open `page` (which sets the pre-session cookie and token), then post its form."""
    form_page = await http.get(page)
    assert form_page.status_code == 200, form_page.text
    token = csrf_of(form_page.text)
    return await http.post(action, data={**data, "csrf_token": token}, headers={"origin": ORIGIN})


async def test_forgot_password_then_the_mailed_reset_page(api, smtp: SMTPServer):
    await make_user(api.plane, "ann@example.com")
    async with api.client("127.0.0.1") as http:
        login = await http.get("/ui/login")
        assert 'href="/ui/forgot-password"' in login.text
        sent = await _presession_post(
            http, "/ui/forgot-password", "/ui/forgot-password", {"email": "ann@example.com"}
        )
        assert sent.status_code == 200 and "data-sent" in sent.text
        [mail] = await smtp.inbox.wait_for(To="ann@example.com")
        token = token_in(mail, "/ui/reset-password")
        page = f"/ui/reset-password?token={token}"
        done = await _presession_post(
            http, page, "/ui/reset-password", {"token": token, "password": NEW_PASSWORD}
        )
        assert done.status_code == 303 and done.headers["location"] == "/ui/login"
        again = await _presession_post(
            http, page, "/ui/reset-password", {"token": token, "password": "Other-pass-123"}
        )
        assert again.status_code == 410 and "already used" in again.text
        signin = await _presession_post(
            http, "/ui/login", "/ui/login", {"email": "ann@example.com", "password": NEW_PASSWORD}
        )
        assert signin.status_code == 303


async def test_the_banner_resends_and_the_mailed_link_verifies(api, smtp: SMTPServer):
    user_id = await make_user(api.plane, "bo@example.com")  # made unverified
    person = await signed_in(api, user_id)
    page = await person.get("/ui/workspaces")
    assert 'data-banner="verify-email"' in page.text
    resent = await person.post("/ui/verify-email/resend")
    assert resent.status_code == 303
    [mail] = await smtp.inbox.wait_for(To="bo@example.com")
    async with api.client("127.0.0.1") as anonymous:  # opened on another device
        opened = await anonymous.get(f"/ui/verify-email?token={token_in(mail, '/ui/verify-email')}")
    assert opened.status_code == 200 and "data-verified" in opened.text
    page = await person.get("/ui/workspaces")
    assert 'data-banner="verify-email"' not in page.text


async def test_preferences_and_the_unsubscribe_page(api, smtp: SMTPServer):
    user_id = await make_user(api.plane, "cy@example.com")
    person = await signed_in(api, user_id)
    account = await person.get("/ui/account")
    assert account.status_code == 200
    assert 'name="mail.budget" type="checkbox" value="on" checked' in account.text
    saved = await person.post("/ui/account/mail", {"mail.budget": "on", "mail.balance": "on"})
    assert saved.status_code == 303
    account = await person.get("/ui/account")
    assert 'name="mail.keys" type="checkbox" value="on">' in account.text  # now off
    assert 'name="mail.budget" type="checkbox" value="on" checked' in account.text

    token = api.plane.mail.unsubscribe_token(user_id, "budget")
    async with api.client("127.0.0.1") as anonymous:
        page = await anonymous.get(f"/ui/unsubscribe?token={token}")
        assert page.status_code == 200 and "data-unsubscribed" not in page.text  # GET: no change
        account = await person.get("/ui/account")
        assert 'name="mail.budget" type="checkbox" value="on" checked' in account.text
        done = await _presession_post(
            anonymous, f"/ui/unsubscribe?token={token}", "/ui/unsubscribe", {"token": token}
        )
        assert done.status_code == 200 and "data-unsubscribed" in done.text
        forged = await _presession_post(
            anonymous, "/ui/unsubscribe?token=x", "/ui/unsubscribe", {"token": token + "x"}
        )
        assert forged.status_code == 422
    account = await person.get("/ui/account")
    assert 'name="mail.budget" type="checkbox" value="on">' in account.text


_ = PASSWORD
