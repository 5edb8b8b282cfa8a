"""Migrations on both engines: the schema they build is the one the code declares, and the
head revision constant the start-up fast path relies on is the real head."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import insert, select, text
from sqlalchemy.exc import DBAPIError

from perpetuo.store.database import Database
from perpetuo.store.migrate import (
    HEAD_REVISION,
    alembic_config,
    current_revision,
    downgrade,
    upgrade,
)
from perpetuo.store.schema import api_keys as api_keys_table
from perpetuo.store.schema import audit_log, metadata, workspaces
from perpetuo.store.timeutil import utcnow


def test_head_constant_matches_the_migration_scripts():
    script = ScriptDirectory.from_config(alembic_config())
    assert script.get_current_head() == HEAD_REVISION


async def test_upgrade_builds_the_declared_schema(store_url):
    db = Database(store_url)
    try:
        assert await current_revision(db) is None
        assert await upgrade(db) is None
        assert await current_revision(db) == HEAD_REVISION
        assert await upgrade(db) == HEAD_REVISION  # idempotent, and fast at head
        async with db.connect() as conn:
            diff = await conn.run_sync(
                lambda c: compare_metadata(
                    MigrationContext.configure(c, opts={"compare_type": True}), metadata
                )
            )
            assert diff == []
            names = (await conn.execute(select(workspaces.c.id))).scalars().all()
        assert names == ["ws_default"]
    finally:
        await db.dispose()


async def test_audit_log_is_append_only_at_the_database(store_url):
    db = Database(store_url)
    try:
        await upgrade(db)
        async with db.begin() as conn:
            await conn.execute(
                insert(audit_log).values(
                    actor_type="system",
                    action="test.write",
                    target_type="thing",
                    created_at=utcnow(),
                )
            )
        for statement in ("UPDATE audit_log SET action = 'rewritten'", "DELETE FROM audit_log"):
            with pytest.raises(DBAPIError, match="append-only"):
                async with db.begin() as conn:
                    await conn.execute(text(statement))
        async with db.connect() as conn:
            assert (await conn.execute(select(audit_log.c.action))).scalars().all() == [
                "test.write"
            ]
    finally:
        await db.dispose()


async def test_downgrade_and_upgrade_round_trip(store_url):
    db = Database(store_url)
    try:
        await upgrade(db)
        await downgrade(db, "base")
        assert await current_revision(db) is None
        await upgrade(db)
        assert await current_revision(db) == HEAD_REVISION
    finally:
        await db.dispose()


async def test_upgrading_an_older_database_keeps_its_data(store_url):
    """A database created by revision 0001 and holding data comes through every later
    migration with that data intact."""
    from perpetuo.auth.credential_crypto import Keyring, new_key_spec
    from perpetuo.auth.secrets import DerivedKeys
    from perpetuo.control import api_keys, credentials
    from perpetuo.control.actor import CLI_ACTOR
    from perpetuo.control.changes import ChangeFeed
    from perpetuo.control.plane import ControlPlane

    db = Database(store_url)
    try:
        await upgrade(db, "0001")
        assert await current_revision(db) == "0001"
        plane = ControlPlane(
            db=db,
            keys=DerivedKeys.from_secret(b"x" * 32),
            changes=ChangeFeed(db),
            keyring=Keyring.parse(new_key_spec("k1")),
        )
        # Written as revision 0001 wrote it: today's code reads columns added since.
        key = {"id": "key_old"}
        async with db.begin() as conn:
            await conn.execute(
                insert(api_keys_table).values(
                    id="key_old",
                    workspace_id="ws_default",
                    name="old",
                    environment="live",
                    prefix="pk_live_old",
                    last4="abcd",
                    key_hash="h" * 64,
                    scopes=["chat"],
                    metadata={},
                    limits={},
                    created_at=utcnow(),
                    updated_at=utcnow(),
                )
            )
        spec = credentials.CredentialCreate(
            name="c", provider_type="openai", api_key="sk-abcdef123456"
        )
        cred = await credentials.create_credential(plane, CLI_ACTOR, "ws_default", spec)
        await upgrade(db)
        assert await current_revision(db) == HEAD_REVISION
        assert (await api_keys.get_key(plane, CLI_ACTOR, "ws_default", key["id"]))["name"] == "old"
        assert (await credentials.get_credential(plane, CLI_ACTOR, "ws_default", cred["id"]))[
            "last4"
        ] == "3456"
        async with db.connect() as conn:
            actions = (
                (await conn.execute(select(audit_log.c.action).order_by(audit_log.c.id)))
                .scalars()
                .all()
            )
        assert actions == ["credential.create"]
    finally:
        await db.dispose()


async def test_request_logs_of_an_older_database_come_through_partitioning(store_url):
    """A populated database at 0005 keeps every request-log row (and its rollups) through
    0006; on PostgreSQL each day lands in its own partition, and the table takes new rows,
    replays included, as before. Downgrading brings the rows back into one table."""
    import datetime as dt

    from sqlalchemy import func

    from perpetuo.metering.record import RequestRecord
    from perpetuo.metering.writer import write_batch
    from perpetuo.store.schema import request_logs, usage_rollups

    db = Database(store_url)
    now = dt.datetime.now(dt.UTC)

    def record(i: int, days_ago: int) -> RequestRecord:
        stamp = (now - dt.timedelta(days=days_ago)).timestamp()
        return RequestRecord(
            id=f"req_{i}", workspace_id="ws_default", created_at=stamp, endpoint="chat", status=200
        )

    async def ids_and_requests() -> tuple[set[str], int]:
        async with db.connect() as conn:
            ids = set((await conn.execute(select(request_logs.c.id))).scalars())
            requests = await conn.scalar(
                select(func.sum(usage_rollups.c.requests)).where(usage_rollups.c.dim == "all")
            )
        return ids, int(requests or 0)

    try:
        await upgrade(db, "0005")
        old = [record(i, days_ago=i % 3) for i in range(9)]
        # The writer of today also fills the columns later revisions added: lend them.
        later = {
            "request_logs": {
                "unit": "VARCHAR(16)",
                "quantity": "FLOAT NOT NULL DEFAULT 0",
                "team_id": "VARCHAR(40)",
            },
            "usage_rollups": {
                **{f"lat_{i}": "INTEGER NOT NULL DEFAULT 0" for i in range(15, 41)},
                "latency_max_ms": "FLOAT NOT NULL DEFAULT 0",
            },
        }
        async with db.begin() as conn:
            for table, added in later.items():
                for name, kind in added.items():
                    await conn.execute(text(f"ALTER TABLE {table} ADD COLUMN {name} {kind}"))
        assert await write_batch(db, old) == 9
        async with db.begin() as conn:
            for table, added in later.items():
                for name in added:
                    await conn.execute(text(f"ALTER TABLE {table} DROP COLUMN {name}"))
        await upgrade(db)
        assert await current_revision(db) == HEAD_REVISION
        assert await ids_and_requests() == ({f"req_{i}" for i in range(9)}, 9)
        if db.dialect == "postgresql":
            async with db.connect() as conn:
                parts = await conn.execute(
                    text(
                        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
                        " JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = 'request_logs'"
                    )
                )
                days = {(now - dt.timedelta(days=d)).strftime("%Y%m%d") for d in range(3)}
                assert {f"request_logs_p{d}" for d in days} <= set(parts.scalars())
        # A replay of old rows next to new ones: one row each, rollups counted once.
        assert await write_batch(db, [*old[:4], record(100, days_ago=0)]) == 1
        assert await ids_and_requests() == ({*(f"req_{i}" for i in range(9)), "req_100"}, 10)
        await downgrade(db, "0005")
        assert (await ids_and_requests())[0] == {*(f"req_{i}" for i in range(9)), "req_100"}
    finally:
        await db.dispose()


async def test_rollups_of_an_older_database_keep_their_latency_counts(store_url):
    """Rollups written with the first latency layout (14 bounds from 10 ms) come through 0012
    with every request counted, percentiles inside the old bucket and at most the slowest
    request's bound; downgrading gives the old counts back exactly."""
    import datetime as dt

    from perpetuo.metering.rollup import percentile
    from perpetuo.store.schema import LATENCY_COLUMNS, usage_rollups

    db = Database(store_url)
    hour = dt.datetime(2026, 1, 5, 10, tzinfo=dt.UTC)
    # lat_0: (0, 10] ms, lat_4: (100, 250], lat_14: over 300 s.
    old = {"lat_0": 90, "lat_4": 9, "lat_14": 1}
    try:
        await upgrade(db, "0011")
        columns = ", ".join(f"lat_{i}" for i in range(15))
        values = ", ".join(str(old.get(f"lat_{i}", 0)) for i in range(15))
        async with db.begin() as conn:
            await conn.execute(
                text(
                    "INSERT INTO usage_rollups (workspace_id, bucket, dim, value, requests, "
                    "errors, prompt_tokens, completion_tokens, cached_tokens, cost_micros, "
                    f"cache_hits, saved_cost_micros, latency_sum_ms, {columns}) "
                    f"VALUES ('ws_default', :hour, 'all', '', 100, 0, 0, 0, 0, 0, 0, 0, "
                    f"400000.0, {values})"
                ),
                {"hour": hour.replace(tzinfo=None) if db.dialect == "sqlite" else hour},
            )
        await upgrade(db)
        async with db.connect() as conn:
            row = (await conn.execute(select(usage_rollups))).one()
        histogram = [getattr(row, c) for c in LATENCY_COLUMNS]
        assert sum(histogram) == 100
        assert row.latency_max_ms == 400000.0  # over 300 s, and no more than the sum
        assert 0 < percentile(histogram, 0.5, row.latency_max_ms) <= 10
        assert 100 < percentile(histogram, 0.95, row.latency_max_ms) <= 250
        await downgrade(db, "0011")
        async with db.connect() as conn:
            back = (await conn.execute(text(f"SELECT {columns} FROM usage_rollups"))).one()
        assert {f"lat_{i}": n for i, n in enumerate(back) if n} == old
    finally:
        await db.dispose()
