"""Short-lived upstream credentials: fetched with I/O, cached, refreshed before they expire.

A cloud provider's OAuth token or instance-role keys are the one upstream I/O an adapter
cannot do itself. `RefreshingCredentials` holds them for the router (see CredentialSource in
base.py): `ready(client)` returns at once while they are fresh, and otherwise runs one fetch
that every concurrent request waits for. The cache is keyed by the credential's identity,
not by the object, so deployments of one provider share a token and a config reload does not
fetch a new one. A refresh that fails while the old credentials are still valid keeps them
(and logs); only credentials that have expired make requests fail.

Nothing here logs or returns a secret: errors carry the endpoint's own error code and text,
passed through the secret scrubber.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import msgspec

from perpetuo.providers.upstream_errors import redact_secrets
from perpetuo.schema.errors import UpstreamError, UpstreamErrorKind
from perpetuo.transport.caps import ResponseCaps
from perpetuo.transport.errors import TransportError
from perpetuo.transport.url import URL, Timeouts

if TYPE_CHECKING:
    from perpetuo.transport.client import HTTPClient
    from perpetuo.transport.egress import EgressPolicy

T = TypeVar("T")
log = logging.getLogger("perpetuo.upstream")

REFRESH_MARGIN = 300.0  # seconds before expiry when a refresh is due
FETCH_TIMEOUTS = Timeouts(connect=5.0, first_byte=10.0, read=10.0, total=15.0)
FETCH_CAPS = ResponseCaps(max_body_bytes=256 * 1024)  # a token answer is a few hundred bytes
_MAX_ENTRIES = 10_000  # tenants' credentials come and go: the cache stays bounded


@dataclass(slots=True)
class _Entry:
    value: Any
    expires_at: float | None  # wall-clock seconds; None: never


_cache: dict[str, _Entry] = {}
_inflight: dict[str, asyncio.Task[None]] = {}


def fingerprint(*parts: str) -> str:
    """A cache key for a credential's identity (secrets go in hashed, never as they are)."""
    return hashlib.sha256("\x00".join(parts).encode()).hexdigest()


class RefreshingCredentials(Generic[T]):
    """Credentials of type T that `fetch` obtains; subclasses say how and for how long."""

    what = "credentials"  # for messages: "Google access token", "AWS instance credentials"

    def __init__(self, key: str, egress: EgressPolicy | None = None) -> None:
        self.key = key
        self.egress = egress  # a tenant's endpoints are checked like any tenant URL

    async def fetch(self, client: HTTPClient) -> tuple[T, float | None]:
        """New credentials and when they expire (wall-clock seconds, or None)."""
        raise NotImplementedError

    def current(self) -> T:
        """The cached credentials (no I/O); NOT_CONFIGURED when none were fetched yet."""
        entry = _cache.get(self.key)
        if entry is None or _expired(entry, time.time()):
            raise UpstreamError(UpstreamErrorKind.NOT_CONFIGURED, f"no {self.what} yet")
        return entry.value

    async def ready(self, client: HTTPClient) -> None:
        entry = _cache.get(self.key)
        if entry is not None and (
            entry.expires_at is None or entry.expires_at - time.time() > REFRESH_MARGIN
        ):
            return
        fetch = _inflight.get(self.key)
        if fetch is None:
            # A task of its own: a request that goes away does not cancel the others' fetch.
            fetch = asyncio.get_running_loop().create_task(self._refresh(client, entry))
            _inflight[self.key] = fetch
            fetch.add_done_callback(self._fetched)
        await asyncio.shield(fetch)

    def _fetched(self, fetch: asyncio.Task[None]) -> None:
        if _inflight.get(self.key) is fetch:
            del _inflight[self.key]
        if not fetch.cancelled():
            fetch.exception()  # seen here too: every waiter may have gone away

    async def _refresh(self, client: HTTPClient, old: _Entry | None) -> None:
        try:
            value, expires_at = await self.fetch(client)
        except (UpstreamError, TransportError) as exc:
            if old is not None and not _expired(old, time.time()):
                log.warning("refreshing %s failed, the current ones stay: %s", self.what, exc)
                return
            raise
        if len(_cache) >= _MAX_ENTRIES:
            _cache.clear()
        _cache[self.key] = _Entry(value, expires_at)

    def forget(self) -> None:
        """Drop the cached credentials (the next `ready` fetches new ones)."""
        _cache.pop(self.key, None)


def _expired(entry: _Entry, now: float) -> bool:
    return entry.expires_at is not None and entry.expires_at <= now


async def fetch_json(
    client: HTTPClient,
    method: str,
    url: str,
    headers: list[tuple[str, str]],
    body: bytes = b"",
    *,
    what: str,
    egress: EgressPolicy | None = None,
) -> dict[str, Any]:
    """One small JSON exchange with a credential endpoint; a refusal is an AUTH error that
    names the endpoint's error code (never echoing what was sent)."""
    parsed = URL.parse(url)
    response = await client.request(
        method, parsed, headers, body, FETCH_TIMEOUTS, egress=egress, caps=FETCH_CAPS
    )
    raw = await response.read()
    try:
        data = msgspec.json.decode(raw) if raw else None
    except (msgspec.DecodeError, UnicodeDecodeError):
        data = None
    if response.status >= 300:
        raise credential_refused(what, response.status, data)
    if not isinstance(data, dict):
        raise UpstreamError(
            UpstreamErrorKind.BAD_RESPONSE, f"the {what} endpoint sent an unreadable answer"
        )
    return data


def credential_refused(what: str, status: int, data: Any) -> UpstreamError:
    """The endpoint's error code and text for the logs and the trace; the client is told
    only that the gateway's credentials were refused (`cause`, in the gateway's words)."""
    detail = ""
    if isinstance(data, dict):
        code = data.get("error") or data.get("Code") or data.get("code")
        text = data.get("error_description") or data.get("Message") or data.get("message")
        parts = [str(p)[:200] for p in (code, text) if isinstance(p, str) and p]
        detail = f": {', '.join(parts)}" if parts else ""
    kind = UpstreamErrorKind.AUTH if status < 500 else UpstreamErrorKind.SERVER
    refused = f"the {what} endpoint refused the gateway's credentials (HTTP {status})"
    error = UpstreamError(kind, redact_secrets(refused + detail), status=status)
    error.cause = refused if status < 500 else f"the {what} endpoint failed (HTTP {status})"
    return error
