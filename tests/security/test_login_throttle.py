"""Sign-in throttling cannot be turned into a lockout, and cannot be dodged with a made-up
X-Forwarded-For: the client address is the right-most one that is not a trusted proxy, for
sign-in throttling and data-plane IP allowlists alike."""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import pytest

from perpetuo.api.http import TrustedProxies
from tests.support.gateway import MASTER_KEY, GatewayProcess

PASSWORD = "correct horse battery 9"
ADMIN = "root@example.com"


@pytest.fixture(scope="module")
def gateway(tmp_path_factory) -> Iterator[GatewayProcess]:
    # The tests connect from 127.0.0.1, a trusted proxy by default, and name their
    # "clients" in X-Forwarded-For as a load balancer in front of the gateway would.
    env = {"PERPETUO_SIGNUP": "open"}
    with GatewayProcess({"models": {}}, tmp_path_factory.mktemp("throttle"), env=env) as gw:
        signed = httpx.post(
            f"{gw.url}/api/auth/signup", json={"email": ADMIN, "password": PASSWORD}, timeout=30
        )
        assert signed.json()["data"]["user"]["is_superadmin"] is True
        yield gw


def login(gw: GatewayProcess, email: str, password: str, forwarded_for: str) -> httpx.Response:
    return httpx.post(
        f"{gw.url}/api/auth/login",
        json={"email": email, "password": password},
        headers={"x-forwarded-for": forwarded_for},
        timeout=30,
    )


def test_an_attacker_cannot_lock_the_admin_out(gateway):
    statuses = [
        login(gateway, ADMIN, f"guess-{i}-xyz", "203.0.113.66").status_code for i in range(50)
    ]
    assert statuses[:5] == [401] * 5
    assert set(statuses[5:]) == {429}  # the attacker's address backs off
    # The administrator, from an address that has not failed, signs in at once.
    admin = login(gateway, ADMIN, PASSWORD, "198.51.100.7")
    assert admin.status_code == 200, admin.text
    # The attacker's address is refused even with the right password, and told for how long.
    slowed = login(gateway, ADMIN, PASSWORD, "203.0.113.66")
    assert slowed.status_code == 429
    assert int(slowed.headers["retry-after"]) >= 1
    assert slowed.json()["error"]["code"] == "rate_limit_exceeded"


def test_a_spoofed_forwarded_for_neither_resets_nor_dodges_the_address_count(gateway):
    """Rotating the left, client-written part of the chain changes nothing: the address the
    trusted proxy appended (the right-most untrusted one) is what is counted."""
    statuses = [
        login(gateway, f"nobody{i}@example.com", "wrong-password-1", f"10.{i}.0.1, 192.0.2.44")
        for i in range(25)
    ]
    codes = [r.status_code for r in statuses]
    assert codes[:20] == [401] * 20
    assert set(codes[20:]) == {429}
    # The same real client, whatever it claims, stays refused; another real client does not.
    assert login(gateway, ADMIN, PASSWORD, "198.51.100.99, 192.0.2.44").status_code == 429
    assert login(gateway, ADMIN, PASSWORD, "192.0.2.44, 198.51.100.99").status_code == 200


def test_data_plane_ip_allowlists_read_the_same_client_address(gateway):
    master = {"authorization": f"Bearer {MASTER_KEY}"}
    created = httpx.post(
        f"{gateway.url}/api/workspaces/ws_default/keys",
        headers=master,
        json={"name": "office only", "ip_allowlist": ["192.0.2.0/24"]},
    )
    key = created.json()["data"]["key"]

    def models(forwarded_for: str) -> httpx.Response:
        headers = {"authorization": f"Bearer {key}", "x-forwarded-for": forwarded_for}
        return httpx.get(f"{gateway.url}/v1/models", headers=headers)

    assert models("203.0.113.1, 192.0.2.10").status_code == 200
    refused = models("192.0.2.10, 203.0.113.1")  # the allowed address is only claimed
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "ip_not_allowed"


def test_a_peer_that_is_not_a_trusted_proxy_is_the_client(gateway):
    """From 127.0.0.2 (not in PERPETUO_TRUSTED_PROXIES), X-Forwarded-For is ignored."""
    transport = httpx.HTTPTransport(local_address="127.0.0.2")
    with httpx.Client(transport=transport, base_url=gateway.url, timeout=30) as direct:
        codes = [
            direct.post(
                "/api/auth/login",
                json={"email": ADMIN, "password": "wrong-password-1"},
                headers={"x-forwarded-for": f"198.51.100.{i}"},
            ).status_code
            for i in range(6)
        ]
    assert codes == [401] * 5 + [429]


@pytest.mark.parametrize(
    ("spec", "peer", "chain", "client"),
    [
        ("127.0.0.1", "127.0.0.1", ["spoofed, 203.0.113.5"], "203.0.113.5"),
        ("127.0.0.1", "127.0.0.1", ["1.1.1.1, 203.0.113.5, 127.0.0.1"], "203.0.113.5"),
        ("127.0.0.1", "198.51.100.1", ["203.0.113.5"], "198.51.100.1"),  # untrusted peer
        ("10.0.0.0/8", "10.0.0.2", ["203.0.113.5, 10.1.1.1", "10.2.2.2"], "203.0.113.5"),
        ("10.0.0.0/8", "10.0.0.2", ["10.1.1.1"], "10.1.1.1"),  # a client among the proxies
        ("*", "10.0.0.2", ["1.2.3.4, 203.0.113.5"], "203.0.113.5"),  # * trusts one hop only
        ("127.0.0.1", "127.0.0.1", ["[2001:db8::1]:443"], "2001:db8::1"),
        ("127.0.0.1", "127.0.0.1", ["203.0.113.5:8080"], "203.0.113.5"),
    ],
)
def test_client_address_is_the_right_most_untrusted_hop(spec, peer, chain, client):
    assert TrustedProxies(spec).client(peer, chain) == client


def test_a_bad_trusted_proxies_entry_is_named():
    with pytest.raises(ValueError, match="PERPETUO_TRUSTED_PROXIES: 'nonsense'"):
        TrustedProxies("127.0.0.1, nonsense")


def test_the_dashboard_sign_in_reads_the_same_client_address(gateway):
    def attempt(password: str, forwarded_for: str) -> int:
        with httpx.Client(base_url=gateway.url, timeout=30) as browser:
            page = browser.get("/ui/login", headers={"x-forwarded-for": forwarded_for})
            csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text)[1]
            reply = browser.post(
                "/ui/login",
                data={"email": ADMIN, "password": password, "csrf_token": csrf},
                headers={"x-forwarded-for": forwarded_for, "origin": gateway.url},
            )
            return reply.status_code

    codes = [attempt("wrong-password-1", f"10.9.{i}.1, 203.0.113.201") for i in range(6)]
    assert codes == [401] * 5 + [429]  # the rotating left part is not the client
    assert attempt(PASSWORD, "203.0.113.201, 198.51.100.50") == 303  # another real client
