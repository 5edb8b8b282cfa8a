"""Single sign-on against a real OpenID Connect provider (node-oidc-provider, started by the
suite), driven in Chromium: a workspace's provider set up through the admin API, its domain
verified by the platform administrator, then people signing in, refused, and signing out.

The provider's test API makes its next ID tokens wrong in one way at a time (audience,
expiry, signing key) and rotates its signing key, so each check the gateway makes is seen
refusing exactly what it should.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page

from perpetuo.auth.credential_crypto import new_key_spec
from tests.support.gateway import MASTER_KEY, GatewayProcess
from tests.support.idp import IdentityProvider
from tests.ui.conftest import PASSWORD, open_page, shoot

SECRET = "acme-client-secret-0123456789"
USERS = {
    "alice": {
        "password": "alice-pw",
        "email": "alice@acme.example.com",
        "name": "Alice Admin",
        "groups": ["perpetuo-admins", "staff"],
    },
    "bob": {"password": "bob-pw", "email": "bob@acme.example.com", "groups": ["contractors"]},
    "carol": {"password": "carol-pw", "email": "carol@acme.example.com", "groups": ["engineering"]},
    "dave": {"password": "dave-pw", "email": "dave@acme.example.com", "groups": ["engineering"]},
    "erin": {"password": "erin-pw", "email": "erin@other.example.net", "groups": ["engineering"]},
}
MASTER = {"authorization": f"Bearer {MASTER_KEY}"}


@dataclass
class Sso:
    gateway: GatewayProcess
    idp: IdentityProvider
    http: httpx.Client
    workspace_id: str
    provider: dict[str, Any]

    def user(self, email: str) -> dict[str, Any] | None:
        found = self.http.get("/api/admin/users", headers=MASTER, params={"limit": 200})
        return next((u for u in found.json()["data"] if u["email"] == email), None)

    def role_of(self, email: str) -> str | None:
        members = self.http.get(
            f"/api/workspaces/{self.workspace_id}/members", headers=MASTER, params={"limit": 200}
        )
        return next((m["role"] for m in members.json()["data"] if m["email"] == email), None)


def _created(response: httpx.Response, name: str = "id") -> Any:
    assert response.status_code == 201, response.text
    return response.json()["data"][name]


@pytest.fixture(scope="module")
def sso(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sso]:
    workdir = tmp_path_factory.mktemp("sso")
    idp = IdentityProvider(USERS, workdir).start()
    config = {"egress": {"allow_http": True, "allow_private": True}}  # the provider is local
    env = {"PERPETUO_SIGNUP": "open", "PERPETUO_ENCRYPTION_KEYS": new_key_spec("sso")}
    gateway = GatewayProcess(config, workdir, env=env).start(timeout=60)
    http = httpx.Client(base_url=gateway.url, timeout=30)
    try:
        admin = _created(
            http.post("/api/auth/signup", json={"email": "root@example.com", "password": PASSWORD}),
            "access_token",
        )
        owner = _created(
            http.post(
                "/api/auth/signup", json={"email": "owner@acme.example.com", "password": PASSWORD}
            ),
            "access_token",
        )
        # Carol had a password before her organisation turned single sign-on on.
        _created(
            http.post(
                "/api/auth/signup", json={"email": "carol@acme.example.com", "password": PASSWORD}
            ),
            "access_token",
        )
        as_owner = {"authorization": f"Bearer {owner}"}
        workspace_id = _created(
            http.post("/api/workspaces", headers=as_owner, json={"name": "Acme"})
        )
        provider = http.post(
            f"/api/workspaces/{workspace_id}/sso/providers",
            headers=as_owner,
            json={
                "name": "Acme SSO",
                "issuer": idp.url,
                "client_id": "acme-perpetuo",
                "client_secret": SECRET,
                "scopes": ["openid", "email", "profile", "groups"],
                "domains": ["acme.example.com", "other.example.net"],
                "role_mapping": {"perpetuo-admins": "admin", "engineering": "member"},
                "unmapped_groups": "refuse",
                "sso_required": True,
            },
        )
        assert provider.status_code == 201, provider.text
        view = provider.json()["data"]
        assert SECRET not in provider.text and view["client_secret_last4"] == SECRET[-4:]
        verified = http.put(
            f"/api/workspaces/{workspace_id}/sso/domains/acme.example.com",
            headers={"authorization": f"Bearer {admin}"},
        )
        assert verified.status_code == 200, verified.text
        idp.add_client("acme-perpetuo", SECRET, view["redirect_uri"], f"{gateway.url}/ui/login")
        yield Sso(gateway, idp, http, workspace_id, view)
    finally:
        http.close()
        gateway.stop()
        idp.stop()


@pytest.fixture(autouse=True)
def _clean_tokens(sso: Sso) -> Iterator[None]:
    yield
    sso.idp.reset()


def _page(browser: Browser, sso: Sso) -> Page:
    page = open_page(browser, sso.gateway.url)
    # Nothing leaves the machine: the gateway and the provider are both on loopback.
    page.context.route(re.compile(r"^(?!http://127\.0\.0\.1[:/])"), lambda route: route.abort())
    return page


def _to_provider(page: Page, email: str) -> None:
    page.goto("/ui/login")
    page.get_by_label("Work email address").fill(email)
    page.get_by_role("button", name="Sign in with single sign-on").click()
    page.get_by_label("Username").wait_for()


def _at_provider(page: Page, sso: Sso, username: str) -> None:
    """Sign in on the provider's page; the browser comes back to the gateway."""
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(USERS[username]["password"])
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(re.compile("^" + re.escape(sso.gateway.url) + "/ui/"))


