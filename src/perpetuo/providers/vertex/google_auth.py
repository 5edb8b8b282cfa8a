"""Google OAuth access tokens for Vertex AI (scope `cloud-platform`), in the order Google's
libraries look for them:

1. `access_token` in the config: sent as it is (never refreshed: it lasts an hour).
2. A service-account key (`service_account_json`, `service_account_file`, or a tenant's
   `api_key` holding the JSON): a JWT signed with the key (RS256: iss = the account's
   email, scope, aud = `https://oauth2.googleapis.com/token` as Google requires, iat, exp an
   hour later, the key id in the header) is exchanged at the key's `token_uri` (that same
   address, unless the key names another) with the jwt-bearer grant.
3. With `credential_chain: true` (an operator's choice): application default credentials,
   i.e. the key file in `GOOGLE_APPLICATION_CREDENTIALS` or gcloud's
   (`~/.config/gcloud/application_default_credentials.json`: a service account, or a user's
   refresh token), else the GCE/GKE metadata server (`GCE_METADATA_HOST` moves it).

Tokens are cached and refreshed before they expire (providers/credentials.py); the private
key is loaded once, when the config is, so a broken key is a config error. A tenant's
token endpoint is called through the egress policy, like any address a tenant gives.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

import msgspec

from perpetuo.providers.base import CredentialSource
from perpetuo.providers.credentials import RefreshingCredentials, fetch_json, fingerprint
from perpetuo.schema.errors import UpstreamError, UpstreamErrorKind

if TYPE_CHECKING:
    from perpetuo.transport.client import HTTPClient
    from perpetuo.transport.egress import EgressPolicy

SCOPE = "https://www.googleapis.com/auth/cloud-platform"
TOKEN_URI = "https://oauth2.googleapis.com/token"  # noqa: S105 (an address)
JWT_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
ASSERTION_LIFETIME = 3600  # Google's maximum
METADATA_HOST = "metadata.google.internal"
FORM = ("content-type", "application/x-www-form-urlencoded")


class StaticToken:
    """An access token given as it is."""

    def __init__(self, token: str) -> None:
        self._token = token

    async def ready(self, client: HTTPClient) -> None:
        return None

    def current(self) -> str:
        return self._token


class ServiceAccountToken(RefreshingCredentials[str]):
    what = "Google OAuth token"

    def __init__(self, info: Mapping[str, Any], egress: EgressPolicy | None = None) -> None:
        email, key_id = info.get("client_email"), info.get("private_key_id")
        pem, token_uri = info.get("private_key"), info.get("token_uri") or TOKEN_URI
        if not isinstance(email, str) or not isinstance(pem, str) or not isinstance(token_uri, str):
            raise ValueError("the service-account key lacks client_email or private_key")
        # The token libraries load with the first service account, not at every start.
        from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey
        from cryptography.hazmat.primitives.serialization import load_pem_private_key

        try:
            key = load_pem_private_key(pem.encode(), password=None)
        except (ValueError, TypeError):
            raise ValueError("the service-account key's private_key is not a PEM RSA key") from None
        if not isinstance(key, RSAPrivateKey):
            raise ValueError("the service-account key's private_key is not an RSA key")
        self.email, self.key_id, self.token_uri = email, key_id, token_uri
        self._key = key
        # The key itself is part of the identity: a config that names the same account with
        # another key must not be handed the token the real key earned.
        super().__init__(fingerprint("google-sa", email, str(key_id), token_uri, pem), egress)

    def assertion(self, now: int) -> str:
        claims = {
            "iss": self.email,
            "scope": SCOPE,
            "aud": TOKEN_URI,  # always Google's, wherever the exchange happens
            "iat": now,
            "exp": now + ASSERTION_LIFETIME,
        }
        headers = {"kid": self.key_id} if isinstance(self.key_id, str) else None
        import jwt

        return jwt.encode(claims, self._key, algorithm="RS256", headers=headers)

    async def fetch(self, client: HTTPClient) -> tuple[str, float | None]:
        form = {"grant_type": JWT_GRANT, "assertion": self.assertion(int(time.time()))}
        data = await fetch_json(
            client,
            "POST",
            self.token_uri,
            [FORM, ("accept", "application/json")],
            urlencode(form).encode(),
            what="Google OAuth token",
            egress=self.egress,
        )
        return token_of(data)


class AuthorizedUserToken(RefreshingCredentials[str]):
    """A user's refresh token from `gcloud auth application-default login`."""

    what = "Google OAuth token"

    def __init__(self, info: Mapping[str, Any]) -> None:
        self._form = {
            "grant_type": "refresh_token",
            "client_id": str(info.get("client_id", "")),
            "client_secret": str(info.get("client_secret", "")),
            "refresh_token": str(info.get("refresh_token", "")),
        }
        self.token_uri = str(info.get("token_uri") or TOKEN_URI)
        super().__init__(fingerprint("google-user", self._form["refresh_token"], self.token_uri))

    async def fetch(self, client: HTTPClient) -> tuple[str, float | None]:
        body = urlencode(self._form).encode()
        data = await fetch_json(
            client, "POST", self.token_uri, [FORM], body, what="Google OAuth token"
        )
        return token_of(data)


