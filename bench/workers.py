"""`python -m bench.workers`: throughput and CPU per request of the bare gateway with one and
with two worker processes, the load generator and the mock pinned to the last CPU.

On a machine with more cores than workers plus one, every worker gets a core of its own and
the ratio of throughputs is the scaling; on 2 cores the second worker shares its core with the
load, so the ratio is a lower bound, and CPU per request (summed over the server's processes)
says whether a second worker costs anything per request. Redis is started by the bench (more
than one worker needs it); the gateway uses the master key, as the main table's does.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

import yaml

from bench.system import free_port, start_gateway_process, start_mock, tree_cpu_seconds

ROOT = Path(__file__).resolve().parent.parent
MASTER = "pk-bench-master-key"


def _pin(pid: int, cpus: set[int]) -> None:
    """Pin a process and its threads (a server's workers are pinned one by one)."""
    for task in os.listdir(f"/proc/{pid}/task"):
        os.sched_setaffinity(int(task), cpus)


def _children(pid: int) -> list[int]:
    found = []
    for entry in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{entry}/stat") as handle:
                if int(handle.read().rsplit(")", 1)[1].split()[1]) == pid:
                    found.append(int(entry))
        except OSError:
            continue
    return found


def measure(workers: int, duration: float, concurrency: int, stream: bool) -> dict[str, Any]:
    sys.path.insert(0, str(ROOT))
    from tests.support.services import RedisServer

    from bench.__main__ import loadgen

    cpus = sorted(os.sched_getaffinity(0))
    load_cpu, server_cpus = {cpus[-1]}, set(cpus[:-1]) or set(cpus)
    if workers > 1:
        server_cpus = set(cpus)  # each worker may run anywhere: the scheduler spreads them
    work = Path(tempfile.mkdtemp(prefix="perpetuo-workers-"))
    redis = RedisServer().start()
    mock_port = free_port()
    mock = start_mock(mock_port)
    _pin(mock.pid, load_cpu)
    os.sched_setaffinity(0, load_cpu)  # the load generator inherits it
    mock_base = f"http://127.0.0.1:{mock_port}/v1"
    config = {
        "providers": {"mock": {"type": "openai", "api_base": mock_base, "api_key": "sk"}},
        "models": {"gpt-4o-mini": {"deployments": [{"provider": "mock", "model": "gpt-4o-mini"}]}},
    }
    (work / "gw.yaml").write_text(yaml.safe_dump(config))
    port = free_port()
    env = {
        "PERPETUO_MASTER_KEY": MASTER,
        "PERPETUO_DATA_DIR": str(work / "data"),
        "PERPETUO_LOG_LEVEL": "warning",
        "PERPETUO_REDIS_URL": redis.url,
    }
    args = ("--workers", str(workers)) if workers > 1 else ()
    gateway = start_gateway_process(work / "gw.yaml", port, env, work / "gw.log", args)
    try:
        for pid in [gateway.pid, *_children(gateway.pid)]:
            _pin(pid, server_cpus)
        url = f"http://127.0.0.1:{port}/v1/chat/completions"
        loadgen(url, concurrency, 2, stream, MASTER)  # warm every worker's connections
        before = tree_cpu_seconds(gateway.pid)
        result = loadgen(url, concurrency, duration, stream, MASTER)
        used = tree_cpu_seconds(gateway.pid) - before
        served = result["requests"] * (1 + 1 / duration)  # the load generator's warm-up too
        return {
            "workers": workers,
            "mode": "stream" if stream else "json",
            "concurrency": concurrency,
            "rps": result["rps"],
            "p50_ms": result["p50_ms"],
            "cpu_ms": used * 1000 / served if served else None,
            "errors": result["errors"],
            "server_cpus": sorted(server_cpus),
            "load_cpu": sorted(load_cpu),
        }
    finally:
        gateway.terminate()
        gateway.wait(timeout=30)
        mock.terminate()
        redis.stop()
        os.sched_setaffinity(0, set(cpus))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=1, help="rounds of A B B A")
    args = parser.parse_args()
    run(args.duration, args.concurrency, args.rounds)


def run(duration: float, concurrency: int = 64, rounds: int = 1) -> list[dict[str, Any]]:
    rows = []
    for _ in range(rounds):
        for workers in (1, 2, 2, 1):  # A B B A: drift in the machine's speed favours neither
            for stream in (False, True):
                row = measure(workers, duration, concurrency, stream)
                rows.append(row)
                print(json.dumps(row), flush=True)
    out = ROOT / "bench" / "results"
    out.mkdir(exist_ok=True)
    (out / "workers.json").write_text(json.dumps(rows, indent=2))
    for mode in ("json", "stream"):
        one = [r for r in rows if r["mode"] == mode and r["workers"] == 1]
        two = [r for r in rows if r["mode"] == mode and r["workers"] == 2]
        rps1, rps2 = (sum(r["rps"] for r in g) / len(g) for g in (one, two))
        cpu1, cpu2 = (sum(r["cpu_ms"] for r in g) / len(g) for g in (one, two))
        print(
            f"{mode}: 1 worker {rps1:.0f} rps {cpu1:.3f} CPU ms/req; 2 workers {rps2:.0f} rps "
            f"{cpu2:.3f} CPU ms/req; throughput x{rps2 / rps1:.2f}, "
            f"CPU per request x{cpu2 / cpu1:.2f}"
        )
    return rows


if __name__ == "__main__":
    main()