def _sign_in(page: Page, sso: Sso, username: str) -> None:
    _to_provider(page, USERS[username]["email"])
    _at_provider(page, sso, username)


def _session_cookie(page: Page) -> str | None:
    found = [c for c in page.context.cookies() if c["name"] == "perpetuo_session"]
    return found[0]["value"] if found else None


def _refusal(page: Page) -> str:
    return page.locator("[data-error='form']").inner_text()


def test_first_sign_in_makes_the_account_and_maps_groups_to_a_role(chromium, sso):
    def steps(browser: Browser) -> None:
        page = _page(browser, sso)
        _sign_in(page, sso, "alice")
        page.wait_for_url(f"**/ui/w/{sso.workspace_id}")
        assert "Alice Admin" in page.content() or "alice@acme.example.com" in page.content()
        shoot(page, "sso-signed-in")
        page.context.close()

    chromium.run(steps)
    user = sso.user("alice@acme.example.com")
    assert user is not None and user["email_verified"] is True
    assert sso.role_of("alice@acme.example.com") == "admin"  # perpetuo-admins -> admin


def test_a_rotated_signing_key_is_fetched_once_and_accepted(chromium, sso):
    def steps(browser: Browser) -> None:
        page = _page(browser, sso)
        _sign_in(page, sso, "dave")  # the key set is cached now
        page.context.close()
        before = sso.idp.stats()
        rotated = sso.idp.rotate_keys()
        assert rotated["kids"][0] not in before["kids"]
        page = _page(browser, sso)
        _sign_in(page, sso, "dave")
        page.wait_for_url(f"**/ui/w/{sso.workspace_id}")
        assert _session_cookie(page)
        assert sso.idp.stats()["jwks"] == before["jwks"] + 1  # one refetch, no more
        page.context.close()

    chromium.run(steps)
    assert sso.role_of("dave@acme.example.com") == "member"


@pytest.mark.parametrize(
    ("fault", "words"),
    [
        ({"audience": "another-application"}, "issued for another application (audience)"),
        ({"expired": True}, "it has expired"),
        ({"unknown_key": True}, "signed with a key the provider does not publish"),
    ],
)
def test_a_wrong_id_token_is_refused(chromium, sso, fault, words):
    def steps(browser: Browser) -> str:
        page = _page(browser, sso)
        _to_provider(page, "carol@acme.example.com")
        sso.idp.spoil_tokens(**fault)
        jwks = sso.idp.stats()["jwks"]
        _at_provider(page, sso, "carol")
        message = _refusal(page)
        assert _session_cookie(page) is None
        if "unknown_key" in fault:  # an unknown key refetches the set once, then refuses
            assert sso.idp.stats()["jwks"] == jwks + 1
        page.context.close()
        return message

    message = chromium.run(steps)
    assert words in message, message
    assert sso.role_of("carol@acme.example.com") is None  # nothing was granted


