"""A ControlPlane over a fresh database, as the gateway builds it, for service-level tests."""

from __future__ import annotations

from perpetuo.auth.credential_crypto import Keyring, new_key_spec
from perpetuo.auth.secrets import DerivedKeys
from perpetuo.control.changes import ChangeFeed
from perpetuo.control.plane import ControlPlane
from perpetuo.store.database import Database
from perpetuo.store.migrate import upgrade

SECRET = b"test-server-secret-0123456789abcdef"


async def make_plane(url: str, keyring: Keyring | None = None) -> ControlPlane:
    db = Database(url)
    await upgrade(db)
    return ControlPlane(
        db=db,
        keys=DerivedKeys.from_secret(SECRET),
        changes=ChangeFeed(db),
        keyring=keyring if keyring is not None else Keyring.parse(new_key_spec("k1")),
        signup_policy="open",  # policies have their own tests; here anyone may sign up
    )
