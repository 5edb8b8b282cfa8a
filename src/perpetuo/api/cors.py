"""CORS for browser apps calling the data plane.

Allowed origins come from PERPETUO_CORS_ORIGINS (a list, or `*`) and from each workspace's
`cors_origins` setting. A preflight (OPTIONS with Origin and Access-Control-Request-Method)
is answered before authentication, since browsers send it without credentials: an origin
any workspace allows passes the preflight, and the real request then carries the CORS
headers only if the origin is allowed globally or by the caller's own workspace. `*` is
answered as `*` and never with credentials; a named origin is echoed with `Vary: Origin`.
Nothing here runs unless an origin is configured somewhere.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from perpetuo.api.http import Response
from perpetuo.control.cors_origins import normalize_origin
from perpetuo.schema.errors import ErrorCode, ErrorType, GatewayError
from perpetuo.singleflight import SingleFlight

METHODS = b"GET, POST, DELETE, OPTIONS"
# Headers the data plane's clients read from answers (limits, routing, request id).
EXPOSED = (
    b"x-request-id, retry-after, x-ratelimit-limit-requests, x-ratelimit-remaining-requests, "
    b"x-ratelimit-reset-requests, x-ratelimit-limit-tokens, x-ratelimit-remaining-tokens, "
    b"x-ratelimit-reset-tokens, x-perpetuo-provider, x-perpetuo-model, x-perpetuo-cache"
)
REFRESH_SECONDS = 30.0  # workspace origins are re-read at most this often, on preflights

WorkspaceOrigins = Callable[[], Awaitable[dict[str, frozenset[str]]]]


def parse_origins(spec: str) -> tuple[bool, frozenset[str]]:
    """PERPETUO_CORS_ORIGINS: (any origin, the named origins)."""
    items = [item.strip() for item in spec.split(",") if item.strip()]
    return "*" in items, frozenset(normalize_origin(i) for i in items if i != "*")


class CorsPolicy:
    def __init__(
        self,
        origins: str = "",
        *,
        allow_credentials: bool = False,
        max_age: int = 600,
        workspace_origins: WorkspaceOrigins | None = None,
    ) -> None:
        self.any_origin, self.origins = parse_origins(origins)
        if self.any_origin and allow_credentials:
            raise ValueError("CORS credentials cannot be allowed with the * origin")
        self.allow_credentials = allow_credentials
        self.max_age = str(max_age).encode()
        self._load = workspace_origins
        self._by_workspace: dict[str, frozenset[str]] = {}
        self._anywhere: frozenset[str] = frozenset()
        self._loaded_at = -REFRESH_SECONDS
        self._flight: SingleFlight[None] = SingleFlight()

    @property
    def configured(self) -> bool:
        return self.any_origin or bool(self.origins) or self._load is not None

    def stale(self, _: str = "") -> None:
        """A workspace changed (its origins may have): re-read before the next preflight."""
        self._loaded_at = -REFRESH_SECONDS

    async def _refresh(self) -> None:
        if self._load is None or time.monotonic() - self._loaded_at < REFRESH_SECONDS:
            return

        async def load() -> None:
            assert self._load is not None
            self._by_workspace = await self._load()
            self._anywhere = frozenset().union(*self._by_workspace.values())
            self._loaded_at = time.monotonic()

        await self._flight.run("origins", load)

    @property
    def known_origins(self) -> frozenset[str]:
        """Origins some workspace allows (as last read)."""
        return self._anywhere

    def _global(self, origin: str) -> bool:
        return self.any_origin or origin in self.origins

    async def preflight(self, headers: dict[str, str]) -> Response:
        origin = _origin(headers)
        await self._refresh()
        if origin is None or not (self._global(origin) or origin in self._anywhere):
            error = GatewayError(
                403,
                "This origin may not call this API from a browser (CORS).",
                type=ErrorType.PERMISSION,
                code=ErrorCode.ORIGIN_NOT_ALLOWED,
            )
            return Response(403, error.body(), [(b"content-type", b"application/json")])
        allow = [
            *self._origin_headers(origin),
            (b"access-control-allow-methods", METHODS),
            (b"access-control-max-age", self.max_age),
        ]
        requested = headers.get("access-control-request-headers", "")
        if requested:
            allow.append((b"access-control-allow-headers", requested.encode("latin-1")))
        return Response(204, b"", allow)

    def answer_headers(
        self, headers: dict[str, str], workspace_origins: frozenset[str] | None
    ) -> list[tuple[bytes, bytes]]:
        """CORS headers for an answer to `headers`' origin, if it is allowed (globally, or by
        the caller's workspace when known)."""
        origin = _origin(headers)
        if origin is None:
            return []
        if self._global(origin) or (workspace_origins is not None and origin in workspace_origins):
            return [*self._origin_headers(origin), (b"access-control-expose-headers", EXPOSED)]
        return []

    def _origin_headers(self, origin: str) -> list[tuple[bytes, bytes]]:
        if self.any_origin and origin not in self.origins and origin not in self._anywhere:
            return [(b"access-control-allow-origin", b"*")]
        headers = [(b"access-control-allow-origin", origin.encode()), (b"vary", b"Origin")]
        if self.allow_credentials:
            headers.append((b"access-control-allow-credentials", b"true"))
        return headers


def _origin(headers: dict[str, str]) -> str | None:
    value = headers.get("origin")
    if not value or value == "null":
        return None
    try:
        return normalize_origin(value)
    except ValueError:
        return None