def test_a_replayed_or_foreign_answer_is_refused(chromium, sso):
    def steps(browser: Browser) -> tuple[str, str, str]:
        page = _page(browser, sso)
        callbacks: list[str] = []
        page.on("request", lambda r: callbacks.append(r.url) if "/callback?" in r.url else None)
        _sign_in(page, sso, "alice")
        assert callbacks and "state=" in callbacks[0]
        page.goto(callbacks[0])  # the same answer again, same browser
        replayed = _refusal(page)
        other = _page(browser, sso)
        other.goto(callbacks[0])  # and from another browser
        elsewhere = _refusal(other)
        other.context.close()
        # A sign-in started in one browser and finished in another (login CSRF).
        page.context.clear_cookies()
        starter = _page(browser, sso)
        starter.goto("/ui/login")
        started: list[str] = []
        starter.on("request", lambda r: started.append(r.url) if "/auth?" in r.url else None)
        starter.goto(f"/ui/sso/{sso.provider['id']}/start")
        starter.get_by_label("Username").wait_for()
        victim = _page(browser, sso)
        victim.goto(started[0])
        _at_provider(victim, sso, "alice")
        foreign = _refusal(victim)
        assert _session_cookie(victim) is None
        for p in (page, starter, victim):
            p.context.close()
        return replayed, elsewhere, foreign

    replayed, elsewhere, foreign = chromium.run(steps)
    assert "already used" in replayed
    assert "already used" in elsewhere
    assert "started in another browser" in foreign


def test_someone_in_no_mapped_group_is_refused(chromium, sso):
    def steps(browser: Browser) -> str:
        page = _page(browser, sso)
        _sign_in(page, sso, "bob")
        message = _refusal(page)
        shoot(page, "sso-refused")
        page.context.close()
        return message

    message = chromium.run(steps)
    assert "no group that gives access" in message and "contractors" in message
    assert sso.user("bob@acme.example.com") is None  # refused before any account was made


def test_an_unverified_domain_signs_nobody_in(chromium, sso):
    def steps(browser: Browser) -> str:
        page = _page(browser, sso)
        page.goto(f"/ui/sso/{sso.provider['id']}/start")
        _at_provider(page, sso, "erin")  # other.example.net is listed, never verified
        message = _refusal(page)
        page.context.close()
        return message

    assert "does not sign in addresses at other.example.net" in chromium.run(steps)
    assert sso.user("erin@other.example.net") is None


def test_sso_required_refuses_passwords_and_points_to_the_provider(chromium, sso):
    def steps(browser: Browser) -> str:
        page = _page(browser, sso)
        page.goto("/ui/login")
        page.get_by_label("Email address", exact=True).fill("carol@acme.example.com")
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in", exact=True).click()
        message = _refusal(page)
        assert _session_cookie(page) is None
        page.context.close()
        return message

    message = chromium.run(steps)
    assert "single sign-on" in message and "Acme SSO" in message
    login = sso.http.post(
        "/api/auth/login", json={"email": "carol@acme.example.com", "password": PASSWORD}
    )
    assert login.status_code == 403 and login.json()["error"]["code"] == "sso_required"
    reset = sso.http.post("/api/auth/password-reset", json={"email": "carol@acme.example.com"})
    assert reset.status_code == 403 and reset.json()["error"]["code"] == "sso_required"
    # Whether an account exists does not change the answer (no account enumeration).
    nobody = sso.http.post(
        "/api/auth/login", json={"email": "zed@acme.example.com", "password": "x"}
    )
    assert nobody.status_code == 403 and nobody.json()["error"]["code"] == "sso_required"


def test_sign_out_ends_the_session_here_and_at_the_provider(chromium, sso):
    def steps(browser: Browser) -> None:
        page = _page(browser, sso)
        _sign_in(page, sso, "alice")
        cookie = _session_cookie(page)
        assert cookie
        page.get_by_role("button", name="Log out").click()
        page.get_by_role("button", name="Yes, sign me out").click()  # the provider asks
        page.wait_for_url("**/ui/login")
        shoot(page, "sso-signed-out")
        # The old session cookie is dead here...
        response = httpx.get(
            f"{sso.gateway.url}/ui/",
            cookies={"perpetuo_session": cookie},
            follow_redirects=False,
        )
        assert response.status_code == 303 and "/ui/login" in response.headers["location"]
        # ...and the provider asks for the password again.
        _to_provider(page, "alice@acme.example.com")
        assert page.get_by_label("Password").is_visible()
        page.context.close()

    chromium.run(steps)
