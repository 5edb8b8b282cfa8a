"""A gateway killed with SIGKILL under load, on SQLite and on PostgreSQL: after a restart,
the request log holds every request answered more than the journal's bound before the kill,
each once."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import threading
import time
from pathlib import Path

import asyncpg
import httpx
import msgspec

from tests.conftest import full_config
from tests.support.gateway import MASTER_KEY, GatewayProcess

# docs/deployment.md states 100 ms for the default journal (10 ms between appends), measured
# by `./dev bench --hard-kill` (oldest record lost: 8 ms before the kill). Here the whole suite
# shares two cores, and a CI run once left the journal's thread without a CPU for over 100 ms:
# the test allows 250 ms. Without the journal it still fails: batches are 3 s apart below.
BOUND = 0.25
CHAT = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "kill"}]}


class Load:
    """`concurrency` clients sending chat requests back to back, noting when each answer
    (200) arrived and its request id, until stop()."""

    def __init__(self, url: str, concurrency: int = 6) -> None:
        self.url = url
        self.concurrency = concurrency
        self.answered: list[tuple[float, str]] = []  # (time.monotonic(), x-request-id)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._run()), daemon=True)

    def start(self) -> Load:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(30)
        assert not self._thread.is_alive()

    async def _run(self) -> None:
        headers = {"authorization": f"Bearer {MASTER_KEY}"}
        async with httpx.AsyncClient(timeout=10, headers=headers) as http:
            await asyncio.gather(*(self._client(http) for _ in range(self.concurrency)))

    async def _client(self, http: httpx.AsyncClient) -> None:
        while not self._stop.is_set():
            try:
                response = await http.post(f"{self.url}/v1/chat/completions", json=CHAT)
            except httpx.HTTPError:
                await asyncio.sleep(0.01)  # the gateway is gone: nothing was answered
                continue
            if response.status_code == 200:
                self.answered.append((time.monotonic(), response.headers["x-request-id"]))


IDS = "SELECT id FROM request_logs"
COUNTED = "SELECT coalesce(sum(requests), 0) FROM usage_rollups WHERE dim = 'all'"


def logged(store_url: str) -> tuple[set[str], int, int]:
    """(ids in the request log, rows, requests counted in the `all` rollup)."""
    if store_url.startswith("postgresql"):
        return asyncio.run(_logged_postgres(store_url.replace("+asyncpg", "")))
    conn = sqlite3.connect(store_url.split(":///", 1)[1])
    try:
        found = [row[0] for row in conn.execute(IDS)]
        counted = conn.execute(COUNTED).fetchone()[0]
    finally:
        conn.close()
    return set(found), len(found), counted


async def _logged_postgres(dsn: str) -> tuple[set[str], int, int]:
    conn = await asyncpg.connect(dsn)
    try:
        found = [row[0] for row in await conn.fetch(IDS)]
        counted = await conn.fetchval(COUNTED)
    finally:
        await conn.close()
    return set(found), len(found), counted


def journaled(journal: Path) -> set[str]:
    ids: set[str] = set()
    for segment in journal.glob("journal-*.jsonl"):
        for line in segment.read_bytes().splitlines():
            ids.add(msgspec.json.decode(line)["id"])
    return ids


def test_a_hard_kill_loses_no_record_answered_before_the_bound(mocks, store_url, tmp_path):
    config, env = full_config(mocks)
    # Batches are written every 3 s, whatever their size, so that the kill below lands between
    # two commits with records in memory only (by default every 0.5 s or 2,000 records).
    env = {
        **env,
        "PERPETUO_DATABASE_URL": store_url,
        "PERPETUO_REQUEST_LOG_FLUSH_INTERVAL": "3",
        "PERPETUO_REQUEST_LOG_BATCH_SIZE": "1000000",
    }
    journal = tmp_path / "data" / "journal"
    first = GatewayProcess(config, tmp_path, env=env).start()
    assert first.proc is not None
    load = Load(first.url).start()
    try:
        deadline = time.monotonic() + 20
        while not logged(store_url)[1]:  # the first commit
            assert time.monotonic() < deadline, "no request-log batch was written"
            time.sleep(0.05)
        time.sleep(0.6)
        killed = time.monotonic()
        os.kill(first.proc.pid, signal.SIGKILL)
        first.proc.wait(10)
    finally:
        first.stop()
        time.sleep(0.2)  # answers already on their way when the process died
        load.stop()
    due = {rid for at, rid in load.answered if at < killed - BOUND}
    stored, _, _ = logged(store_url)
    in_journal = journaled(journal)
    # The kill left answered requests out of the database; the journal has them. (It may also
    # hold records the database has: test_journal.py replays such a segment.)
    missing = due - stored
    assert missing, "the kill came after a commit: nothing to recover"
    assert missing <= in_journal, f"{len(missing - in_journal)} of {len(missing)} not journaled"

    restarted = {k: v for k, v in env.items() if not k.startswith("PERPETUO_REQUEST_LOG_")}
    with GatewayProcess(config, tmp_path, env=restarted):
        deadline = time.monotonic() + 20
        while not due <= (stored := logged(store_url)[0]):
            assert time.monotonic() < deadline, f"{len(due - stored)} answered records lost"
            time.sleep(0.1)
        _, rows, counted = logged(store_url)
        assert rows == counted  # each record counted once, those replayed twice included
        assert not list(journal.glob("journal-*"))  # replayed, and nothing left behind
