"""Fallback chains between aliases.

When every deployment of an alias failed with errors another deployment might not have,
the alias's `fallbacks` are tried in order, each with its own strategy and deployments, and
each may add its own fallbacks in turn (depth first). A prompt too long for the model goes
to `context_window_fallbacks`, a refusal by the provider's content policy to
`content_policy_fallbacks`. No alias is tried twice in one request, so cycles in the
configuration are harmless.
"""

from __future__ import annotations

from collections.abc import Callable

from perpetuo.routing.classify import is_retryable
from perpetuo.routing.table import Alias
from perpetuo.schema.errors import UpstreamError, UpstreamErrorKind


def fallback_names(alias: Alias, error: UpstreamError) -> list[str] | None:
    """The aliases this failure of `alias` sends the request to; None when it must stop."""
    kind = error.kind
    if kind is UpstreamErrorKind.CONTEXT_LENGTH:
        return alias.config.context_window_fallbacks
    if kind is UpstreamErrorKind.CONTENT_POLICY:
        return alias.config.content_policy_fallbacks
    if is_retryable(error):
        return alias.config.fallbacks
    return None


class FallbackChain:
    """The aliases one request may be served by, growing as failures call for fallbacks."""

    __slots__ = ("_lookup", "_pending", "tried")

    def __init__(
        self,
        first: Alias,
        lookup: Callable[[str], Alias | None],
        tried: list[str] | None = None,
    ) -> None:
        """`tried`: aliases already tried (then `first` is one of them, not queued)."""
        self._lookup = lookup
        self.tried: list[str] = tried if tried is not None else []
        self._pending: list[Alias] = [] if first.name in self.tried else [first]

    def next(self) -> Alias | None:
        while self._pending:
            alias = self._pending.pop(0)
            if alias.name not in self.tried:
                self.tried.append(alias.name)
                return alias
        return None

    def failed(self, alias: Alias, error: UpstreamError) -> bool:
        """Queue the fallbacks `error` calls for, ahead of those already waiting. False when
        the error must go to the client as it is (the client's own mistake)."""
        names = fallback_names(alias, error)
        if names is None:
            return False
        queued = [a for n in names if n not in self.tried and (a := self._lookup(n)) is not None]
        self._pending[:0] = queued
        return True
