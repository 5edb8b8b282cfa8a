"""Turn the credential on a request into a Principal, without touching the database."""

from __future__ import annotations

import hmac
from collections.abc import Mapping

from perpetuo.auth.principal import MASTER, Principal
from perpetuo.schema import headers as H
from perpetuo.schema.errors import ErrorCode, unauthorized


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
    def __init__(self, master_key: str | None) -> None:
        self._master = master_key.encode() if master_key else None

    def authenticate(self, headers: Mapping[str, str]) -> Principal:
        token = bearer_token(headers)
        if token is None:
            raise unauthorized(
                "You didn't provide an API key. Send it in the Authorization header using "
                "Bearer auth (Authorization: Bearer YOUR_KEY).",
                ErrorCode.MISSING_API_KEY,
            )
        if self._master is not None and hmac.compare_digest(token.encode(), self._master):
            return MASTER
        raise unauthorized("Incorrect API key provided.", ErrorCode.INVALID_API_KEY)
