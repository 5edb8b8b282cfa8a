"""Store and Redis URLs as operators write them, checked (and completed) before anything starts.

An operator copies a PostgreSQL URL from their provider: `postgres://...?sslmode=require`.
Perpetuo talks to PostgreSQL through asyncpg and to SQLite through aiosqlite, so a URL without
a driver gets that one, and libpq's `sslmode` becomes asyncpg's `ssl` (it takes the same
modes). Any other driver, scheme or malformed part is a clear start-up error, not a traceback
from a worker.
"""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

_DRIVERS = {
    "postgres": "postgresql+asyncpg",
    "postgresql": "postgresql+asyncpg",
    "postgresql+asyncpg": "postgresql+asyncpg",
    "sqlite": "sqlite+aiosqlite",
    "sqlite+aiosqlite": "sqlite+aiosqlite",
}
_SSL_MODES = {"disable", "allow", "prefer", "require", "verify-ca", "verify-full"}


def database_url(url: str) -> str:
    """`url` with its driver (asyncpg or aiosqlite); ValueError says what is wrong."""
    scheme, rest = url.split("://", 1) if "://" in url else ("", url)
    driver = _DRIVERS.get(scheme.lower())
    if driver is None:
        raise ValueError(
            f"unsupported database URL scheme {scheme or url!r}: use postgresql://... "
            "(asyncpg) or sqlite:///path (aiosqlite)"
        )
    if driver == "sqlite+aiosqlite":
        return f"{driver}://{rest}"
    parts = urlsplit(f"{driver}://{rest}")
    parts.port  # noqa: B018  # raises ValueError on a port that is not a number
    if not parts.hostname and "host=" not in parts.query:
        raise ValueError("no host (postgresql://user:password@host:5432/db)")
    query = []
    for name, value in parse_qsl(parts.query, keep_blank_values=True):
        if name == "sslmode":
            if value not in _SSL_MODES:
                raise ValueError(f"sslmode must be one of {sorted(_SSL_MODES)}")
            name = "ssl"
        query.append((name, value))
    return urlunsplit(parts._replace(query=urlencode(query)))


def redis_url(url: str) -> str:
    """`url` unchanged if the Redis clients can use it; ValueError says what is wrong."""
    from perpetuo.limits.resp import parse_url

    parse_url(url)
    return url
