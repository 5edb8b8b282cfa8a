"""Browser origins allowed to call the data plane: their normal form, and each workspace's
own list (the `cors_origins` workspace setting), read in one query for the CORS policy."""

from __future__ import annotations

from urllib.parse import urlsplit

from sqlalchemy import select

from perpetuo.store.database import Database
from perpetuo.store.schema import workspaces

MAX_ORIGINS = 50


def normalize_origin(value: str) -> str:
    """`https://App.example.com:443/` -> `https://app.example.com`; ValueError if it is not
    a scheme and host with an optional port."""
    parts = urlsplit(value.strip())
    bad = ValueError(f"{value!r} is not an origin (scheme://host[:port])")
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise bad
    if parts.path not in ("", "/") or parts.query or parts.fragment or parts.username:
        raise bad
    try:
        port = parts.port
    except ValueError:
        raise bad from None
    host = parts.hostname.lower()
    host = f"[{host}]" if ":" in host else host
    default = {"http": 80, "https": 443}[parts.scheme]
    return f"{parts.scheme}://{host}" + (f":{port}" if port and port != default else "")


def check_origins(values: list[str] | None) -> list[str] | None:
    """For the workspace setting: each an origin (no `*`: a workspace names its apps)."""
    if values is None:
        return None
    if len(values) > MAX_ORIGINS:
        raise ValueError(f"at most {MAX_ORIGINS} origins")
    return sorted({normalize_origin(v) for v in values})


async def workspace_origins(db: Database) -> dict[str, frozenset[str]]:
    """Every workspace that allows origins, with them."""
    async with db.connect() as conn:
        rows = (await conn.execute(select(workspaces.c.id, workspaces.c.settings))).all()
    found: dict[str, frozenset[str]] = {}
    for row in rows:
        origins = (row.settings or {}).get("cors_origins")
        if origins:
            found[row.id] = frozenset(origins)
    return found
