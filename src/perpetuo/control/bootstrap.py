"""Getting the store ready before the gateway serves: schema at head, secrets usable."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import func, select

from perpetuo.store.migrate import upgrade
from perpetuo.store.schema import provider_credentials

if TYPE_CHECKING:  # `perpetuo serve` prepares the store before it loads the control plane
    from perpetuo.auth.credential_crypto import Keyring
    from perpetuo.control.plane import ControlPlane
    from perpetuo.store.database import Database


class StartupError(Exception):
    pass


async def prepare_store(plane: ControlPlane) -> str | None:
    return await prepare_database(plane.db, plane.keyring)


async def prepare_database(db: Database, keyring: Keyring | None) -> str | None:
    """Apply pending migrations; refuse to go on if stored credentials cannot be decrypted.
    Returns the schema revision found before upgrading."""
    before = await upgrade(db)
    if keyring is None:
        async with db.connect() as conn:
            stored = await conn.scalar(select(func.count()).select_from(provider_credentials))
        if stored:
            raise StartupError(
                f"{stored} provider credentials are stored but no encryption key is configured: "
                "set PERPETUO_ENCRYPTION_KEYS (or PERPETUO_ENCRYPTION_KEYS_FILE)"
            )
    return before
