"""PostgreSQL stopped for a few seconds, then killed with kill -9 and restarted, under load
through a gateway that keeps its keys and request logs there: requests are answered from
memory all along (the key cached), request-log records spill to disk and are replayed, and
afterwards the database holds one row per answered request (none lost, none twice, and the
usage rollups count each once). The 60-second outage is in the benchmark
(`./dev bench --faults`)."""

from __future__ import annotations

import time

from tests.conftest import full_config
from tests.faults.support import (
    Load,
    answered,
    create_key,
    kill_postgres,
    metric,
    psql,
    wait_for,
)
from tests.support.gateway import GatewayProcess

OUTAGE = 3.0  # seconds PostgreSQL stays stopped
BOUND = 2.0  # seconds: the most a request may take meanwhile (it waits on nothing)


def test_postgres_stopped_then_killed_loses_no_request_log_row(mocks, postgres, tmp_path):
    database = f"faults_{int(time.time() * 1000)}"
    url = postgres.create_database(database)
    # The test server runs with synchronous_commit off (fast, and safe against a stopped
    # server but not a killed one): a crash would lose commits it had acknowledged. This
    # database commits as a production server does.
    postgres.sql(f'ALTER DATABASE "{database}" SET synchronous_commit = on')
    config, env = full_config(mocks)
    env = {
        **env,
        "PERPETUO_DATABASE_URL": url,
        "PERPETUO_SECRET_KEY": "s" * 40,
    }
    gateway = GatewayProcess(config, tmp_path, env=env).start()
    try:
        key = create_key(gateway)["key"]
        load = Load(gateway.url, key).start()
        # Past the change poll that announces the new key (every 2 s), which drops it from
        # memory once: keys in use are then cached, as they are in a running install.
        time.sleep(2.5)
        stopped = time.monotonic()
        postgres.stop_server()
        time.sleep(OUTAGE)
        restarted = time.monotonic()
        postgres.start_server()
        wait_for(lambda: metric(gateway, "perpetuo_usage_replayed_records_total"), 30, "replay")
        spilled = metric(gateway, "perpetuo_usage_spilled_records")
        killed = time.monotonic()
        kill_postgres(postgres)
        time.sleep(1.0)
        postgres.start_server()
        time.sleep(1.0)
        outcomes = load.stop()
        ids = {o.request_id for o in answered(outcomes)}
        assert {o.status for o in outcomes} == {200}
        slowest = max(o.seconds for o in outcomes)
        assert slowest < BOUND, f"a request took {slowest:.2f} s with PostgreSQL away"
        assert len(load.between(stopped + 1.0, restarted)) >= 10  # answered from memory
        assert len(load.between(killed, killed + 1.0)) >= 5
        assert spilled > 0

        def stored() -> set[str]:
            return set(psql(postgres, database, "select id from request_logs").split())

        deadline = time.monotonic() + 60
        while not (rows := stored()) >= ids and time.monotonic() < deadline:
            time.sleep(0.5)
        missing = sorted(
            o.started - stopped for o in answered(outcomes) if o.request_id not in rows
        )
        assert not missing, f"{len(missing)} of {len(ids)} rows lost, sent at {missing[:5]} s"
        assert rows == ids  # (the primary key allows no duplicate)
        counted = psql(
            postgres,
            database,
            "select sum(requests) from usage_rollups where dim = 'all'",
        )
        assert int(counted) == len(ids)  # a replayed record is not counted twice
        assert metric(gateway, "perpetuo_usage_dropped_records_total") == 0
    finally:
        gateway.stop()
