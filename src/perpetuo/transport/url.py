"""Pre-parsed upstream URLs and per-deployment timeouts."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit


@dataclass(frozen=True, slots=True)
class Origin:
    scheme: str
    host: str
    port: int

    @property
    def is_tls(self) -> bool:
        return self.scheme == "https"

    @property
    def host_header(self) -> str:
        default = 443 if self.is_tls else 80
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port == default else f"{host}:{self.port}"


@dataclass(frozen=True, slots=True)
class URL:
    """An absolute http(s) URL split once, so requests only concatenate strings."""

    origin: Origin
    target: str  # path plus query, as sent on the request line

    @classmethod
    def parse(cls, url: str) -> URL:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https"):
            raise ValueError(f"unsupported URL scheme in {url!r}: use http or https")
        if not parts.hostname:
            raise ValueError(f"URL {url!r} has no host")
        port = parts.port or (443 if parts.scheme == "https" else 80)
        target = parts.path or "/"
        if parts.query:
            target = f"{target}?{parts.query}"
        return cls(Origin(parts.scheme, parts.hostname, port), target)

    def join(self, path: str, query: str = "") -> URL:
        """This URL's path with `path` appended (exactly one slash between them)."""
        base = self.target.split("?", 1)[0].rstrip("/")
        target = f"{base}/{path.lstrip('/')}"
        if query:
            target = f"{target}?{query}"
        return URL(self.origin, target)

    def __str__(self) -> str:
        return f"{self.origin.scheme}://{self.origin.host_header}{self.target}"


@dataclass(frozen=True, slots=True)
class Timeouts:
    """Seconds; `read` is the longest silence allowed between two body chunks."""

    connect: float = 10.0
    first_byte: float = 120.0
    read: float = 120.0
    total: float | None = 600.0
