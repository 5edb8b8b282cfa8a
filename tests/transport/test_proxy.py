"""Upstream calls through an outbound proxy (a real CONNECT proxy on loopback): tunnels for
https and http upstreams, proxy credentials, the environment and NO_PROXY, per-provider
overrides, pools kept apart, clean errors, and the egress policy still in charge of where a
tenant's connection may go."""

from __future__ import annotations

import asyncio
import socket

import pytest

from perpetuo.transport import URL, HTTPClient, Timeouts
from perpetuo.transport.egress import EgressPolicy, EgressRefused
from perpetuo.transport.proxy import NoProxy, Proxy, ProxyEnvironment, ProxyError
from perpetuo.transport.route import ConnectOptions
from perpetuo.transport.tls import TLSSettings
from tests.support.connect_proxy import ConnectProxy
from tests.support.pki import PKI, make_pki

FAST = Timeouts(connect=5, first_byte=5, read=5, total=10)


class Upstream:
    """A keep-alive HTTP server on loopback (https with a context) that records the request
    heads it got and counts its connections."""

    def __init__(self) -> None:
        self.heads: list[str] = []
        self.connections = 0
        self.server: asyncio.Server | None = None
        self.port = 0

    async def start(self, tls=None) -> Upstream:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0, ssl=tls)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        while True:
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except (asyncio.IncompleteReadError, ConnectionError):
                break
            self.heads.append(head.decode("latin-1"))
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 7\r\n\r\nupgoing")
            await writer.drain()
        writer.close()

    def close(self) -> None:
        assert self.server is not None
        self.server.close()


@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> PKI:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture
async def https_upstream(pki):
    upstream = await Upstream().start(pki.server_context())
    yield upstream
    upstream.close()


@pytest.fixture
async def http_upstream():
    upstream = await Upstream().start()
    yield upstream
    upstream.close()


@pytest.fixture
def proxy():
    with ConnectProxy() as running:
        yield running


def trusting(pki: PKI, **options) -> ConnectOptions:
    return ConnectOptions(tls=TLSSettings(ca_bundle=str(pki.ca)), **options)


async def get(client: HTTPClient, url: str, **kwargs) -> bytes:
    response = await client.request("GET", URL.parse(url), [], timeouts=FAST, **kwargs)
    assert response.status == 200
    return await response.read()


# -- tunnels ------------------------------------------------------------------------------


async def test_https_upstream_is_reached_through_a_tunnel_with_tls_to_the_origin(
    pki, https_upstream, proxy
):
    client = HTTPClient()
    options = trusting(pki, proxy=Proxy.parse(proxy.url))
    try:
        url = f"https://localhost:{https_upstream.port}/v1/models"
        assert await get(client, url, connection=options) == b"upgoing"
        assert await get(client, url, connection=options) == b"upgoing"  # pooled tunnel
    finally:
        await client.aclose()
    # One tunnel, to the host as named (the proxy resolves it); TLS inside verified the
    # certificate for "localhost" against the CA bundle.
    assert [(r.method, r.target) for r in proxy.requests] == [
        ("CONNECT", f"localhost:{https_upstream.port}")
    ]
    assert https_upstream.connections == 1
    assert all(head.startswith("GET /v1/models HTTP/1.1") for head in https_upstream.heads)


async def test_http_upstream_is_tunnelled_too_and_gets_an_ordinary_request(http_upstream, proxy):
    client = HTTPClient(proxies=ProxyEnvironment(http=Proxy.parse(proxy.url)))
    try:
        assert await get(client, f"http://127.0.0.1:{http_upstream.port}/v1/x?y=1") == b"upgoing"
    finally:
        await client.aclose()
    assert [r.target for r in proxy.tunnels] == [f"127.0.0.1:{http_upstream.port}"]
    head = http_upstream.heads[0]
    assert head.startswith("GET /v1/x?y=1 HTTP/1.1\r\n")  # origin form: same bytes as direct
    assert f"host: 127.0.0.1:{http_upstream.port}" in head


async def test_proxy_credentials_reach_the_proxy_only(pki, https_upstream):
    with ConnectProxy("alice", "s3cr:et/") as proxy:
        client = HTTPClient()
        # Reserved characters in the password are percent-encoded in the URL.
        options = trusting(pki, proxy=Proxy.parse(proxy.url_with("alice", "s3cr%3Aet%2F")))
        try:
            await get(client, f"https://localhost:{https_upstream.port}/", connection=options)
        finally:
            await client.aclose()
        assert proxy.tunnels[0].authorization == "Basic YWxpY2U6czNjcjpldC8="
    assert "proxy-authorization" not in https_upstream.heads[0].lower()


