"""Who performs a control-plane action, and what roles mean."""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum


class Role(IntEnum):
    """Ordered: each role can do everything the ones below it can."""

    VIEWER = 1
    MEMBER = 2
    ADMIN = 3
    OWNER = 4

    @classmethod
    def parse(cls, value: str) -> Role:
        return cls[value.upper()]

    @property
    def label(self) -> str:
        return self.name.lower()


ROLE_NAMES = tuple(r.label for r in Role)


@dataclass(frozen=True)
class Actor:
    kind: str  # "user", "master" (the master key), "cli", "system"
    user_id: str | None = None
    is_superadmin: bool = False
    ip: str | None = None
    user_agent: str | None = None
    session_id: str | None = None  # the sign-in session, for access-token callers

    @property
    def audit_id(self) -> str | None:
        return self.user_id


CLI_ACTOR = Actor(kind="cli", is_superadmin=True)
