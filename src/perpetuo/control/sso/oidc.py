"""OpenID Connect, the relying party's side: discovery, the provider's keys, the code
exchange, and the ID token's validation (Authlib's claim rules over joserfc's signature
check, the library pair Authlib's own clients use).

Discovery documents are kept an hour; key sets until a token names a key they lack, which
refetches the set once (the provider rotated its keys) before the token is refused.
"""

from __future__ import annotations

import base64
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from authlib.oidc.core import CodeIDToken
from joserfc import jwt
from joserfc.errors import ExpiredTokenError, InvalidKeyIdError, JoseError
from joserfc.jwk import KeySet

from perpetuo.control.errors import unauthorized
from perpetuo.control.sso.fetch import call, provider_failed
from perpetuo.control.sso.spec import ProviderSpec
from perpetuo.schema.errors import GatewayError
from perpetuo.singleflight import SingleFlight
from perpetuo.transport.client import HTTPClient

METADATA_TTL = 3600.0
LEEWAY = 60  # seconds of clock difference tolerated between us and the provider
# Asymmetric signatures only: "none" proves nothing, and HS256 would make the client secret
# a signing key.
SIGNING_ALGORITHMS = (
    "RS256",
    "RS384",
    "RS512",
    "PS256",
    "PS384",
    "PS512",
    "ES256",
    "ES384",
    "ES512",
    "EdDSA",
)


@dataclass(frozen=True)
class Metadata:
    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str
    userinfo_endpoint: str | None = None
    end_session_endpoint: str | None = None
    algorithms: tuple[str, ...] = ("RS256",)


def parse_metadata(spec: ProviderSpec, doc: Any) -> Metadata:
    if not isinstance(doc, dict):
        raise provider_failed("The identity provider's discovery document is not JSON.")
    # OpenID Connect Discovery 1.0, section 4.3: the document must name the issuer asked for.
    if doc.get("issuer") not in spec.accepted_issuers():
        raise provider_failed(
            f"The discovery document names the issuer {str(doc.get('issuer'))[:200]!r}, not "
            f"{spec.issuer!r}: check the issuer URL."
        )
    try:
        algorithms = tuple(
            a
            for a in doc.get("id_token_signing_alg_values_supported") or ["RS256"]
            if a in SIGNING_ALGORITHMS
        )
        return Metadata(
            issuer=str(doc["issuer"]),
            authorization_endpoint=spec.authorization_endpoint
            or str(doc["authorization_endpoint"]),
            token_endpoint=spec.token_endpoint or str(doc["token_endpoint"]),
            jwks_uri=str(doc["jwks_uri"]),
            userinfo_endpoint=doc.get("userinfo_endpoint"),
            end_session_endpoint=doc.get("end_session_endpoint"),
            algorithms=algorithms or ("RS256",),
        )
    except KeyError as exc:
        raise provider_failed(f"The discovery document has no {exc.args[0]}.") from None


class ProviderCache:
    """Discovery documents and key sets, per issuer (a tenant's apart from the operator's,
    so a tenant never uses what was fetched from an address its policy refuses)."""

    def __init__(self) -> None:
        self._metadata: dict[tuple[str, bool], tuple[float, Metadata]] = {}
        self._keys: dict[tuple[str, bool], KeySet] = {}
        self._flights: SingleFlight[Any] = SingleFlight()

    def forget_issuer(self, issuer: str) -> None:
        """Drop what a tenant's provider at `issuer` had fetched (it was changed or tested)."""
        self._metadata.pop((issuer, True), None)
        self._keys.pop((issuer, True), None)

    async def metadata(self, http: HTTPClient, spec: ProviderSpec) -> Metadata:
        key = (spec.issuer or "", spec.tenant)
        cached = self._metadata.get(key)
        if cached is not None and cached[0] > time.monotonic():
            return cached[1]

        async def load() -> Metadata:
            url = f"{spec.issuer}/.well-known/openid-configuration"
            status, doc = await call(http, spec, "GET", url)
            if status != 200:
                raise provider_failed(
                    f"The identity provider's discovery document answered {status}: check the "
                    "issuer URL."
                )
            found = parse_metadata(spec, doc)
            self._metadata[key] = (time.monotonic() + METADATA_TTL, found)
            return found

        return await self._flights.run(("metadata", key), load)

    async def key_set(
        self, http: HTTPClient, spec: ProviderSpec, metadata: Metadata, *, refresh: bool = False
    ) -> KeySet:
        key = (spec.issuer or "", spec.tenant)
        if not refresh and (keys := self._keys.get(key)) is not None:
            return keys

        async def load() -> KeySet:
            status, doc = await call(http, spec, "GET", metadata.jwks_uri)
            if status != 200 or not isinstance(doc, dict):
                raise provider_failed(f"The identity provider's keys answered {status}.")
            try:
                keys = KeySet.import_key_set(doc)  # type: ignore[arg-type]
            except (JoseError, KeyError, TypeError, ValueError):
                raise provider_failed("The identity provider's key set cannot be read.") from None
            self._keys[key] = keys
            return keys

        return await self._flights.run(("keys", key), load)


