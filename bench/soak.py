"""Soak: `./dev bench --soak MINUTES` (or `python -m bench.soak MINUTES`).

Chat and streaming chat (4 connections each) at the gateway's full rate for MINUTES on
SQLite, then as long on PostgreSQL (started here from the system binaries, with its default
durability settings). Every 10 s it samples requests answered against request-log rows
written, the writer's lag, the spill directory, RSS and open descriptors. After the load it
waits for the writer to finish, stops the gateway and counts the rows in the database.
Pass: writer lag under 5 s throughout, the spill empty throughout, and one row per request
answered at the end.

Before each soak, the writer's capacity: a UsageWriter in this process while its event loop
is kept 100% busy (1 ms slices of JSON work, as a gateway at full load), offered 12,000
records a second for 20 s; rows written per second is what the writer sustains when it
must share the process with serving work.
"""

from __future__ import annotations

import argparse
import asyncio
import glob
import json
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from bench.system import (
    free_port,
    process_cpu_seconds,
    process_memory_kib,
    start_gateway_process,
    start_mock,
)

ROOT = Path(__file__).resolve().parent.parent
MASTER = "pk-bench-master-key"
SAMPLE_EVERY = 10.0
MAX_LAG = 5.0


class LocalPostgres:
    """A throw-away PostgreSQL cluster on loopback (as the `postgres` user when root)."""

    def __init__(self) -> None:
        root = Path(tempfile.mkdtemp(prefix="perpetuo-soak-pg-"))  # the postgres user's own
        self.root, self.port = root, free_port()
        self.data = root / "pgdata"
        self.user: list[str] = []
        if os.geteuid() == 0:
            pwd.getpwnam("postgres")
            shutil.chown(root, "postgres", "postgres")
            self.user = ["runuser", "-u", "postgres", "--"]
        self.proc: subprocess.Popen[bytes] | None = None

    @staticmethod
    def binary(name: str) -> str:
        found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}")) or [shutil.which(name)]
        if not found[-1]:
            raise RuntimeError(f"PostgreSQL's {name} not found: install the postgresql package")
        return str(found[-1])

    def start(self) -> str:
        initdb = [self.binary("initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust"]
        subprocess.run([*self.user, *initdb], check=True, capture_output=True)
        log = open(self.root / "postgres.log", "ab")  # noqa: SIM115 (lives with the server)
        server = [self.binary("postgres"), "-D", str(self.data), "-p", str(self.port)]
        server += ["-k", str(self.root), "-c", "listen_addresses=127.0.0.1"]
        self.proc = subprocess.Popen([*self.user, *server], stdout=log, stderr=subprocess.STDOUT)
        ready = [self.binary("pg_isready"), "-h", "127.0.0.1", "-p", str(self.port)]
        for _ in range(300):
            if subprocess.run(ready, capture_output=True).returncode == 0:
                break
            time.sleep(0.1)
        self.sql("CREATE DATABASE soak")
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/soak"

    def sql(self, statement: str) -> None:
        psql = [self.binary("psql"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres"]
        subprocess.run([*psql, "-q", "-c", statement], check=True)

    def stop(self) -> None:
        ctl = [self.binary("pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop"]
        subprocess.run([*self.user, *ctl], capture_output=True, timeout=60)
        if self.proc is not None:
            self.proc.wait(30)
        shutil.rmtree(self.root, ignore_errors=True)


def scrape(port: int) -> dict[str, float]:
    """The figures the soak follows, from the gateway's /metrics."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        text = response.read().decode()
    figures = {"answered": 0.0}
    wanted = {
        "perpetuo_usage_rows_written_total": "rows",
        "perpetuo_usage_writer_lag_seconds": "lag_s",
        "perpetuo_usage_spill_bytes": "spill_bytes",
        "perpetuo_usage_spill_files": "spill_files",
        "perpetuo_usage_queue_depth": "queue",
        "perpetuo_usage_dropped_records_total": "dropped",
    }
    for line in text.splitlines():
        name, _, value = line.rpartition(" ")
        if name.startswith("perpetuo_requests_total{") and 'endpoint="chat"' in name:
            figures["answered"] += float(value)
        elif name in wanted:
            figures[wanted[name]] = float(value)
    return figures


def loadgen(port: int, seconds: float, stream: bool) -> subprocess.Popen[str]:
    cmd = [sys.executable, "-m", "bench.loadgen", f"http://127.0.0.1:{port}/v1/chat/completions"]
    cmd += ["--concurrency", "4", "--duration", str(seconds), "--warmup", "0", "--key", MASTER]
    if stream:
        cmd.append("--stream")
    return subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, text=True)


async def _count_and_size(url: str) -> tuple[int, int]:
    """Rows in request_logs and the bytes they take (table, indexes, partitions)."""
    from sqlalchemy import text

    from perpetuo.store.database import Database

    db = Database(url)
    try:
        async with db.connect() as conn:
            rows = int(await conn.scalar(text("SELECT count(*) FROM request_logs")))
            if db.is_sqlite:
                size = int(
                    await conn.scalar(
                        text(
                            "SELECT sum(pgsize) FROM dbstat WHERE name = 'request_logs'"
                            " OR name LIKE '%request_logs%'"
                        )
                    )
                    or 0
                )
            else:
                size = int(
                    await conn.scalar(
                        text(
                            "SELECT coalesce(sum(pg_total_relation_size(inhrelid)), 0)"
                            " FROM pg_inherits WHERE inhparent = 'request_logs'::regclass"
                        )
                    )
                )
    finally:
        await db.dispose()
    return rows, size


async def _capacity(url: str, spill: Path, seconds: float = 20.0) -> dict[str, Any]:
    import msgspec

    from perpetuo.metering.record import RequestRecord
    from perpetuo.metering.writer import UsageWriter
    from perpetuo.store.database import Database
    from perpetuo.store.migrate import upgrade

    db = Database(url)
    await upgrade(db)
    writer = UsageWriter(db, spill)
    await writer.start()
    body = msgspec.json.encode(
        {"model": "m", "messages": [{"role": "user", "content": "hi " * 50}]}
    )
    trace = {"strategy": "default", "attempts": [{"deployment": "mock/m", "latency_ms": 1.0}]}
    emitted, started = 0, time.perf_counter()
    while (now := time.perf_counter()) - started < seconds:
        slice_end = now + 0.001
        while time.perf_counter() < slice_end:  # the loop's serving work
            msgspec.json.decode(msgspec.json.encode(msgspec.json.decode(body)))
        for _ in range(12):  # 12,000 records a second offered
            emitted += 1
            writer.emit(
                RequestRecord(
                    id=f"req_{emitted:024x}",
                    workspace_id="ws_default",
                    created_at=time.time(),
                    endpoint="chat",
                    status=200,
                    alias="gpt-4o-mini",
                    provider="mock",
                    model="m",
                    strategy="default",
                    attempts=1,
                    prompt_tokens=12,
                    completion_tokens=30,
                    latency_ms=1.5,
                    trace=trace,
                    client_ip="127.0.0.1",
                )
            )
        await asyncio.sleep(0)
    written = writer.written
    await writer.stop()
    await db.dispose()
    return {"offered_per_s": emitted / seconds, "rows_per_s": written / seconds}


def soak(engine: str, minutes: float) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix=f"perpetuo-soak-{engine}-"))
    mock_port, port = free_port(), free_port()
    mock = start_mock(mock_port)
    postgres = LocalPostgres() if engine == "postgresql" else None
    if postgres is not None:
        url = postgres.start()
    else:
        url = f"sqlite+aiosqlite:///{work / 'data' / 'perpetuo.db'}"
    if postgres is not None:
        postgres.sql("CREATE DATABASE capacity")
        capacity_url = url.replace("/soak", "/capacity")
    else:
        capacity_url = f"sqlite+aiosqlite:///{work / 'capacity.db'}"
    capacity = asyncio.run(_capacity(capacity_url, work / "capacity-spill"))
    print(engine, "writer capacity, loop saturated:", json.dumps(capacity), flush=True)
    provider = {"type": "openai", "api_base": f"http://127.0.0.1:{mock_port}/v1", "api_key": "sk"}
    model = {"deployments": [{"provider": "mock", "model": "gpt-4o-mini"}]}
    config = {"providers": {"mock": provider}, "models": {"gpt-4o-mini": model}}
    import yaml

    (work / "soak.yaml").write_text(yaml.safe_dump(config))
    env = {
        "PERPETUO_MASTER_KEY": MASTER,
        "PERPETUO_DATA_DIR": str(work / "data"),
        "PERPETUO_DATABASE_URL": url,
    }
    log_path = work / "gateway.log"
    gateway = start_gateway_process(work / "soak.yaml", port, env, log_path)
    samples: list[dict[str, Any]] = []
    seconds = minutes * 60
    try:
        cpu_before, started = process_cpu_seconds(gateway.pid), time.monotonic()
        load = [loadgen(port, seconds, stream=False), loadgen(port, seconds, stream=True)]
        while any(proc.poll() is None for proc in load):
            time.sleep(min(SAMPLE_EVERY, max(0.5, started + seconds - time.monotonic())))
            samples.append(_sample(gateway.pid, port, started))
            print(engine, json.dumps(samples[-1]), flush=True)
        loaded_s = time.monotonic() - started
        cpu_used = process_cpu_seconds(gateway.pid) - cpu_before
        results = [json.loads(proc.communicate()[0].strip().splitlines()[-1]) for proc in load]
        final = _sample(gateway.pid, port, started)
        deadline = time.monotonic() + 60  # the writer finishes what the load left behind
        while final["rows"] < final["answered"] and time.monotonic() < deadline:
            time.sleep(0.5)
            final = _sample(gateway.pid, port, started)
        drained_s = time.monotonic() - started - loaded_s
    finally:
        gateway.terminate()
        gateway.wait(60)
        mock.terminate()
        mock.wait(10)
    rows, table_bytes = asyncio.run(_count_and_size(url))
    if postgres is not None:
        postgres.stop()
    spill_left = sum(p.stat().st_size for p in (work / "data" / "spill").glob("*"))
    answered = int(final["answered"])
    outcome = {
        "engine": engine,
        "minutes": minutes,
        "writer_capacity_loop_saturated": capacity,
        "answered": answered,
        "answered_per_s": answered / loaded_s,
        "rows_in_database": rows,
        "rows_per_s_under_load": max(s["rows"] for s in samples) / samples[-1]["t"],
        "drain_after_load_s": round(drained_s, 1),
        "max_lag_s": max(s["lag_s"] for s in samples),
        "max_spill_bytes": max(s["spill_bytes"] for s in samples),
        "spill_left_bytes": spill_left,
        "gateway_cpu_ms_per_request": cpu_used * 1000 / answered if answered else None,
        "request_log_bytes_per_row": table_bytes / rows if rows else None,
        "access_log_bytes_per_request": log_path.stat().st_size / answered if answered else None,
        "rss_mib": [round(s["rss_mib"], 1) for s in samples],
        "fds": [s["fds"] for s in samples],
        "loadgen": results,
    }
    outcome["pass"] = (
        outcome["max_lag_s"] < MAX_LAG
        and outcome["max_spill_bytes"] == 0
        and spill_left == 0
        and rows == answered
    )
    shutil.rmtree(work, ignore_errors=True)
    return outcome


def _sample(pid: int, port: int, started: float) -> dict[str, Any]:
    figures = scrape(port)
    return {
        "t": round(time.monotonic() - started, 1),
        **figures,
        "rss_mib": process_memory_kib(pid)["VmRSS"] / 1024,
        "fds": len(os.listdir(f"/proc/{pid}/fd")),
    }


def main(minutes: float, engines: tuple[str, ...] = ("sqlite", "postgresql")) -> bool:
    out = ROOT / "bench" / "results"
    out.mkdir(exist_ok=True)
    outcomes = []
    for engine in engines:
        outcomes.append(soak(engine, minutes))
        (out / "soak.json").write_text(json.dumps(outcomes, indent=2))
        _summary(outcomes[-1])
    return all(o["pass"] for o in outcomes)


def _summary(o: dict[str, Any]) -> None:
    print(
        f"{o['engine']:10} {o['answered']} answered ({o['answered_per_s']:.0f}/s), "
        f"{o['rows_in_database']} rows ({o['rows_per_s_under_load']:.0f}/s under load), "
        f"max lag {o['max_lag_s']:.2f} s, max spill {o['max_spill_bytes']:.0f} B, "
        f"{o['request_log_bytes_per_row']:.0f} B/row, access log "
        f"{o['access_log_bytes_per_request']:.1f} B/request, RSS {o['rss_mib'][0]}"
        f"-{max(o['rss_mib'])} MiB, fds {min(o['fds'])}-{max(o['fds'])}: "
        f"{'PASS' if o['pass'] else 'FAIL'}; writer capacity with the loop saturated "
        f"{o['writer_capacity_loop_saturated']['rows_per_s']:.0f} rows/s",
        flush=True,
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("minutes", type=float)
    parser.add_argument("--engine", choices=("sqlite", "postgresql"), action="append")
    args = parser.parse_args()
    sys.exit(0 if main(args.minutes, tuple(args.engine or ("sqlite", "postgresql"))) else 1)
