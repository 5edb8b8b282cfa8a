"""Per-provider TLS: a CA bundle to verify the upstream, client certificates for mutual TLS,
contexts kept per setting (and rebuilt when the files change), clean errors, and config
validation that names the field and never the key's password."""

from __future__ import annotations

import asyncio
import os
import ssl

import pytest

from perpetuo.config.loader import ConfigError, parse_config
from perpetuo.transport import URL, ConnectError, HTTPClient, Timeouts, TransportError
from perpetuo.transport.route import ConnectOptions
from perpetuo.transport.tls import SSLContexts, TLSSettings
from tests.support.pki import PKI, make_pki

FAST = Timeouts(connect=5, first_byte=5, read=5, total=10)


@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> PKI:
    return make_pki(tmp_path_factory.mktemp("pki"), "right")


@pytest.fixture(scope="module")
def other_pki(tmp_path_factory) -> PKI:
    return make_pki(tmp_path_factory.mktemp("other"), "other")


class Server:
    """An https server that answers with the common name of the client certificate it got."""

    def __init__(self) -> None:
        self.connections = 0
        self.port = 0
        self.server: asyncio.Server | None = None

    async def start(self, context: ssl.SSLContext) -> Server:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0, ssl=context)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def _handle(self, reader, writer) -> None:
        self.connections += 1
        peer = writer.get_extra_info("peercert") or {}
        name = dict(item[0] for item in peer.get("subject", ())).get("commonName", "anonymous")
        while True:
            try:
                await reader.readuntil(b"\r\n\r\n")
            except (asyncio.IncompleteReadError, ConnectionError, ssl.SSLError):
                break
            body = name.encode()
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n%s" % (len(body), body))
            await writer.drain()
        writer.close()

    @property
    def url(self) -> URL:
        return URL.parse(f"https://localhost:{self.port}/v1")

    def close(self) -> None:
        assert self.server is not None
        self.server.close()


@pytest.fixture
async def server(pki):
    running = await Server().start(pki.server_context())
    yield running
    running.close()


@pytest.fixture
async def mtls_server(pki):
    running = await Server().start(pki.server_context(require_client_cert=True))
    yield running
    running.close()


def client_tls(pki: PKI, **overrides) -> ConnectOptions:
    fields = {
        "ca_bundle": str(pki.ca),
        "client_cert": str(pki.client_cert),
        "client_key": str(pki.client_key),
        "key_password": pki.client_key_password,
        **overrides,
    }
    return ConnectOptions(tls=TLSSettings(**fields))


async def call(client: HTTPClient, url: URL, **kwargs) -> bytes:
    response = await client.request("GET", url, [], timeouts=FAST, **kwargs)
    assert response.status == 200
    return await response.read()


async def test_the_ca_bundle_is_what_verifies_the_upstream(pki, other_pki, server):
    client = HTTPClient()
    try:
        right = ConnectOptions(tls=TLSSettings(ca_bundle=str(pki.ca)))
        assert await call(client, server.url, connection=right) == b"anonymous"
        for options in (None, ConnectOptions(tls=TLSSettings(ca_bundle=str(other_pki.ca)))):
            with pytest.raises(ConnectError, match="CERTIFICATE_VERIFY_FAILED") as caught:
                await call(client, server.url, connection=options)
            assert f"localhost:{server.port}" in str(caught.value)
    finally:
        await client.aclose()


async def test_mutual_tls_presents_the_client_certificate(pki, mtls_server):
    client = HTTPClient()
    try:
        assert await call(client, mtls_server.url, connection=client_tls(pki)) == b"right client"
    finally:
        await client.aclose()


async def test_mutual_tls_without_the_certificate_fails_cleanly(pki, other_pki, mtls_server):
    client = HTTPClient()
    try:
        for options in (
            ConnectOptions(tls=TLSSettings(ca_bundle=str(pki.ca))),  # no client certificate
            client_tls(other_pki, ca_bundle=str(pki.ca)),  # one the server's CA did not sign
        ):
            with pytest.raises(TransportError):
                await call(client, mtls_server.url, connection=options)
    finally:
        await client.aclose()


