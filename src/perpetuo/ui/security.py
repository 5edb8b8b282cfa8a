"""Browser-facing protections: cookies, CSRF tokens, same-origin checks, security headers.

The session cookie is HttpOnly, SameSite=Lax and Secure whenever the request came over
HTTPS (directly, or through a trusted proxy's X-Forwarded-Proto, which uvicorn applies to
the scope). Every POST carries a synchronizer token bound to the session (an HMAC of the
session id, so nothing extra is stored) and must come from this origin.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import Response

SESSION_COOKIE = "perpetuo_session"
PRESESSION_COOKIE = "perpetuo_presession"  # double-submit token for the sign-in forms
FLASH_COOKIE = "perpetuo_flash"
COOKIE_PATH = "/ui"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"

CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "font-src 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
        "object-src 'none'",
    )
)
SECURITY_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"permissions-policy", b"camera=(), microphone=(), geolocation=()"),
)


def csrf_key(jwt_signing_key: bytes) -> bytes:
    """A key of its own for CSRF tokens, derived from a server-derived key."""
    return hmac.new(jwt_signing_key, b"perpetuo/ui-csrf/v1", hashlib.sha256).digest()


def csrf_token(key: bytes, session_id: str) -> str:
    digest = hmac.new(key, session_id.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def tokens_match(given: str | None, expected: str) -> bool:
    return bool(given) and hmac.compare_digest(given.encode(), expected.encode())


def is_https(request: Request) -> bool:
    return request.url.scheme == "https"


def same_origin(request: Request) -> bool:
    """The request's Origin (or, failing that, Referer) names this server. Host and port
    are compared, not the scheme: behind a TLS-terminating proxy the two legitimately
    differ, and no other site can serve pages from this host and port."""
    source = request.headers.get("origin")
    if not source or source == "null":
        source = request.headers.get("referer")
    if not source:
        return False
    host = request.headers.get("host", "")
    return bool(host) and urlsplit(source).netloc.lower() == host.lower()


def set_cookie(
    response: Response, request: Request, name: str, value: str, *, max_age: int | None
) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path=COOKIE_PATH,
        httponly=True,
        secure=is_https(request),
        samesite="lax",
    )


def clear_cookie(response: Response, request: Request, name: str) -> None:
    response.delete_cookie(
        name, path=COOKIE_PATH, httponly=True, secure=is_https(request), samesite="lax"
    )
