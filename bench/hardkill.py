"""Hard kills under load: how many answered requests' request-log records a SIGKILL of the
gateway loses, with the request-log journal on and off, and what the journal costs.

`./dev bench --hard-kill KILLS` (python -m bench.hardkill KILLS):
1. cost: two gateways on one mock, journal on and off, under the load generator at once
   (JSON chat, 16 connections each); gateway CPU per request and event-loop lag of each;
2. kills: for each setting, one gateway (SQLite, default batching) is loaded by 16 clients
   that note when each answer arrived and its request id, killed with SIGKILL at a random
   moment 1.5-3 s into the load, restarted on the same data directory and given time to
   replay; answered requests without a row are lost, and their age at the kill is noted.
Results go to bench/results/hardkill.json.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import random
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import uvloop
import yaml

from bench import looplag
from bench.loadgen import body
from bench.system import (
    ROOT,
    free_port,
    mock_config,
    process_cpu_seconds,
    start_gateway_process,
    start_mock,
)
from perpetuo.transport import URL, HTTPClient, Timeouts

MASTER_KEY = "pk-bench-hard-kill-0123456789"
BOUND_MS = 100.0  # the bound docs/deployment.md states for the default journal
CLIENTS = 16
SETTINGS = {"journal on": "true", "journal off": "false"}


class Gateway:
    def __init__(self, workdir: Path, mock_port: int, journal: str) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        self.workdir = workdir
        self.config_path = workdir / "gateway.yaml"
        self.config_path.write_text(yaml.safe_dump(mock_config(mock_port)))
        self.env = {
            "PERPETUO_MASTER_KEY": MASTER_KEY,
            "PERPETUO_DATA_DIR": str(workdir / "data"),
            "PERPETUO_LOG_LEVEL": "warning",
            "PERPETUO_REQUEST_LOG_JOURNAL": journal,
        }
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def database(self) -> Path:
        return self.workdir / "data" / "perpetuo.db"

    def start(self) -> Gateway:
        self.port = free_port()
        log = self.workdir / "gateway.log"
        self.proc = start_gateway_process(self.config_path, self.port, self.env, log)
        return self

    def kill(self) -> float:
        assert self.proc is not None
        killed = time.monotonic()
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(30)
        return killed

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(60)

    def waiting(self) -> int:
        """Files the restarted gateway still has to replay (spill and journal)."""
        data = self.workdir / "data"
        spill = list((data / "spill").glob("*.jsonl*")) if (data / "spill").exists() else []
        return len([p for p in spill if not p.name.endswith(".offset")])

    def stored(self) -> tuple[set[str], int, int]:
        conn = sqlite3.connect(self.database)
        try:
            ids = {row[0] for row in conn.execute("SELECT id FROM request_logs")}
            counted = conn.execute(
                "SELECT coalesce(sum(requests), 0) FROM usage_rollups WHERE dim = 'all'"
            ).fetchone()[0]
        finally:
            conn.close()
        return ids, len(ids), counted


async def load_until(url: str, stop_at: float) -> list[tuple[float, str]]:
    """CLIENTS clients sending chat requests back to back until `stop_at` (monotonic):
    (answer time, request id) of every 200."""
    client = HTTPClient()
    target = URL.parse(f"{url}/v1/chat/completions")
    headers = [("content-type", "application/json"), ("authorization", f"Bearer {MASTER_KEY}")]
    payload = body(False)
    timeouts = Timeouts(connect=2, first_byte=5, read=5, total=10)
    answered: list[tuple[float, str]] = []

    async def worker() -> None:
        while time.monotonic() < stop_at:
            try:
                response = await client.request("POST", target, headers, payload, timeouts)
                await response.read()
            except Exception:
                await asyncio.sleep(0.01)
                continue
            if response.status == 200:
                answered.append((time.monotonic(), response.headers["x-request-id"]))

    await asyncio.gather(*(worker() for _ in range(CLIENTS)))
    await client.aclose()
    return answered


def one_kill(gateway: Gateway) -> dict[str, Any]:
    """Load, kill at a random moment, restart, wait for the replay; what was lost."""
    kill_after = random.uniform(1.5, 3.0)
    started = time.monotonic()
    stop_at = started + kill_after + 0.5
    killed: list[float] = []

    async def run() -> list[tuple[float, str]]:
        loop = asyncio.get_running_loop()
        loop.call_later(kill_after, lambda: killed.append(gateway.kill()))
        return await load_until(gateway.base, stop_at)

    answered = uvloop.run(run())
    kill = killed[0]
    gateway.start()
    deadline = time.monotonic() + 60
    while gateway.waiting() and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(1.0)  # the last replay chunk and the live batch after it
    ids, rows, counted = gateway.stored()
    lost = [(kill - at) * 1000 for at, rid in answered if rid not in ids]
    return {
        "killed_after_s": round(kill_after, 3),
        "answered": len(answered),
        "lost": len(lost),
        "oldest_lost_ms": round(max(lost), 1) if lost else None,
        "lost_older_than_bound": sum(1 for age in lost if age > BOUND_MS),
        "rows": rows,
        "rollup_requests": counted,
    }


def kills(mock_port: int, workdir: Path, count: int) -> dict[str, Any]:
    results: dict[str, Any] = {}
    for name, journal in SETTINGS.items():
        gateway = Gateway(workdir / name.replace(" ", "-"), mock_port, journal).start()
        runs = []
        try:
            for _ in range(count):
                runs.append(one_kill(gateway))
                print(f"  {name}: {runs[-1]}", flush=True)
        finally:
            gateway.stop()
        answered = sum(r["answered"] for r in runs)
        lost = sum(r["lost"] for r in runs)
        ages = [r["oldest_lost_ms"] for r in runs if r["oldest_lost_ms"] is not None]
        results[name] = {
            "kills": runs,
            "answered": answered,
            "lost": lost,
            "lost_share": lost / answered if answered else None,
            "oldest_lost_ms": max(ages) if ages else None,
            "lost_older_than_bound": sum(r["lost_older_than_bound"] for r in runs),
            "duplicates": sum(r["rollup_requests"] - r["rows"] for r in runs),
        }
    return results


def cost(mock_port: int, workdir: Path, rounds: int, duration: float) -> dict[str, Any]:
    """CPU per request and loop lag, journal on and off: both gateways loaded at once in each
    round, so that whatever else the machine runs weighs on both alike."""
    from bench.__main__ import loadgen

    gateways = {
        name: Gateway(workdir / f"cost-{name.replace(' ', '-')}", mock_port, journal).start()
        for name, journal in SETTINGS.items()
    }
    cpu: dict[str, list[float]] = {name: [] for name in gateways}
    lag: dict[str, list[dict[str, Any]]] = {name: [] for name in gateways}

    def measure(name: str) -> None:
        gateway = gateways[name]
        assert gateway.proc is not None
        before, lag_before = process_cpu_seconds(gateway.proc.pid), looplag.scrape(gateway.base)
        url = f"{gateway.base}/v1/chat/completions"
        result = loadgen(url, CLIENTS, duration, False, MASTER_KEY)
        used = process_cpu_seconds(gateway.proc.pid) - before
        served = result["requests"] * (1 + 1 / duration)  # the warm-up second too
        cpu[name].append(used * 1000 / served)
        lag[name].append(looplag.late(lag_before, looplag.scrape(gateway.base)))
        print(
            f"  {name}: {result['rps']:.0f} rps, cpu/req {cpu[name][-1]:.3f} ms, "
            f"{looplag.describe(lag[name][-1])}",
            flush=True,
        )

    try:
        time.sleep(1.0)
        for _ in range(rounds):
            loads = [threading.Thread(target=measure, args=(name,)) for name in gateways]
            for load in loads:
                load.start()
            for load in loads:
                load.join()
    finally:
        for gateway in gateways.values():
            gateway.stop()
    on, off = cpu["journal on"], cpu["journal off"]
    return {
        name: {
            "cpu_ms_per_request": cpu[name],
            "median_cpu_ms_per_request": statistics.median(cpu[name]),
            "loop_lag": lag[name],
        }
        for name in gateways
    } | {"median_difference_ms": statistics.median(a - b for a, b in zip(on, off, strict=True))}


def emit_cost(rounds: int = 200, batch: int = 1000) -> dict[str, float]:
    """Microseconds of the event loop's share per record: `emit` with and without the
    journal (its thread does the rest), in this process, in rounds of `batch` records
    taken away between rounds as the threads would (a queue left to grow costs more)."""
    from perpetuo.metering.record import RequestRecord
    from perpetuo.metering.writer import UsageWriter
    from perpetuo.store.database import Database

    record = RequestRecord(id="r", workspace_id="w", created_at=0.0, endpoint="chat", status=200)
    out: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        db = Database(f"sqlite+aiosqlite:///{tmp}/x.db")
        for name, journal_dir in (("journal on", Path(tmp) / "journal"), ("journal off", None)):
            # No writer thread here: a batch size never reached keeps it from being woken.
            writer = UsageWriter(db, Path(tmp) / "spill", batch_size=10**9, journal_dir=journal_dir)
            emit, spent = writer.emit, 0.0
            waiting = writer.journal._pending if writer.journal else writer._queue
            for _ in range(rounds):
                started = time.perf_counter()
                for _ in range(batch):
                    emit(record)
                spent += time.perf_counter() - started
                waiting.clear()
            out[name] = spent / (rounds * batch) * 1e6
    return out


def thread_cost(seconds: float = 4.0) -> dict[str, float]:
    """CPU of the journal's own thread (from /proc, in nanoseconds) per record, at the default
    interval, for a gateway-like record offered at about 2,000 and 7,000 a second."""
    from perpetuo.metering.journal import Journal, JournalPolicy
    from perpetuo.metering.record import RequestRecord
    from perpetuo.metering.spill import SpillDir
    from perpetuo.observability.log_limit import EveryMinute

    attempt = {"deployment": "mock/gpt-4o-mini", "provider": "mock", "status": 200}
    record = RequestRecord(
        id="req_0123456789abcdef0123",
        workspace_id="ws_default",
        created_at=time.time(),
        endpoint="chat",
        status=200,
        key_id="key_master",
        alias="gpt-4o-mini",
        provider="mock",
        model="gpt-4o-mini",
        attempts=1,
        prompt_tokens=20,
        completion_tokens=30,
        latency_ms=3.2,
        client_ip="127.0.0.1",
        user_agent="bench",
        trace={"strategy": "priority", "attempts": [attempt]},
    )
    out: dict[str, float] = {}
    for every_2ms in (4, 14):
        with tempfile.TemporaryDirectory() as tmp:
            journal = Journal(
                Path(tmp) / "journal",
                JournalPolicy(),
                lambda *_: None,
                lambda: None,
                EveryMinute(logging.getLogger("bench")),
            )
            journal.start(SpillDir(Path(tmp) / "spill", 10**9))
            assert journal._thread is not None
            stat = f"/proc/self/task/{journal._thread.native_id}/schedstat"
            before, started, sent = _on_cpu(stat), time.perf_counter(), 0
            while time.perf_counter() - started < seconds:
                for _ in range(every_2ms):
                    journal.emit(record)
                sent += every_2ms
                time.sleep(0.002)
            used = _on_cpu(stat) - before
            journal.stop()
        out[f"{sent / seconds:.0f} records/s"] = used / sent / 1000
    return out


def _on_cpu(schedstat: str) -> int:
    with open(schedstat) as handle:
        return int(handle.read().split()[0])


def main(count: int, duration: float = 5.0, rounds: int = 5) -> bool:
    mock_port = free_port()
    mock = start_mock(mock_port)
    workdir = Path(tempfile.mkdtemp(prefix="perpetuo-hardkill-"))
    try:
        print("journal cost (JSON chat, 16 connections):", flush=True)
        costs = cost(mock_port, workdir, rounds, duration)
        emits = emit_cost()
        print(f"  emit on the event loop, us/record: {emits}", flush=True)
        threads = thread_cost()
        print(f"  the journal thread, us/record: {threads}", flush=True)
        print(f"hard kills ({count} per setting):", flush=True)
        losses = kills(mock_port, workdir, count)
    finally:
        mock.terminate()
        mock.wait(10)
    results = {
        "command": "./dev bench " + " ".join(sys.argv[1:]),
        "machine": {"cpus": os.cpu_count(), "load_average": os.getloadavg()},
        "bound_ms": BOUND_MS,
        "cost": costs,
        "emit_us_per_record": emits,
        "journal_thread_us_per_record": threads,
        "kills": losses,
    }
    out_dir = Path(ROOT) / "bench" / "results"
    out_dir.mkdir(exist_ok=True)
    (out_dir / "hardkill.json").write_text(json.dumps(results, indent=2))
    for name in SETTINGS:
        row, spend = losses[name], costs[name]
        share = f"{row['lost_share']:.2%}" if row["lost_share"] is not None else "-"
        print(
            f"{name}: lost {row['lost']} of {row['answered']} answered ({share}), "
            f"oldest lost {row['oldest_lost_ms']} ms before the kill, "
            f"{row['lost_older_than_bound']} older than {BOUND_MS:g} ms, "
            f"duplicates {row['duplicates']}; "
            f"cpu/req {spend['median_cpu_ms_per_request']:.3f} ms (median of {rounds})",
            flush=True,
        )
    print(
        f"journal CPU per request, median of the rounds' differences: "
        f"{costs['median_difference_ms']:.3f} ms",
        flush=True,
    )
    on = losses["journal on"]
    return on["lost_older_than_bound"] == 0 and on["duplicates"] == 0


if __name__ == "__main__":
    sys.exit(0 if main(int(sys.argv[1]) if len(sys.argv) > 1 else 5) else 1)
