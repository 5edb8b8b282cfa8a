"""Access tokens for people using the admin API and dashboard: short-lived signed JWTs.

Each names its session (`sid`); logging out revokes the session, and the admin API checks
the session on every request, so a revoked token stops working at once.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import jwt

ISSUER = "perpetuo"
ALGORITHM = "HS256"


@dataclass(frozen=True)
class AccessClaims:
    user_id: str
    session_id: str
    expires_at: int


def issue_access_token(key: bytes, user_id: str, session_id: str, ttl: float) -> tuple[str, int]:
    now = int(time.time())
    expires = now + int(ttl)
    token = jwt.encode(
        {
            "iss": ISSUER,
            "sub": user_id,
            "sid": session_id,
            "iat": now,
            "exp": expires,
            "typ": "access",
        },
        key,
        algorithm=ALGORITHM,
    )
    return token, expires


class InvalidToken(Exception):
    pass


def verify_access_token(key: bytes, token: str) -> AccessClaims:
    try:
        claims = jwt.decode(
            token,
            key,
            algorithms=[ALGORITHM],
            issuer=ISSUER,
            options={"require": ["exp", "iat", "sub", "sid", "iss"]},
        )
    except jwt.ExpiredSignatureError:
        raise InvalidToken("the access token has expired") from None
    except jwt.PyJWTError:
        raise InvalidToken("the access token is not valid") from None
    if claims.get("typ") != "access":
        raise InvalidToken("the token is not an access token")
    return AccessClaims(str(claims["sub"]), str(claims["sid"]), int(claims["exp"]))
