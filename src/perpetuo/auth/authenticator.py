"""Turn the credential on a request into a Principal, from memory.

Each refusal has its own code and message: a missing key, an unknown key, a revoked,
expired or rotated-away key (401), a request from an address or site the key does not allow,
or a key whose owner was disabled or left the workspace (403). With an invalid-key throttle,
an address that sent too many missing or unknown keys gets 429 before any lookup. A key that
is not in memory while the database is unreachable gets 503 (keys in memory keep working). Scope and
model restrictions are checked later, where the endpoint and model are known.
"""

from __future__ import annotations

import hmac
import ipaddress
import math
import time
from collections.abc import Mapping
from urllib.parse import urlsplit

from sqlalchemy.exc import SQLAlchemyError

from perpetuo.auth.api_keys import key_hash, looks_like_key
from perpetuo.auth.key_cache import KeyCache, KeyRecord
from perpetuo.auth.key_throttle import InvalidKeyThrottle
from perpetuo.auth.principal import MASTER, Principal
from perpetuo.schema import headers as H
from perpetuo.schema.errors import ErrorCode, ErrorType, GatewayError, forbidden, unauthorized


def bearer_token(headers: Mapping[str, str]) -> str | None:
    """The API key from `Authorization: Bearer`, or the `api-key` / `x-api-key` headers."""
    auth = headers.get(H.AUTHORIZATION)
    if auth:
        scheme, _, token = auth.partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            return token.strip()
        return None
    return headers.get(H.API_KEY) or headers.get(H.X_API_KEY) or None


class Authenticator:
    def __init__(
        self,
        master_key: str | None,
        *,
        hmac_key: bytes | None = None,
        keys: KeyCache | None = None,
        throttle: InvalidKeyThrottle | None = None,
    ) -> None:
        self._master = master_key.encode() if master_key else None
        self._hmac_key = hmac_key
        self.keys = keys
        self.throttle = throttle  # None: no limit on bad keys per address

    async def authenticate(self, headers: Mapping[str, str], client_ip: str = "") -> Principal:
        throttle = self.throttle
        if throttle is not None and (wait := throttle.retry_after(client_ip)):
            raise too_many_invalid_keys(wait)
        token = bearer_token(headers)
        if token is None:
            if throttle is not None:
                await throttle.failed(client_ip)
            raise unauthorized(
                "You didn't provide an API key. Send it in the Authorization header using "
                "Bearer auth (Authorization: Bearer YOUR_KEY).",
                ErrorCode.MISSING_API_KEY,
            )
        if self._master is not None and hmac.compare_digest(token.encode(), self._master):
            return MASTER
        record = None
        if self.keys is not None and self._hmac_key is not None and looks_like_key(token):
            try:
                record = await self.keys.get(key_hash(self._hmac_key, token))
            except (OSError, SQLAlchemyError) as exc:  # keys in memory still work meanwhile
                raise store_unavailable() from exc
        if record is None:
            if throttle is not None:
                await throttle.failed(client_ip)
            raise unauthorized("Incorrect API key provided.", ErrorCode.INVALID_API_KEY)
        check_usable(record, headers, client_ip)
        self.keys.touch(record.key_id)
        return record.principal


OWNER_REFUSALS = {
    "disabled": "This API key's owner has been disabled on this server, so the key no longer "
    "works. Ask a workspace admin for a key of your own or a service key.",
    "removed": "This API key's owner is no longer a member of this workspace, so the key no "
    "longer works. Ask a workspace admin for a key of your own or a service key.",
}


def store_unavailable() -> GatewayError:
    return GatewayError(
        503,
        "The gateway cannot check this API key right now: its database is unreachable. "
        "Retry in a moment.",
        type=ErrorType.UNAVAILABLE,
        code=ErrorCode.STORE_UNAVAILABLE,
        headers={"retry-after": "1"},
    )


def too_many_invalid_keys(wait: float) -> GatewayError:
    return GatewayError(
        429,
        "Too many requests with a missing or invalid API key from this address. Try again "
        f"in {max(1, math.ceil(wait))} seconds.",
        type=ErrorType.RATE_LIMIT,
        code=ErrorCode.TOO_MANY_INVALID_KEYS,
        headers={"retry-after": str(max(1, math.ceil(wait)))},
    )


def check_usable(record: KeyRecord, headers: Mapping[str, str], client_ip: str) -> None:
    now = time.time()
    if record.revoked:
        raise unauthorized("This API key has been revoked.", ErrorCode.API_KEY_REVOKED)
    if record.expires_at is not None and record.expires_at <= now:
        raise unauthorized("This API key has expired.", ErrorCode.API_KEY_EXPIRED)
    if record.valid_until is not None and record.valid_until <= now:
        raise unauthorized(
            "This API key was rotated and its grace period has ended; use the new key.",
            ErrorCode.API_KEY_ROTATED,
        )
    if record.owner is not None and record.owner != "active":
        raise forbidden(OWNER_REFUSALS[record.owner], ErrorCode.KEY_OWNER_DISABLED)
    if record.networks is not None and not _address_allowed(client_ip, record):
        raise forbidden(
            "This API key may not be used from this IP address.", ErrorCode.IP_NOT_ALLOWED
        )
    if record.referer_domains is not None and not _referer_allowed(headers, record):
        raise forbidden(
            "This API key may not be used from this site.", ErrorCode.REFERER_NOT_ALLOWED
        )


def _address_allowed(client_ip: str, record: KeyRecord) -> bool:
    try:
        address = ipaddress.ip_address(client_ip)
    except ValueError:
        return False
    assert record.networks is not None
    return any(address in network for network in record.networks)


def _referer_allowed(headers: Mapping[str, str], record: KeyRecord) -> bool:
    source = headers.get("origin") or headers.get("referer") or ""
    host = (urlsplit(source).hostname or "").lower()
    if not host:
        return False
    assert record.referer_domains is not None
    return any(host == d or host.endswith("." + d) for d in record.referer_domains)
