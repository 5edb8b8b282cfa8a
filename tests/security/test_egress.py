"""SSRF: a tenant's URLs (credential endpoints, connection tests, webhooks) cannot reach the
operator's network, the cloud metadata service or the gateway itself, however they are
spelled, whatever DNS says at connect time, and redirects are never followed."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from types import SimpleNamespace

import pytest
from aiohttp import web

from perpetuo.config import GatewayConfig
from perpetuo.control.alerts.delivery import Deliverer, DeliveryPolicy, Undeliverable
from perpetuo.transport.client import HTTPClient
from perpetuo.transport.egress import EgressPolicy, EgressRefused, build_policy
from perpetuo.transport.url import URL, Timeouts
from tests.mocks.openai_mock import OpenAIMock
from tests.support.admin_api import admin_api, bearer, error_of
from tests.support.people import make_user, make_workspace, sign_in

STRICT = EgressPolicy()

INTERNAL_URLS = [
    "https://127.0.0.1/v1",
    "https://127.1/v1",  # short form
    "https://2130706433/v1",  # decimal
    "https://0x7f000001/v1",  # hex
    "https://0177.0.0.1/v1",  # octal
    "https://[::1]/v1",
    "https://[::ffff:127.0.0.1]/v1",  # IPv4-mapped
    "https://[::ffff:a9fe:a9fe]/v1",  # IPv4-mapped metadata
    "https://[64:ff9b::a9fe:a9fe]/v1",  # NAT64 metadata
    "https://[2002:7f00:1::]/v1",  # 6to4 of loopback
    "https://169.254.169.254/latest/meta-data/",
    "https://[fd00:ec2::254]/",
    "https://10.1.2.3/v1",
    "https://172.16.0.1/v1",
    "https://192.168.1.1/v1",
    "https://100.64.0.1/v1",  # CGNAT
    "https://[fc00::1]/v1",
    "https://0.0.0.0/v1",
    "https://224.0.0.1/v1",
]


@pytest.mark.parametrize("url", INTERNAL_URLS)
def test_internal_addresses_are_refused_in_every_spelling(url):
    with pytest.raises(EgressRefused):
        STRICT.check_url(url)


@pytest.mark.parametrize(
    "url",
    [
        "https://user:pass@api.openai.com/v1",
        "https://user@api.openai.com/v1",
        "http://api.openai.com/v1",  # plain http is off by default
        "ftp://api.openai.com/v1",
        "file:///etc/passwd",
        "gopher://127.0.0.1:6379/_INFO",
    ],
)
def test_schemes_and_userinfo_are_refused(url):
    with pytest.raises(EgressRefused):
        STRICT.check_url(url)


def test_public_hosts_pass_and_operator_lists_apply():
    STRICT.check_url("https://api.openai.com/v1")
    STRICT.check_url("https://8.8.8.8/v1")
    denied = EgressPolicy(deny_hosts=("*.evil.example",))
    with pytest.raises(EgressRefused):
        denied.check_url("https://x.evil.example/v1")
    only = EgressPolicy(allow_hosts=("api.openai.com", "*.azure.com"))
    only.check_url("https://my.openai.azure.com/")
    with pytest.raises(EgressRefused):
        only.check_url("https://api.anthropic.com/")
    subnet = EgressPolicy(allow_cidrs=(ipaddress.ip_network("10.20.0.0/16"),))
    subnet.check_url("https://10.20.1.5/v1")
    with pytest.raises(EgressRefused):
        subnet.check_url("https://10.21.1.5/v1")


def test_allow_private_still_refuses_metadata_and_the_gateway_itself():
    policy = build_policy(allow_private=True, allow_http=True, listen_port=8080)
    policy.check_url("http://10.0.0.5:8000/v1")
    policy.check_url("http://127.0.0.1:11434/v1")  # a local Ollama
    for url in (
        "http://169.254.169.254/latest/meta-data/",
        "http://[fd00:ec2::254]/",
        "http://127.0.0.1:8080/v1",  # the gateway's own port
        "http://[::1]:8080/v1",
    ):
        with pytest.raises(EgressRefused):
            policy.check_url(url)


async def test_names_are_checked_after_resolution_at_connect_time():
    """`localhost` passes the save-time check (it is a name), but what it resolves to at
    connect time is refused: a DNS rebinding after saving gains nothing."""
    STRICT.check_url("https://localhost/v1")
    with pytest.raises(EgressRefused):
        await STRICT.resolve("localhost", 443)


async def test_the_client_dials_only_the_address_the_policy_checked(monkeypatch):
    """A resolver that answers a public address first and loopback second (rebinding between
    two lookups) cannot make the client connect to loopback: one lookup, checked addresses."""
    server = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    answers = [
        [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port))],
    ]
    loop = asyncio.get_running_loop()

    async def fake_getaddrinfo(host, p, **kw):
        return answers[0]

    monkeypatch.setattr(loop, "getaddrinfo", fake_getaddrinfo)
    client = HTTPClient()
    try:
        with pytest.raises(EgressRefused):
            await client.request(
                "GET",
                URL.parse(f"http://rebind.example:{port}/"),
                [],
                timeouts=Timeouts(connect=2),
                egress=EgressPolicy(allow_http=True),
            )
    finally:
        await client.aclose()
        server.close()


async def test_redirects_are_returned_not_followed():
    hits: list[str] = []

    async def redirect(request: web.Request) -> web.Response:
        hits.append(request.path)
        if request.path == "/internal":
            return web.Response(text="secret")
        raise web.HTTPFound("/internal")

    app = web.Application()
    app.router.add_get("/{tail:.*}", redirect)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    client = HTTPClient()
    try:
        response = await client.request("GET", URL.parse(f"http://127.0.0.1:{port}/start"), [])
        await response.read()
        assert response.status == 302
        assert hits == ["/start"]
    finally:
        await client.aclose()
        await runner.cleanup()


# -- through the admin API ------------------------------------------------------------------


@pytest.fixture
async def api(store_url, tmp_path, monkeypatch):
    from perpetuo.auth.credential_crypto import new_key_spec

    monkeypatch.setenv("PERPETUO_ENCRYPTION_KEYS", new_key_spec("k1"))
    # http is allowed so that only the address rules stand between a tenant and a mock.
    config = GatewayConfig.model_validate({"egress": {"allow_http": True}})
    async with admin_api(store_url, tmp_path, config=config) as api:
        yield api


async def _tenant(api) -> tuple[dict[str, str], str]:
    user = await make_user(api.plane)
    workspace = await make_workspace(api.plane, {user: "owner"})
    return bearer((await sign_in(api.plane, user)).access_token), workspace


@pytest.mark.parametrize(
    "api_base",
    [
        "http://127.0.0.1:9/v1",
        "http://2130706433/v1",
        "http://[::1]:9/v1",
        "http://169.254.169.254/latest",
        "http://user:pass@127.0.0.1/v1",
        "http://10.0.0.1/v1",
    ],
)
async def test_a_credential_cannot_name_an_internal_endpoint(api, api_base):
    headers, ws = await _tenant(api)
    response = await api.http.post(
        f"/api/workspaces/{ws}/credentials",
        headers=headers,
        json={"name": "x", "provider_type": "openai", "api_key": "sk-1234", "api_base": api_base},
    )
    assert response.status_code == 422, response.text
    error = error_of(response)
    assert error["param"] == "api_base"
    assert "sk-1234" not in response.text


async def test_a_name_that_resolves_inside_is_refused_when_called(api):
    """Saved as a name, refused at connect time; the mock behind it never sees a request."""
    mock = OpenAIMock().start()
    try:
        headers, ws = await _tenant(api)
        base = f"/api/workspaces/{ws}"
        cred = await api.http.post(
            f"{base}/credentials",
            headers=headers,
            json={
                "name": "rebound",
                "provider_type": "openai",
                "api_key": "sk-test-openai",
                "api_base": f"http://localhost:{mock.port}/v1",
            },
        )
        assert cred.status_code == 201, cred.text
        cred_id = cred.json()["data"]["id"]
        made = await api.http.post(
            f"{base}/models",
            headers=headers,
            json={"alias": "inside", "deployments": [{"credential_id": cred_id, "model": "m"}]},
        )
        assert made.status_code == 201, made.text
        key = await api.http.post(f"{base}/keys", headers=headers, json={"name": "k"})
        secret = key.json()["data"]["key"]
        answer = await api.http.post(
            "/v1/chat/completions",
            headers=bearer(secret),
            json={"model": "inside", "messages": [{"role": "user", "content": "hi"}]},
        )
        assert answer.status_code >= 500
        assert mock.requests == []
        tested = await api.http.post(f"{base}/credentials/{cred_id}/test", headers=headers)
        assert tested.json()["data"]["ok"] is False
        assert mock.requests == []
    finally:
        mock.stop()


async def test_connection_test_is_not_a_port_scanner(api):
    """Refused by policy, closed port, or an open port that speaks no HTTP: one message."""
    mute = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", 0)
    open_port = mute.sockets[0].getsockname()[1]
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    headers, ws = await _tenant(api)
    messages = set()
    try:
        for port in (open_port, closed_port):
            for host in ("localhost", "example.invalid"):
                cred = await api.http.post(
                    f"/api/workspaces/{ws}/credentials",
                    headers=headers,
                    json={
                        "name": f"{host}-{port}",
                        "provider_type": "openai",
                        "api_key": "sk-1234",
                        "api_base": f"http://{host}:{port}/v1",
                    },
                )
                cred_id = cred.json()["data"]["id"]
                tested = await api.http.post(
                    f"/api/workspaces/{ws}/credentials/{cred_id}/test", headers=headers
                )
                result = tested.json()["data"]
                assert result["ok"] is False and result["status"] is None
                messages.add(result["message"])
    finally:
        mute.close()
    assert len(messages) == 1, messages


async def test_alert_webhooks_cannot_point_inside(api):
    headers, ws = await _tenant(api)
    for url in ("http://127.0.0.1:9/hook", "http://169.254.169.254/", "http://[::1]/x"):
        response = await api.http.patch(
            f"/api/workspaces/{ws}", headers=headers, json={"settings": {"alert_webhook_url": url}}
        )
        assert response.status_code == 422, response.text
        assert error_of(response)["param"] == "settings.alert_webhook_url"


async def test_alert_delivery_checks_the_address_at_connect_time():
    received: list[bytes] = []

    async def hook(request: web.Request) -> web.Response:
        received.append(await request.read())
        return web.Response()

    app = web.Application()
    app.router.add_post("/hook", hook)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    http = HTTPClient()
    url = f"http://localhost:{port}/hook"

    def deliverer(policy: EgressPolicy) -> Deliverer:
        return Deliverer(SimpleNamespace(egress=policy), http, DeliveryPolicy())  # type: ignore[arg-type]

    try:
        # localhost passes the save-time check (a name), and is refused once resolved.
        with pytest.raises(Undeliverable, match="egress policy"):
            await deliverer(EgressPolicy(allow_http=True)).post(url, b"{}", [])
        assert received == []
        allowed = EgressPolicy(allow_http=True, allow_private=True)
        assert await deliverer(allowed).post(url, b"{}", []) == 200
        assert len(received) == 1
    finally:
        await http.aclose()
        await runner.cleanup()


def _event() -> dict[str, object]:
    return {
        "scope": "key",
        "scope_id": "k",
        "workspace_id": "ws",
        "threshold_usd": 1.0,
        "period": "monthly",
    }