@pytest.mark.parametrize("password", [None, "wrong-password"])
async def test_a_407_is_a_clean_error_naming_the_proxy_and_not_the_credentials(
    pki, https_upstream, password
):
    with ConnectProxy("alice", "right-password") as proxy:
        url = proxy.url_with("alice", password) if password else proxy.url
        client = HTTPClient()
        try:
            with pytest.raises(ProxyError) as caught:
                await get(
                    client,
                    f"https://localhost:{https_upstream.port}/",
                    connection=trusting(pki, proxy=Proxy.parse(url)),
                )
        finally:
            await client.aclose()
    message = str(caught.value)
    assert f"127.0.0.1:{proxy.port}" in message and "407" in message
    assert "alice" not in message and "password" not in message
    assert https_upstream.connections == 0


async def test_a_proxy_that_cannot_be_reached_or_reach_the_upstream_is_a_clean_error(pki):
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    client = HTTPClient()
    try:
        with pytest.raises(
            ProxyError, match=f"cannot connect to the proxy http://127.0.0.1:{closed}"
        ):
            await get(
                client,
                "https://localhost:1/",
                connection=trusting(pki, proxy=Proxy.parse(f"http://u:pw@127.0.0.1:{closed}")),
            )
        with ConnectProxy() as proxy:  # up, but the upstream is not
            with pytest.raises(ProxyError, match=f"refused to connect to localhost:{closed}"):
                await get(
                    client,
                    f"https://localhost:{closed}/",
                    connection=trusting(pki, proxy=Proxy.parse(proxy.url)),
                )
            assert proxy.requests[0].status == 502
    finally:
        await client.aclose()


# -- which proxy, if any ---------------------------------------------------------------------


async def test_environment_proxy_applies_and_no_proxy_bypasses_it(http_upstream, proxy):
    url = f"http://127.0.0.1:{http_upstream.port}/"
    proxied = HTTPClient(proxies=ProxyEnvironment.from_environ({"HTTP_PROXY": proxy.url}))
    bypassing = HTTPClient(
        proxies=ProxyEnvironment.from_environ(
            {"HTTP_PROXY": proxy.url, "NO_PROXY": "internal.example, 127.0.0.0/8"}
        )
    )
    try:
        await get(proxied, url)
        assert len(proxy.tunnels) == 1
        await get(bypassing, url)
        assert len(proxy.tunnels) == 1  # NO_PROXY: straight to the upstream
    finally:
        await proxied.aclose()
        await bypassing.aclose()
    assert http_upstream.connections == 2


async def test_a_provider_proxy_replaces_the_environment_and_none_bypasses_it(
    pki, https_upstream, proxy
):
    with ConnectProxy() as own:
        client = HTTPClient(proxies=ProxyEnvironment(https=Proxy.parse(proxy.url)))
        url = f"https://localhost:{https_upstream.port}/"
        try:
            await get(client, url, connection=trusting(pki))  # no proxy setting: environment
            await get(client, url, connection=trusting(pki, proxy=Proxy.parse(own.url)))
            await get(client, url, connection=trusting(pki, direct=True))  # proxy: none
        finally:
            await client.aclose()
        assert len(proxy.tunnels) == 1 and len(own.tunnels) == 1
    assert https_upstream.connections == 3


async def test_proxied_and_direct_connections_never_share_a_pool(http_upstream, proxy):
    client = HTTPClient()
    url = f"http://127.0.0.1:{http_upstream.port}/"
    via = ConnectOptions(proxy=Proxy.parse(proxy.url))
    try:
        await get(client, url)  # direct connection, now idle
        await get(client, url, connection=via)  # must not take the direct one
        await get(client, url)  # must not take the tunnel
        await get(client, url, connection=via)
    finally:
        await client.aclose()
    assert len(proxy.tunnels) == 1
    assert http_upstream.connections == 2


@pytest.mark.parametrize(
    ("no_proxy", "host", "port", "bypass"),
    [
        ("*", "api.openai.com", 443, True),
        ("localhost, *", "api.openai.com", 443, True),
        ("openai.com", "openai.com", 443, True),
        ("openai.com", "api.openai.com", 443, True),
        (".openai.com", "openai.com", 443, True),  # a leading dot changes nothing (as curl)
        ("*.openai.com", "api.openai.com", 443, True),
        ("openai.com", "notopenai.com", 443, False),
        ("ample.com", "example.com", 443, False),
        ("OpenAI.COM.", "API.openai.com", 443, True),
        ("10.0.0.0/8", "10.1.2.3", 80, True),
        ("10.0.0.0/8", "11.1.2.3", 80, False),
        ("10.0.0.0/8", "ten.example", 80, False),  # names are not resolved for NO_PROXY
        ("192.168.1.5", "192.168.1.5", 80, True),
        ("::1", "::1", 80, True),
        ("[::1]:8000", "[::1]", 8000, True),
        ("[::1]:8000", "::1", 9000, False),
        ("fd00::/8", "fd12::1", 443, True),
        ("vllm.internal:8000", "vllm.internal", 8000, True),
        ("vllm.internal:8000", "vllm.internal", 443, False),
        ("", "api.openai.com", 443, False),
        ("bad:port, 10.0.0.0/99", "api.openai.com", 443, False),
    ],
)
def test_no_proxy_follows_the_usual_conventions(no_proxy, host, port, bypass):
    assert NoProxy.parse(no_proxy).matches(host, port) is bypass


