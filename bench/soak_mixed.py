"""The mixed soak: `./dev bench --soak MINUTES` (or `python -m bench.soak_mixed MINUTES`).

One gateway (request logs into SQLite, or PostgreSQL with `--engine postgresql`, metrics on)
over the bench mock upstream, serving for MINUTES a mix at 150 requests a second on 12
connections (bench/soak_traffic.py): chat, streamed chat, embeddings, cache hits (an alias
with caching on, 16 prompts repeated), guardrail redactions (an alias whose policy redacts
PII, half its prompts carrying some), failover from a deployment failing half its calls, an
alias whose only deployment always fails, and clients that leave slow streams after three
events;
beside it the soak's key is rotated every 60 s and the configuration reloaded every 45 s.

Every 10 s: the gateway's RSS and open descriptors (/proc), its event-loop tasks and open
upstream connections (the gauges), loop-lag p99 over the interval (histogram deltas),
requests answered and errors. Pass (bench/soak_analysis.py): RSS slope after warm-up within
a stated bound in MiB/hour, no growth of descriptors, tasks or upstream connections, zero
lost request-log rows (rows in the database against requests answered), unexpected errors
under 0.1%. Prints a summary, writes bench/results/soak-mixed.json and the graphs (PNG).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from bench import soak_analysis, soak_traffic
from bench.soak import LocalPostgres
from bench.system import free_port, process_memory_kib, start_gateway_process, start_mock
from perpetuo.transport import URL, HTTPClient

ROOT = Path(__file__).resolve().parent.parent
MASTER = "pk-bench-master-key"
SAMPLE_EVERY = 10.0
CONNECTIONS = 12
# Requests a second offered: steady and well under capacity, so that the samples show what
# the gateway keeps (a leak) rather than how it queues, on a machine shared with other work.
RATE = 150.0
LOGGED = ("chat", "embeddings")


def config(ports: dict[str, int], spare: bool) -> dict[str, Any]:
    def provider(port: int) -> dict[str, Any]:
        return {"type": "openai", "api_base": f"http://127.0.0.1:{port}/v1", "api_key": "sk"}

    def on(name: str, model: str = "gpt-4o-mini") -> dict[str, Any]:
        return {"provider": name, "model": model}

    models: dict[str, Any] = {
        "gpt-4o-mini": {"deployments": [on("mock")]},
        "embed": {"deployments": [on("mock", "text-embedding-3-small")]},
        "cached": {"deployments": [on("mock")], "cache": {"enabled": True}},
        "guarded": {"deployments": [on("mock")], "guardrails": {"detectors": {"pii": "redact"}}},
        "flaky": {"deployments": [on("flaky"), on("mock")]},
        "broken": {"deployments": [on("broken")]},
        "slow": {"deployments": [on("slow")]},
    }
    if spare:  # what each reload changes, so that it rebuilds the routing table
        models["spare"] = {"deployments": [on("mock")]}
    return {"providers": {n: provider(p) for n, p in ports.items()}, "models": models}


def read_metrics(text: str) -> dict[str, Any]:
    figures: dict[str, Any] = {"answered": 0.0, "server_errors": 0.0, "lag": {}}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == "perpetuo_requests_total" and s.labels.get("endpoint") in LOGGED:
                figures["answered"] += s.value
                if s.labels.get("status_class") == "5xx":
                    figures["server_errors"] += s.value
            elif s.name == "perpetuo_event_loop_lag_seconds_bucket":
                figures["lag"][float(s.labels["le"])] = s.value
            elif s.name == "perpetuo_event_loop_lag_seconds_count":
                figures["lag"][-1] = s.value
            elif s.name == "perpetuo_event_loop_tasks":
                figures["tasks"] = s.value
            elif s.name == "perpetuo_upstream_connections_open":
                figures["upstream_connections"] = s.value
            elif s.name == "perpetuo_usage_rows_written_total":
                figures["rows_written"] = s.value
    return figures


async def scrape(client: HTTPClient, port: int) -> dict[str, Any]:
    url = URL.parse(f"http://127.0.0.1:{port}/metrics")
    response = await client.request("GET", url, [], b"", soak_traffic.TIMEOUTS)
    try:
        text = (await response.read()).decode()
    finally:
        response.close()
    return await asyncio.to_thread(read_metrics, text)


class Sampler:
    def __init__(self, pid: int, port: int, traffic: soak_traffic.Traffic) -> None:
        self.pid, self.port, self.traffic = pid, port, traffic
        self.client = HTTPClient()
        self.samples: list[dict[str, Any]] = []
        self.started = time.monotonic()
        self.last: dict[str, Any] | None = None
        self.last_errors = 0

    async def sample(self, keep: bool = True) -> dict[str, Any]:
        figures = await scrape(self.client, self.port)
        now = time.monotonic() - self.started
        seen = sum(self.traffic.errors.values()) + sum(self.traffic.expected_errors.values())
        row: dict[str, Any] = {
            "t": round(now, 1),
            "rss_mib": round(process_memory_kib(self.pid)["VmRSS"] / 1024, 2),
            "fds": len(os.listdir(f"/proc/{self.pid}/fd")),
            "tasks": figures.get("tasks", 0),
            "upstream_connections": figures.get("upstream_connections", 0),
            "answered": figures["answered"],
            "rows_written": figures.get("rows_written", 0),
            "server_errors": figures["server_errors"],
            # The machine's, to read loop lag by: on a shared host, lag is also CPU not given.
            "load_1m": round(os.getloadavg()[0], 2),
        }
        if self.last is not None and keep:
            span = now - self.last["t"]
            row["answered_per_s"] = round((row["answered"] - self.last["answered"]) / span, 1)
            row["errors_per_s"] = round((seen - self.last_errors) / span, 2)
            row.update(soak_analysis.interval_lag(self.last["lag"], figures["lag"]))
            self.samples.append(row)
        self.last, self.last_errors = {**row, "lag": figures["lag"]}, seen
        return row

    async def run(self, deadline: float) -> None:
        await self.sample()
        while time.monotonic() < deadline:
            await asyncio.sleep(min(SAMPLE_EVERY, max(0.1, deadline - time.monotonic())))
            row = await self.sample()
            print("soak", json.dumps(row), flush=True)


async def drive(
    seconds: float, rate: float, port: int, pid: int, slow_port: int, reload: Any
) -> dict[str, Any]:
    slow = await soak_traffic.slow_upstream(slow_port)
    base = f"http://127.0.0.1:{port}"
    key, key_id = await soak_traffic.create_key(base, MASTER)
    traffic = soak_traffic.Traffic(base, MASTER, key, key_id)
    sampler = Sampler(pid, port, traffic)
    deadline = time.monotonic() + seconds
    await asyncio.gather(
        sampler.run(deadline),
        traffic.control(deadline, reload),
        *(traffic.worker(deadline, CONNECTIONS / rate) for _ in range(CONNECTIONS)),
    )
    await asyncio.sleep(1)  # the last requests' records reach the writer's queue
    final = await sampler.sample(keep=False)  # after the load: not a sample of it
    drain_until = time.monotonic() + 120  # the writer catches up with what the load left
    while final["rows_written"] < final["answered"] and time.monotonic() < drain_until:
        await asyncio.sleep(1)
        final = await scrape(sampler.client, port)
    for client in (traffic.client, sampler.client):
        await client.aclose()
    slow.close()
    return {"samples": sampler.samples, "answered": int(final["answered"]), **traffic.totals()}


async def count_rows(url: str) -> int:
    from sqlalchemy import text

    from perpetuo.store.database import Database

    db = Database(url)
    try:
        async with db.connect() as conn:
            query = "SELECT count(*) FROM request_logs WHERE endpoint IN ('chat', 'embeddings')"
            return int(await conn.scalar(text(query)))
    finally:
        await db.dispose()


def run(minutes: float, rate: float, engine: str = "sqlite") -> dict[str, Any]:
    import yaml

    work = Path(tempfile.mkdtemp(prefix="perpetuo-soak-mixed-"))
    ports = {name: free_port() for name in ("mock", "flaky", "broken", "slow")}
    mocks = [start_mock(ports["mock"]), start_mock(ports["flaky"], 0.5)]
    mocks.append(start_mock(ports["broken"], 1.0))
    postgres = LocalPostgres() if engine == "postgresql" else None
    url = postgres.start() if postgres else f"sqlite+aiosqlite:///{work / 'data' / 'perpetuo.db'}"
    path, port = work / "soak.yaml", free_port()
    reloads = [0]

    def reload() -> None:
        reloads[0] += 1
        path.write_text(yaml.safe_dump(config(ports, spare=reloads[0] % 2 == 1)))

    path.write_text(yaml.safe_dump(config(ports, spare=False)))
    env = {
        "PERPETUO_MASTER_KEY": MASTER,
        "PERPETUO_DATA_DIR": str(work / "data"),
        "PERPETUO_DATABASE_URL": url,
        "PERPETUO_LOG_LEVEL": "warning",
    }
    gateway = start_gateway_process(path, port, env, work / "gateway.log")
    try:
        outcome = asyncio.run(drive(minutes * 60, rate, port, gateway.pid, ports["slow"], reload))
    finally:
        gateway.terminate()
        gateway.wait(60)
        for mock in mocks:
            mock.terminate()
            mock.wait(10)
    outcome["rows"] = asyncio.run(count_rows(url))
    if postgres is not None:
        postgres.stop()
    outcome.update(engine=engine, minutes=minutes, rate=rate)
    outcome["gateway_log_tail"] = (work / "gateway.log").read_text()[-2000:]
    shutil.rmtree(work, ignore_errors=True)
    return outcome


def main(minutes: float, graphs: str = "", engine: str = "sqlite", rate: float = RATE) -> bool:
    outcome = run(minutes, rate, engine)
    samples = outcome["samples"]
    warmup_s = min(300.0, minutes * 60 / 5)
    checks = soak_analysis.verdict(samples, warmup_s, outcome)
    outcome.update(
        warmup_s=warmup_s, checks=checks, command="./dev bench " + " ".join(sys.argv[1:])
    )
    out = ROOT / "bench" / "results"
    out.mkdir(exist_ok=True)
    (out / "soak-mixed.json").write_text(json.dumps(outcome, indent=2))
    pngs = soak_analysis.plot(samples, warmup_s, checks, Path(graphs) if graphs else out)
    summary(outcome, checks, pngs)
    return checks["pass"]


def summary(o: dict[str, Any], c: dict[str, Any], pngs: list[Path]) -> None:
    loaded = o["samples"][-1]["t"] if o["samples"] else 1
    print(
        f"\nmixed soak, {o['minutes']:g} min on {o['engine']}: {o['sent']} requests sent "
        f"({o['answered'] / loaded:.0f}/s answered), {o['events']}\n"
        f"  by scenario {o['sent_by_scenario']}\n"
        f"  expected errors {o['expected_errors']}, unexpected {o['unexpected_by_scenario']}"
        f" ({c['unexpected_error_share']:.4%}): {'PASS' if c['errors_pass'] else 'FAIL'}\n"
        f"  RSS {c['rss_mib_per_hour']:+.2f} MiB/hour after {o['warmup_s']:.0f} s of warm-up "
        f"(bound ±{soak_analysis.MAX_RSS_MIB_PER_HOUR:g}): "
        f"{'PASS' if c['rss_pass'] else 'FAIL'}",
        flush=True,
    )
    for name, limit in soak_analysis.MAX_GROWTH.items():
        print(
            f"  {name}: {c[f'{name}_range'][0]:.0f}-{c[f'{name}_range'][1]:.0f}, fitted growth "
            f"{c[f'{name}_growth']:+.1f} (bound {limit:g}): "
            f"{'PASS' if c[f'{name}_pass'] else 'FAIL'}",
            flush=True,
        )
    print(
        f"  request-log rows {o['rows']} for {o['answered']} answered, lost {c['lost_rows']}: "
        f"{'PASS' if c['rows_pass'] else 'FAIL'}\n"
        f"  loop lag p99 per 10 s: median {c['lag_p99_ms_median']} ms, max "
        f"{c['lag_p99_ms_max']} ms\n  graphs: {', '.join(str(p) for p in pngs)}\n"
        f"  {'PASS' if c['pass'] else 'FAIL'}",
        flush=True,
    )
    for line in o["error_samples"][:5]:
        print("  unexpected:", line, flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("minutes", type=float)
    parser.add_argument("--graphs", default="", help="directory for the PNGs (bench/results)")
    parser.add_argument("--engine", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--rate", type=float, default=RATE, help="requests a second offered")
    args = parser.parse_args()
    sys.exit(0 if main(args.minutes, args.graphs, args.engine, args.rate) else 1)
