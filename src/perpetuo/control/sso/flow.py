"""A sign-in through an identity provider, from the redirect to it until it has said who
signed in: the authorization code flow with PKCE, a state that is single use and bound to
the browser that started the sign-in, and, with OpenID Connect, a nonce the ID token echoes.

The state, nonce and PKCE verifier are kept in the store (only the state's hash, and the
hash of the browser's binding cookie), so any instance can take the provider's answer, and
the row is marked used before anything else happens: an answer replayed, from this browser
or another, is refused.
"""

from __future__ import annotations

import datetime as dt
import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from authlib.common.security import generate_token
from authlib.oauth2.rfc6749.parameters import prepare_grant_uri
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from sqlalchemy import delete, insert, select, update

from perpetuo.auth.api_keys import token_hash
from perpetuo.control.errors import unauthorized
from perpetuo.control.plane import ControlPlane
from perpetuo.control.sso.github import github_identity
from perpetuo.control.sso.oidc import exchange_code, verified_claims
from perpetuo.control.sso.spec import ProviderSpec
from perpetuo.schema.errors import ErrorType, GatewayError
from perpetuo.store.sso_tables import sso_requests
from perpetuo.store.timeutil import utcnow

REQUEST_TTL = dt.timedelta(minutes=10)
_PRUNE_AFTER = dt.timedelta(days=1)


@dataclass(frozen=True)
class Identity:
    """Who the provider says signed in."""

    subject: str
    email: str
    email_verified: bool | None  # None: the provider does not say
    name: str
    claims: dict[str, Any]
    id_token: str | None  # kept for signing out at the provider
    next_path: str | None


def bad_answer(message: str, code: str) -> GatewayError:
    return GatewayError(400, message, type=ErrorType.INVALID_REQUEST, code=code)


async def start(
    plane: ControlPlane, spec: ProviderSpec, browser: str, next_path: str | None
) -> str:
    """The provider's authorization URL for a new sign-in from the browser holding `browser`."""
    state, nonce, verifier = generate_token(43), generate_token(32), generate_token(64)
    if spec.is_oidc:
        endpoint = (await plane.sso.metadata(spec)).authorization_endpoint
    else:
        endpoint = spec.authorization_endpoint or ""
    now = utcnow()
    async with plane.db.begin() as conn:
        await conn.execute(
            delete(sso_requests).where(sso_requests.c.expires_at < now - _PRUNE_AFTER)
        )
        await conn.execute(
            insert(sso_requests).values(
                state_hash=token_hash(state),
                provider_key=spec.key,
                browser_hash=token_hash(browser),
                nonce=nonce,
                code_verifier=verifier,
                next_path=next_path,
                created_at=now,
                expires_at=now + REQUEST_TTL,
            )
        )
    extra: dict[str, Any] = {
        "code_challenge": create_s256_code_challenge(verifier),
        "code_challenge_method": "S256",
    }
    if spec.is_oidc:
        extra["nonce"] = nonce
    if spec.kind == "google" and len(spec.domains) == 1:
        extra["hd"] = spec.domains[0]  # Google shows only that Workspace's accounts
    return prepare_grant_uri(
        endpoint,
        spec.client_id,
        "code",
        redirect_uri=spec.redirect_uri(plane.sso.base_url),
        scope=list(spec.scopes),
        state=state,
        **extra,
    )


async def _consume(plane: ControlPlane, spec: ProviderSpec, state: str, browser: str | None) -> Any:
    """The sign-in this state belongs to, marked used; refuses one unknown, used, expired,
    started in another browser or with another provider."""
    digest = token_hash(state)
    now = utcnow()
    async with plane.db.begin() as conn:
        taken = await conn.execute(
            update(sso_requests)
            .where(sso_requests.c.state_hash == digest, sso_requests.c.used_at.is_(None))
            .values(used_at=now)
        )
        row = (
            await conn.execute(select(sso_requests).where(sso_requests.c.state_hash == digest))
        ).first()
    if row is None:
        raise bad_answer(
            "This sign-in answer is not one we asked for: sign in again.", "sso_state_unknown"
        )
    if taken.rowcount != 1:
        raise bad_answer(
            "This sign-in answer was already used (a page reloaded or a link replayed): sign in "
            "again.",
            "sso_state_replayed",
        )
    if row.expires_at <= now:
        raise bad_answer("This sign-in took too long: sign in again.", "sso_state_expired")
    if browser is None or not hmac.compare_digest(token_hash(browser), row.browser_hash):
        raise bad_answer(
            "This sign-in was started in another browser: sign in again from this one.",
            "sso_state_foreign",
        )
    if row.provider_key != spec.key:
        raise bad_answer(
            "This answer comes from another sign-in provider: sign in again.", "sso_state_mixup"
        )
    return row


async def finish(
    plane: ControlPlane, spec: ProviderSpec, browser: str | None, answer: Mapping[str, str]
) -> Identity:
    """Who signed in, from the provider's answer (the callback's query parameters)."""
    state = answer.get("state")
    if not state:
        raise bad_answer(
            "The identity provider's answer has no state: sign in again.", "sso_state_missing"
        )
    pending = await _consume(plane, spec, state, browser)
    if error := answer.get("error"):
        raise unauthorized(
            f"The identity provider did not sign you in ({error[:100]}).", "sso_refused_by_provider"
        )
    code = answer.get("code")
    if not code:
        raise bad_answer(
            "The identity provider's answer has no code: sign in again.", "sso_code_missing"
        )
    http = plane.sso.client()
    redirect_uri = spec.redirect_uri(plane.sso.base_url)
    id_token = None
    if spec.is_oidc:
        metadata = await plane.sso.metadata(spec)
        # RFC 9207: a provider that names itself in its answer must name itself.
        if (iss := answer.get("iss")) is not None and iss not in spec.accepted_issuers():
            raise bad_answer(
                "This answer names another identity provider: sign in again.", "sso_state_mixup"
            )
        tokens = await exchange_code(
            http,
            spec,
            metadata.token_endpoint,
            code=code,
            redirect_uri=redirect_uri,
            code_verifier=pending.code_verifier,
        )
        claims = await verified_claims(plane.sso.cache, http, spec, metadata, tokens, pending.nonce)
        id_token = tokens.get("id_token")
    else:
        tokens = await exchange_code(
            http,
            spec,
            spec.token_endpoint or "",
            code=code,
            redirect_uri=redirect_uri,
            code_verifier=pending.code_verifier,
        )
        claims = await github_identity(http, spec, tokens["access_token"])
    return _identity(claims, id_token, pending.next_path)


def _identity(claims: dict[str, Any], id_token: str | None, next_path: str | None) -> Identity:
    email = claims.get("email")
    if not isinstance(email, str) or "@" not in email:
        raise unauthorized(
            "The identity provider did not say your e-mail address (is `email` a scope?).",
            "sso_no_email",
        )
    verified = claims.get("email_verified")
    if isinstance(verified, str):  # some providers send "true"
        verified = verified.lower() == "true"
    name = claims.get("name")
    return Identity(
        subject=str(claims["sub"]),
        email=email.strip().lower(),
        email_verified=verified if isinstance(verified, bool) else None,
        name=name[:200] if isinstance(name, str) else "",
        claims=claims,
        id_token=id_token if isinstance(id_token, str) else None,
        next_path=next_path,
    )
