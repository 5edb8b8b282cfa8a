"""A gateway process behind an egress proxy: HTTPS_PROXY from the environment with Basic
credentials, a provider with its own proxy, one with `proxy: none`, a CA bundle and a client
certificate (mutual TLS) per provider; a tenant's endpoint is still checked before the
proxy is asked, and no secret reaches the upstream or the log."""

from __future__ import annotations

import httpx
import pytest

from perpetuo.auth.credential_crypto import new_key_spec
from tests.mocks.openai_mock import OpenAIMock
from tests.support.connect_proxy import ConnectProxy
from tests.support.gateway import MASTER_KEY, GatewayProcess
from tests.support.pki import make_pki

ADMIN = {"authorization": f"Bearer {MASTER_KEY}"}
PROXY_PASSWORD = "proxy-pass-7d1e"
HELLO = [{"role": "user", "content": "hello"}]


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("proxy-e2e")
    pki = make_pki(workdir / "pki")
    plain, mutual = OpenAIMock(), OpenAIMock()
    plain.tls = pki.server_context()
    mutual.tls = pki.server_context(require_client_cert=True)
    corporate = ConnectProxy("gateway", PROXY_PASSWORD).start()
    own = ConnectProxy().start()
    plain.start()
    mutual.start()

    def provider(mock: OpenAIMock, **extra):
        return {
            "type": "openai",
            "api_base": f"https://localhost:{mock.port}/v1",
            "api_key": "sk-test-openai",
            "ca_bundle": str(pki.ca),
            **extra,
        }

    providers = {
        "via-environment": provider(plain),
        "via-own-proxy": provider(plain, proxy="${OWN_PROXY}"),
        "direct": provider(plain, proxy="none"),
        "mutual": provider(
            mutual,
            client_cert=str(pki.client_cert),
            client_key=str(pki.client_key),
            client_key_password="${CLIENT_KEY_PASSWORD}",
        ),
    }
    config = {
        "providers": providers,
        "models": {
            name: {"deployments": [{"provider": name, "model": "gpt-4o-mini"}]}
            for name in providers
        },
    }
    env = {
        "HTTPS_PROXY": f"http://gateway:{PROXY_PASSWORD}@127.0.0.1:{corporate.port}",
        "NO_PROXY": "internal.example",
        "OWN_PROXY": own.url,
        "CLIENT_KEY_PASSWORD": pki.client_key_password,
        "PERPETUO_ENCRYPTION_KEYS": new_key_spec("k1"),
    }
    gateway = GatewayProcess(config, workdir, env=env).start()
    yield gateway, plain, mutual, corporate, own, pki
    gateway.stop()
    for running in (plain, mutual, corporate, own):
        running.stop()


def chat(gateway: GatewayProcess, model: str, key: str = MASTER_KEY) -> httpx.Response:
    return httpx.post(
        f"{gateway.url}/v1/chat/completions",
        headers={"authorization": f"Bearer {key}"},
        json={"model": model, "messages": HELLO},
        timeout=30,
    )


def test_each_provider_takes_its_way_to_the_upstream(stack):
    gateway, plain, mutual, corporate, own, _ = stack
    for model in ("via-environment", "via-own-proxy", "direct", "mutual"):
        answer = chat(gateway, model)
        assert answer.status_code == 200, (model, answer.text)
        assert answer.json()["choices"][0]["message"]["content"] == "Echo: hello"
    # The environment's proxy carried two providers (with its credentials), the provider's
    # own proxy one, and `proxy: none` went straight to the upstream.
    assert sorted(r.target for r in corporate.tunnels) == sorted(
        [f"localhost:{plain.port}", f"localhost:{mutual.port}"]
    )
    assert all(r.authorization and r.authorization.startswith("Basic ") for r in corporate.tunnels)
    assert [r.target for r in own.tunnels] == [f"localhost:{plain.port}"]
    assert len(plain.requests) == 3 and len(mutual.requests) == 1
    for recorded in [*plain.requests, *mutual.requests]:
        assert "proxy-authorization" not in {name.lower() for name in recorded.headers}
    log = gateway.log()
    assert PROXY_PASSWORD not in log and stack[5].client_key_password not in log


def test_a_tenant_endpoint_on_an_internal_address_is_refused_before_the_proxy(stack):
    gateway, plain, _, corporate, _, _ = stack
    before, served = len(corporate.requests), len(plain.requests)
    base = f"{gateway.url}/api/workspaces/ws_default"
    credential = httpx.post(
        f"{base}/credentials",
        headers=ADMIN,
        json={
            "name": "tenant-endpoint",
            "provider_type": "openai",
            "api_key": "sk-test-openai",
            "api_base": f"https://localhost:{plain.port}/v1",  # a name: passes the save check
        },
        timeout=30,
    )
    assert credential.status_code == 201, credential.text
    alias = httpx.post(
        f"{base}/models",
        headers=ADMIN,
        json={
            "alias": "tenant-inside",
            "deployments": [{"credential_id": credential.json()["data"]["id"], "model": "m"}],
        },
        timeout=30,
    )
    assert alias.status_code == 201, alias.text
    key = httpx.post(f"{base}/keys", headers=ADMIN, json={"name": "tenant"}, timeout=30)
    answer = chat(gateway, "tenant-inside", key.json()["data"]["key"])
    assert answer.status_code >= 500, answer.text
    assert answer.json()["error"]["type"]
    assert len(corporate.requests) == before  # the proxy was never asked
    assert len(plain.requests) == served
