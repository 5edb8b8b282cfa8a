"""Apply migrations at start-up and from `perpetuo db upgrade`.

The head revision is a constant so that a database already at head is recognised with one
query, without loading Alembic (which costs start-up time); a test keeps it in sync.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from perpetuo.store.database import Database

HEAD_REVISION = "0017"
_LOCK_ID = 0x7065727065  # "perpe": this application's advisory lock


async def current_revision(db: Database) -> str | None:
    async with db.connect() as conn:
        try:
            result = await conn.execute(text("SELECT version_num FROM alembic_version"))
        except DBAPIError:
            return None
        row = result.first()
        return row[0] if row else None


async def upgrade(db: Database, revision: str = "head") -> str | None:
    """Bring the schema to `revision`; returns the revision it was at before."""
    before = await current_revision(db)
    if revision == "head" and before == HEAD_REVISION:
        return before
    async with db.begin() as conn:
        if db.dialect == "postgresql":
            # Instances starting together migrate one at a time (the lock ends with the
            # transaction); the next finds the schema at head and has nothing to do.
            await conn.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": _LOCK_ID})
        await conn.run_sync(_run_alembic, "upgrade", revision)
    return before


async def downgrade(db: Database, revision: str) -> None:
    async with db.begin() as conn:
        await conn.run_sync(_run_alembic, "downgrade", revision)


def alembic_config(connection: Any = None) -> Any:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", "perpetuo.store:migrations")
    config.attributes["connection"] = connection
    return config


def _run_alembic(connection: Any, action: str, revision: str) -> None:
    from alembic import command

    getattr(command, action)(alembic_config(connection), revision)
