"""TLS settings of an upstream (CA bundle, client certificate) and their SSL contexts.

A context is built once per distinct setting and kept; the files behind it are looked at
again (their modification times) only when a new connection is opened, so a rotated client
certificate or CA bundle is picked up without a restart and requests on pooled connections
pay nothing.
"""

from __future__ import annotations

import logging
import os
import ssl
from dataclasses import dataclass, field

log = logging.getLogger("perpetuo.upstream")

Stamp = tuple[int, ...]


@dataclass(frozen=True, slots=True)
class TLSSettings:
    """How to verify an upstream and who we are to it. `ca_bundle` replaces the system CAs
    (a PEM file); `client_cert` (PEM, may hold the key too) and `client_key` are presented
    to upstreams that require mutual TLS."""

    verify: bool = True
    ca_bundle: str | None = None
    client_cert: str | None = None
    client_key: str | None = None
    key_password: str | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.ca_bundle and not self.verify:
            raise ValueError("ca_bundle has no effect with verify_tls: false")
        if (self.client_key or self.key_password) and not self.client_cert:
            raise ValueError("client_key and client_key_password need client_cert")

    @property
    def files(self) -> tuple[str, ...]:
        return tuple(f for f in (self.ca_bundle, self.client_cert, self.client_key) if f)

    def stamp(self) -> Stamp:
        """The files' modification times: a change means the context must be rebuilt."""
        return tuple(os.stat(path).st_mtime_ns for path in self.files)

    def context(self) -> ssl.SSLContext:
        """A new context; ValueError names the file that cannot be used and why."""
        try:
            context = ssl.create_default_context(cafile=self.ca_bundle)
        except (OSError, ssl.SSLError) as exc:
            why = _reason(exc)
            raise ValueError(f"cannot load the CA bundle {self.ca_bundle}: {why}") from None
        if not self.verify:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        if self.client_cert:
            try:
                context.load_cert_chain(self.client_cert, self.client_key, self.key_password)
            except (OSError, ssl.SSLError) as exc:
                files = self.client_cert + (f" and {self.client_key}" if self.client_key else "")
                raise ValueError(
                    f"cannot load the client certificate {files}: {_reason(exc)}"
                ) from None
        return context


def _reason(exc: Exception) -> str:
    # Never the password: only what OpenSSL or the OS said about the file.
    if isinstance(exc, ssl.SSLError):
        return exc.reason or exc.__class__.__name__
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc)


class SSLContexts:
    """Contexts by setting: the two defaults (verify or not) and one per custom setting."""

    __slots__ = ("_custom", "_default")

    def __init__(self) -> None:
        self._default: dict[bool, ssl.SSLContext] = {}
        self._custom: dict[TLSSettings, tuple[Stamp, ssl.SSLContext]] = {}

    def default(self, verify: bool) -> ssl.SSLContext:
        context = self._default.get(verify)
        if context is None:
            context = self._default[verify] = TLSSettings(verify=verify).context()
        return context

    def get(self, settings: TLSSettings) -> ssl.SSLContext:
        """The context for `settings`, rebuilt when one of its files changed; when a changed
        file cannot be loaded (a rotation half done), the last good context is kept."""
        known = self._custom.get(settings)
        try:
            stamp = settings.stamp()
        except OSError as exc:
            if known is None:
                raise ValueError(f"cannot read {exc.filename}: {exc.strerror}") from None
            return known[1]
        if known is not None and known[0] == stamp:
            return known[1]
        try:
            context = settings.context()
        except ValueError as exc:
            if known is None:
                raise
            log.warning("TLS files changed but cannot be loaded, keeping the previous: %s", exc)
            context = known[1]  # tried again when the files change again
        self._custom[settings] = (stamp, context)
        return context