async def test_connections_with_different_client_certificates_are_not_shared(
    pki, other_pki, tmp_path
):
    # The server trusts both CAs: each call must arrive with its own identity.
    bundle = tmp_path / "both.pem"
    bundle.write_bytes(pki.ca.read_bytes() + other_pki.ca.read_bytes())
    context = pki.server_context(require_client_cert=True)
    context.load_verify_locations(bundle)
    server = await Server().start(context)
    client = HTTPClient()
    mine, theirs = client_tls(pki), client_tls(other_pki, ca_bundle=str(pki.ca))
    try:
        for _ in range(2):
            assert await call(client, server.url, connection=mine) == b"right client"
            assert await call(client, server.url, connection=theirs) == b"other client"
    finally:
        await client.aclose()
        server.close()
    assert server.connections == 2  # one pooled connection per identity


def test_contexts_are_kept_per_setting_and_rebuilt_when_the_files_change(pki, other_pki, tmp_path):
    bundle = tmp_path / "ca.pem"
    bundle.write_bytes(pki.ca.read_bytes())
    contexts = SSLContexts()
    settings = TLSSettings(ca_bundle=str(bundle))
    first = contexts.get(settings)
    assert contexts.get(TLSSettings(ca_bundle=str(bundle))) is first  # equal settings: one
    assert contexts.default(True) is contexts.default(True)

    bundle.write_bytes(other_pki.ca.read_bytes())  # rotated
    os.utime(bundle, ns=(1, 10**18))
    rotated = contexts.get(settings)
    assert rotated is not first
    assert rotated.get_ca_certs()[0]["subject"] == ((("commonName", "other CA"),),)

    bundle.write_bytes(b"half written")  # a rotation caught midway: keep the last good one
    os.utime(bundle, ns=(1, 2 * 10**18))
    assert contexts.get(settings) is rotated


def test_tls_settings_refuse_what_cannot_work(pki):
    with pytest.raises(ValueError, match="ca_bundle has no effect"):
        TLSSettings(verify=False, ca_bundle=str(pki.ca))
    with pytest.raises(ValueError, match="need client_cert"):
        TLSSettings(client_key=str(pki.client_key))
    wrong = TLSSettings(
        client_cert=str(pki.client_cert), client_key=str(pki.client_key), key_password="nope"
    )
    with pytest.raises(ValueError, match="cannot load the client certificate") as caught:
        wrong.context()
    assert "nope" not in str(caught.value) and "nope" not in repr(wrong)


# -- the provider settings ---------------------------------------------------------------------


def provider_config(**fields):
    raw = {"providers": {"secure": {"type": "openai", "api_key": "sk-x", **fields}}}
    return parse_config(raw, "test.yaml", {"KEY_PASSWORD": "right-key-password"})


def test_provider_tls_and_proxy_settings_become_connect_options(pki):
    config = provider_config(
        ca_bundle=str(pki.ca),
        client_cert=str(pki.client_cert),
        client_key=str(pki.client_key),
        client_key_password="${KEY_PASSWORD}",
        proxy="http://u:p@proxy.corp:3128",
    )
    options = config.providers["secure"].connect_options()
    assert options is not None and options.tls is not None and options.proxy is not None
    assert options.tls.key_password == "right-key-password"
    assert str(options.proxy) == "http://proxy.corp:3128"
    direct = provider_config(proxy="none").providers["secure"].connect_options()
    assert direct == ConnectOptions(direct=True)
    assert provider_config().providers["secure"].connect_options() is None  # the direct path


@pytest.mark.parametrize(
    ("fields", "where", "problem"),
    [
        ({"ca_bundle": "/nonexistent/ca.pem"}, "providers.secure.ca_bundle", "/nonexistent/ca.pem"),
        ({"client_key": "k.pem"}, "providers.secure", "need client_cert"),
        ({"verify_tls": False, "ca_bundle": "CA"}, "providers.secure", "no effect"),
        ({"proxy": "socks5://u:hunter2@p:1080"}, "providers.secure.proxy", "socks5"),
    ],
)
def test_bad_provider_settings_name_the_field(pki, fields, where, problem):
    if fields.get("ca_bundle") == "CA":
        fields["ca_bundle"] = str(pki.ca)
    with pytest.raises(ConfigError) as caught:
        provider_config(**fields)
    assert caught.value.field == where and problem in caught.value.problem
    assert "hunter2" not in str(caught.value)


def test_a_wrong_key_password_is_a_config_error_without_the_password(pki):
    with pytest.raises(ConfigError, match="cannot load the client certificate") as caught:
        provider_config(
            client_cert=str(pki.client_cert),
            client_key=str(pki.client_key),
            client_key_password="not-the-password",
        )
    assert "not-the-password" not in str(caught.value)
