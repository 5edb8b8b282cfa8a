"""Getting the store ready before the gateway serves: schema at head, secrets usable."""

from __future__ import annotations

from sqlalchemy import func, select

from perpetuo.control.plane import ControlPlane
from perpetuo.store.migrate import upgrade
from perpetuo.store.schema import provider_credentials


class StartupError(Exception):
    pass


async def prepare_store(plane: ControlPlane) -> str | None:
    """Apply pending migrations; refuse to go on if stored credentials cannot be decrypted.
    Returns the schema revision found before upgrading."""
    before = await upgrade(plane.db)
    if plane.keyring is None:
        async with plane.db.connect() as conn:
            stored = await conn.scalar(select(func.count()).select_from(provider_credentials))
        if stored:
            raise StartupError(
                f"{stored} provider credentials are stored but no encryption key is configured: "
                "set PERPETUO_ENCRYPTION_KEYS (or PERPETUO_ENCRYPTION_KEYS_FILE)"
            )
    return before