class MetadataServerToken(RefreshingCredentials[str]):
    """The default service account of the GCE instance, GKE pod or Cloud Run service."""

    what = "Google metadata server token"

    def __init__(self, host: str) -> None:
        self.url = f"http://{host}/computeMetadata/v1/instance/service-accounts/default/token"
        super().__init__(fingerprint("google-metadata", host))

    async def fetch(self, client: HTTPClient) -> tuple[str, float | None]:
        headers = [("metadata-flavor", "Google")]
        data = await fetch_json(client, "GET", self.url, headers, what=self.what)
        return token_of(data)


def token_of(data: Mapping[str, Any]) -> tuple[str, float | None]:
    token, lifetime = data.get("access_token"), data.get("expires_in")
    if not isinstance(token, str) or not token:
        raise UpstreamError(UpstreamErrorKind.BAD_RESPONSE, "the token endpoint sent no token")
    if isinstance(lifetime, int | float) and not isinstance(lifetime, bool) and lifetime > 0:
        return token, time.time() + float(lifetime)
    return token, time.time() + 3000.0  # undated: assume less than Google's usual hour


def parse_key(text: str, where: str) -> dict[str, Any]:
    try:
        info = msgspec.json.decode(text)
    except (msgspec.DecodeError, UnicodeDecodeError):
        raise ValueError(f"{where} is not valid JSON") from None
    if not isinstance(info, dict):
        raise ValueError(f"{where} is not a JSON object")
    return info


def key_source(
    info: Mapping[str, Any], where: str, egress: EgressPolicy | None
) -> RefreshingCredentials[str]:
    kind = info.get("type")
    if kind == "service_account":
        return ServiceAccountToken(info, egress)
    if kind == "authorized_user" and egress is None:
        return AuthorizedUserToken(info)
    raise ValueError(f"{where} holds {kind!r} credentials; a service_account key is needed")


def resolve(
    *,
    access_token: str | None,
    key_json: str | None,
    key_file: str | None,
    api_key: str | None,
    chain: bool,
    egress: EgressPolicy | None,
    env: Mapping[str, str] | None = None,
) -> tuple[CredentialSource | None, dict[str, Any], str | None]:
    """(token source, the key's fields (for its project id), why there is no source)."""
    env = os.environ if env is None else env
    if access_token:
        return StaticToken(access_token), {}, None
    if key_json:
        info = parse_key(key_json, "service_account_json")
        return key_source(info, "service_account_json", egress), info, None
    if key_file:
        info = parse_key(_read(key_file, "service_account_file"), "service_account_file")
        return key_source(info, "service_account_file", egress), info, None
    if api_key:
        if api_key.lstrip().startswith("{"):
            info = parse_key(api_key, "api_key")
            return key_source(info, "api_key", egress), info, None
        return StaticToken(api_key), {}, None
    if not chain:
        return (
            None,
            {},
            (
                "no Google credentials configured (set service_account_json, "
                "service_account_file, access_token, or credential_chain: true)"
            ),
        )
    path = env.get("GOOGLE_APPLICATION_CREDENTIALS")
    if not path:
        home = Path(env.get("HOME") or Path.home())
        default = home / ".config" / "gcloud" / "application_default_credentials.json"
        path = str(default) if default.is_file() else None
    if path:
        where = "GOOGLE_APPLICATION_CREDENTIALS"
        info = parse_key(_read(path, where), where)
        return key_source(info, where, None), info, None
    return MetadataServerToken(env.get("GCE_METADATA_HOST") or METADATA_HOST), {}, None


def _read(path: str, where: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ValueError(f"{where}: cannot read {path} ({exc.strerror})") from None
