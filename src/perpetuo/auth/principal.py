"""The authenticated caller of a request, as the pipeline sees it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class Principal:
    kind: str  # "master" or "api_key"
    workspace_id: str | None = None
    key_id: str | None = None
    user_id: str | None = None
    scopes: frozenset[str] | None = None  # None: every scope
    allowed_models: frozenset[str] | None = None  # None: every alias
    # The key's team (its own, else its owner's), that team's limits, and the owner's own
    # limits as a member: read with the key, so the hot path needs no query for them.
    team_id: str | None = None
    team_limits: Mapping[str, Any] | None = field(default=None, compare=False)
    user_limits: Mapping[str, Any] | None = field(default=None, compare=False)
    limits: Mapping[str, Any] | None = field(default=None, compare=False)  # the key's limits
    # The key's cache and guardrail overrides (CachePolicy / GuardrailPolicy), None if unset.
    cache: Any = field(default=None, compare=False)
    guardrails: Any = field(default=None, compare=False)
    environment: str | None = None  # the key's (live, test, ...); None: the master key

    def may_use_model(self, alias: str) -> bool:
        return self.allowed_models is None or alias in self.allowed_models

    def has_scope(self, scope: str) -> bool:
        return self.scopes is None or scope in self.scopes


DEFAULT_WORKSPACE_ID = "ws_default"  # created by the first migration

# The master key acts for the platform; its data-plane traffic counts to the default workspace.
MASTER = Principal(kind="master", workspace_id=DEFAULT_WORKSPACE_ID)