def test_environment_variables_lower_case_first_and_per_scheme():
    env = {
        "HTTPS_PROXY": "http://upper:3128",
        "https_proxy": "http://lower:3128",
        "HTTP_PROXY": "plain-proxy:8080",  # no scheme: http, as curl
        "NO_PROXY": "internal",
    }
    found = ProxyEnvironment.from_environ(env)
    assert found is not None
    assert str(found.https) == "http://lower:3128" and str(found.http) == "http://plain-proxy:8080"
    assert found.proxy_for(URL.parse("https://api.openai.com/").origin) == found.https
    assert found.proxy_for(URL.parse("https://x.internal/").origin) is None
    # The instance metadata service is never asked through a proxy (it would answer with
    # the proxy machine's credentials), NO_PROXY or not.
    for metadata in ("http://169.254.169.254/latest/api/token", "http://[fe80::1]/"):
        assert found.proxy_for(URL.parse(metadata).origin) is None
    # An empty lower-case variable turns the upper-case one off; nothing set: no proxies.
    assert ProxyEnvironment.from_environ({"HTTPS_PROXY": "http://p:1", "https_proxy": ""}) is None
    assert ProxyEnvironment.from_environ({"NO_PROXY": "*"}) is None


def test_unusable_proxy_urls_are_refused_without_repeating_the_credentials():
    with pytest.raises(ValueError, match="HTTPS_PROXY: proxy scheme 'socks5'") as caught:
        ProxyEnvironment.from_environ({"HTTPS_PROXY": "socks5://bob:hunter2@proxy:1080"})
    assert "hunter2" not in str(caught.value)
    with pytest.raises(ValueError) as caught:
        Proxy.parse("http://bob:hunter2@proxy:notaport")
    assert "hunter2" not in str(caught.value)
    parsed = Proxy.parse("https://bob:hunter2@proxy.corp")
    assert str(parsed) == "https://proxy.corp:443" and "hunter2" not in repr(parsed)


# -- the egress policy behind a proxy ---------------------------------------------------------


async def test_tenant_destinations_are_checked_before_the_proxy_is_asked(https_upstream, proxy):
    """A tenant URL naming an internal address, directly or through a name, is refused here:
    the proxy (which might reach the operator's network) never gets a CONNECT."""
    client = HTTPClient(proxies=ProxyEnvironment(https=Proxy.parse(proxy.url)))
    try:
        for host in ("127.0.0.1", "localhost", "2130706433"):
            with pytest.raises(EgressRefused):
                await get(client, f"https://{host}:{https_upstream.port}/", egress=EgressPolicy())
    finally:
        await client.aclose()
    assert proxy.requests == []
    assert https_upstream.connections == 0


async def test_the_proxy_is_asked_for_the_checked_address_and_tls_still_names_the_host(
    pki, https_upstream, proxy
):
    """Allowed tenant traffic tunnels to the address checked here, not to a name the proxy
    would resolve again (a rebinding between the two lookups gains nothing)."""
    client = HTTPClient(proxies=ProxyEnvironment(https=Proxy.parse(proxy.url)))
    policy = EgressPolicy(allow_private=True)
    try:
        url = f"https://localhost:{https_upstream.port}/"
        assert await get(client, url, egress=policy, connection=trusting(pki)) == b"upgoing"
        await get(client, url, connection=trusting(pki))  # a trusted call: a pool of its own
    finally:
        await client.aclose()
    tenant = [r.target for r in proxy.requests[:-1]]
    assert tenant[-1] == f"127.0.0.1:{https_upstream.port}"
    assert all(not target.startswith("localhost") for target in tenant)  # ::1 may come first
    assert proxy.requests[-1].target == f"localhost:{https_upstream.port}"
    assert https_upstream.connections == 2


async def test_with_proxy_resolves_the_name_goes_to_the_proxy_after_the_host_rules(
    pki, https_upstream, proxy
):
    """The operator's choice: names go to the proxy, whose own rules must then refuse
    internal addresses (this one does not, and `localhost` gets through: the documented
    consequence); host rules and literal addresses are still checked here."""
    client = HTTPClient(proxies=ProxyEnvironment(https=Proxy.parse(proxy.url)))
    policy = EgressPolicy(proxy_resolves=True, deny_hosts=("blocked.example",))
    try:
        for url in ("https://127.0.0.1:9/", "https://blocked.example/"):
            with pytest.raises(EgressRefused):
                await get(client, url, egress=policy)
        assert proxy.requests == []
        url = f"https://localhost:{https_upstream.port}/"
        assert await get(client, url, egress=policy, connection=trusting(pki)) == b"upgoing"
    finally:
        await client.aclose()
    assert [r.target for r in proxy.requests] == [f"localhost:{https_upstream.port}"]