def client_auth(spec: ProviderSpec, form: dict[str, str], method: str) -> list[tuple[str, str]]:
    """Authenticate the client at the token endpoint: HTTP Basic (the default of RFC 6749,
    each part form-encoded first, section 2.3.1), or in the body; a public client sends
    only its id (PKCE protects the code)."""
    if spec.client_secret is None:
        form["client_id"] = spec.client_id
        return []
    if method == "client_secret_post":
        form.update(client_id=spec.client_id, client_secret=spec.client_secret)
        return []
    pair = f"{quote(spec.client_id, safe='')}:{quote(spec.client_secret, safe='')}"
    return [("authorization", "Basic " + base64.b64encode(pair.encode()).decode())]


async def exchange_code(
    http: HTTPClient,
    spec: ProviderSpec,
    token_endpoint: str,
    *,
    code: str,
    redirect_uri: str,
    code_verifier: str,
) -> dict[str, Any]:
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": redirect_uri,
        "code_verifier": code_verifier,
    }
    headers = client_auth(spec, form, spec.token_auth)
    status, answer = await call(http, spec, "POST", token_endpoint, headers=headers, form=form)
    # Some providers (GitHub) answer errors with 200 and an `error` member.
    if status != 200 or not isinstance(answer, dict) or "error" in answer:
        error = answer.get("error") if isinstance(answer, dict) else None
        raise unauthorized(
            "The identity provider did not accept the sign-in code"
            + (f" ({str(error)[:100]})" if error else f" (it answered {status})")
            + ". Try signing in again.",
            "sso_code_refused",
        )
    if not isinstance(answer.get("access_token"), str):
        raise provider_failed("The identity provider's token answer has no access token.")
    return answer


def _refusal(exc: JoseError) -> GatewayError:
    if isinstance(exc, ExpiredTokenError):
        why = "it has expired (check that the server clocks agree)"
    elif getattr(exc, "claim", None) == "aud":
        why = "it was issued for another application (audience): check the client id"
    elif getattr(exc, "claim", None) == "iss":
        why = "another issuer signed it"
    elif getattr(exc, "claim", None) == "nonce":
        why = "it answers another sign-in (nonce)"
    elif getattr(exc, "claim", None):
        why = f"its {exc.claim} claim is missing or wrong"  # type: ignore[attr-defined]
    elif isinstance(exc, InvalidKeyIdError):
        why = "it is signed with a key the provider does not publish"
    else:
        why = "its signature does not verify"
    return unauthorized(
        f"The identity provider's ID token was refused: {why}.", "sso_token_invalid"
    )


def validate_id_token(
    id_token: str,
    keys: KeySet,
    spec: ProviderSpec,
    metadata: Metadata,
    *,
    nonce: str,
    access_token: str | None,
    now: int | None = None,
) -> dict[str, Any]:
    """The token's claims once its signature, issuer, audience, expiry, issue time, nonce,
    authorized party and access-token hash check out; raises InvalidKeyIdError for a key
    the set lacks (the caller refetches once) and GatewayError for anything else."""
    try:
        token = jwt.decode(id_token, keys, algorithms=list(metadata.algorithms))
    except InvalidKeyIdError:
        raise
    except JoseError as exc:
        raise _refusal(exc) from None
    options: dict[str, Any] = {
        "iss": {"essential": True, "values": spec.accepted_issuers()},
        "aud": {"essential": True, "value": spec.client_id},
        "sub": {"essential": True},
        "exp": {"essential": True},
        "iat": {"essential": True},
    }
    params: dict[str, Any] = {"nonce": nonce, "client_id": spec.client_id}
    if access_token:
        params["access_token"] = access_token
    claims = CodeIDToken(token.claims, token.header, options, params)
    try:
        claims.validate(now=now, leeway=LEEWAY)
    except JoseError as exc:
        raise _refusal(exc) from None
    return dict(claims)


async def verified_claims(
    cache: ProviderCache,
    http: HTTPClient,
    spec: ProviderSpec,
    metadata: Metadata,
    tokens: dict[str, Any],
    nonce: str,
) -> dict[str, Any]:
    """The ID token's claims, with the user-info endpoint's added where the token lacks them
    (many providers put e-mail and groups there only)."""
    id_token = tokens.get("id_token")
    if not isinstance(id_token, str):
        raise provider_failed("The identity provider sent no ID token (is `openid` a scope?).")
    access_token = tokens.get("access_token")
    keys = await cache.key_set(http, spec, metadata)
    try:
        claims = validate_id_token(
            id_token, keys, spec, metadata, nonce=nonce, access_token=access_token
        )
    except InvalidKeyIdError:
        keys = await cache.key_set(http, spec, metadata, refresh=True)
        try:
            claims = validate_id_token(
                id_token, keys, spec, metadata, nonce=nonce, access_token=access_token
            )
        except InvalidKeyIdError as exc:
            raise _refusal(exc) from None
    if metadata.userinfo_endpoint and isinstance(access_token, str):
        headers = [("authorization", f"Bearer {access_token}")]
        status, info = await call(http, spec, "GET", metadata.userinfo_endpoint, headers=headers)
        # OpenID Connect Core 5.3.2: user info about someone else must not be used.
        if status == 200 and isinstance(info, dict) and info.get("sub") == claims["sub"]:
            claims = {**info, **claims}
    return claims
