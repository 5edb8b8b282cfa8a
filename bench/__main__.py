"""Run the benchmark: `./dev bench` (or `python -m bench`).

Starts a fast mock upstream, the gateway (one worker, key auth on) and a load generator on
loopback; measures the mock called directly and through the gateway in the same run, for
non-streaming and streaming chat at several concurrency levels; reports ratios, gateway
CPU per request, idle and peak memory, and start-up time to ready. Then the routing
scenarios (bench/routing.py): a 3-deployment alias against the 1-deployment one, and
failover from an upstream failing 30% of requests.

`--dialects` adds Responses and Messages clients, pass-through and translated, to every
(mode, concurrency) cell, with chat measured again after them (bench/dialects.py); it makes
the run about four times longer (`--concurrency 16 --duration 3` for a quick look).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import dialects, looplag, routing, startup
from bench.drain import wait_for_request_log
from bench.report import render_markdown, write_docs
from bench.system import (
    free_port,
    mock_config,
    process_cpu_seconds,
    process_memory_kib,
    start_gateway_process,
    start_mock,
)

ROOT = Path(__file__).resolve().parent.parent
MASTER_KEY = "pk-bench-master-key"


def start_gateway(
    config: dict[str, Any], workdir: Path, port: int
) -> tuple[subprocess.Popen[bytes], float]:
    import yaml

    config_path = workdir / "bench.yaml"
    config_path.write_text(yaml.safe_dump(config))
    env = {
        "PERPETUO_MASTER_KEY": MASTER_KEY,
        "PERPETUO_DATA_DIR": str(workdir / "data"),
        "PERPETUO_LOG_LEVEL": "warning",
    }
    started = time.perf_counter()
    proc = start_gateway_process(config_path, port, env, workdir / "gateway.log")
    return proc, time.perf_counter() - started


def loadgen(
    url: str,
    concurrency: int,
    duration: float,
    stream: bool,
    key: str,
    model: str = "gpt-4o-mini",
    dialect: str = "chat",
    keys_file: str = "",
) -> dict[str, Any]:
    cmd = [
        sys.executable,
        "-m",
        "bench.loadgen",
        url,
        "--concurrency",
        str(concurrency),
        "--duration",
        str(duration),
        "--warmup",
        "1",
        "--model",
        model,
        "--dialect",
        dialect,
    ]
    if stream:
        cmd.append("--stream")
    if key:
        cmd += ["--key", key]
    if keys_file:
        cmd += ["--keys-file", keys_file]
    out = subprocess.run(
        cmd, cwd=ROOT, capture_output=True, text=True, check=True, timeout=duration + 120
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def run_production(duration: float, levels: list[int], write: bool) -> None:
    from bench import production

    def measure(
        url: str, concurrency: int, stream: bool, key: str, keys_file: str, seconds: float
    ) -> dict[str, Any]:
        return loadgen(url, concurrency, seconds, stream, key, keys_file=keys_file)

    results = production.run(duration, levels, measure)
    results["command"] = "./dev bench " + " ".join(sys.argv[1:])
    out_dir = ROOT / "bench" / "results"
    out_dir.mkdir(exist_ok=True)
    (out_dir / "production.json").write_text(json.dumps(results, indent=2))
    table = "\n".join(production.render(results))
    print(table)
    if write:
        write_docs(ROOT / "docs" / "performance.md", table, production.BEGIN, production.END)


def run_against(ref: str, levels: list[int], duration: float, rounds: int) -> None:
    from bench import baseline

    def measure(url: str, concurrency: int, seconds: float, stream: bool, key: str) -> Any:
        return loadgen(url, concurrency, seconds, stream, key)

    results = baseline.run(ref, levels, duration, rounds, measure)
    out_dir = ROOT / "bench" / "results"
    out_dir.mkdir(exist_ok=True)
    (out_dir / "against.json").write_text(json.dumps(results, indent=2))
    print("\n".join(baseline.render(results)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--duration", type=float, default=5.0, help="seconds measured per scenario")
    parser.add_argument("--concurrency", default="1,16,64")
    parser.add_argument("--write-docs", action="store_true", help="update docs/performance.md")
    parser.add_argument(
        "--dialects", action="store_true", help="also Responses and Messages, on both lanes"
    )
    parser.add_argument(
        "--soak",
        type=float,
        metavar="MINUTES",
        help="instead: the mixed-traffic soak (bench/soak_mixed.py)",
    )
    parser.add_argument(
        "--soak-graphs", default="", metavar="DIR", help="with --soak: where its PNGs go"
    )
    parser.add_argument(
        "--request-log-soak",
        action="store_true",
        help="with --soak: the request-log soak instead (bench/soak.py)",
    )
    parser.add_argument(
        "--bedrock", action="store_true", help="instead: Bedrock's costs (bench/bedrock.py)"
    )
    parser.add_argument(
        "--production",
        action="store_true",
        help="instead: the production profile against the bare one (bench/production.py)",
    )
    parser.add_argument(
        "--no-routing", action="store_true", help="skip the routing scenarios (tail-latency runs)"
    )
    parser.add_argument(
        "--startup-rounds",
        type=int,
        default=5,
        metavar="N",
        help="starts measured on a fresh database and on one at head, each (0: skip)",
    )
    parser.add_argument(
        "--hard-kill",
        type=int,
        metavar="KILLS",
        help="instead: request-log records a SIGKILL loses, journal on and off (bench/hardkill.py)",
    )
    parser.add_argument(
        "--faults",
        action="store_true",
        help="instead: Redis, PostgreSQL and upstream faults under load (bench/faults.py)",
    )
    parser.add_argument(
        "--against",
        metavar="REF",
        help="instead: this tree against an earlier commit, side by side (bench/baseline.py)",
    )
    parser.add_argument(
        "--rounds", type=int, default=3, metavar="N", help="with --against: rounds (default 3)"
    )
    parser.add_argument(
        "--workers-scaling",
        action="store_true",
        help="instead: one worker against two, load pinned to the last CPU (bench/workers.py)",
    )
    args = parser.parse_args()
    if args.workers_scaling:
        from bench import workers

        workers.run(args.duration)
        return
    if args.faults:
        from bench import faults

        sys.exit(0 if faults.main(args.write_docs) else 1)
    if args.hard_kill:
        from bench import hardkill

        sys.exit(0 if hardkill.main(args.hard_kill, args.duration) else 1)
    if args.soak and args.request_log_soak:
        from bench import soak

        sys.exit(0 if soak.main(args.soak) else 1)
    if args.soak:
        from bench import soak_mixed

        sys.exit(0 if soak_mixed.main(args.soak, args.soak_graphs) else 1)
    levels = [int(c) for c in args.concurrency.split(",")]
    if args.against:
        run_against(args.against, levels, args.duration, args.rounds)
        return
    if args.production:
        run_production(args.duration, levels, args.write_docs)
        return
    if args.bedrock:
        from bench import bedrock

        bedrock.run(args.duration, levels)
        return

    mock_port, gw_port, flaky_port = free_port(), free_port(), free_port()
    mock = start_mock(mock_port)
    flaky = start_mock(flaky_port, routing.FAIL_RATE)
    workdir = Path(tempfile.mkdtemp(prefix="perpetuo-bench-"))
    config = mock_config(mock_port)
    extra = routing.routing_config(mock_port, flaky_port)
    config["routing"] = extra["routing"]
    config["providers"].update(extra["providers"])
    config["models"].update(extra["models"])
    if args.dialects:
        extra = dialects.config(mock_port)
        config["providers"].update(extra["providers"])
        config["models"].update(extra["models"])
    starts = startup.measure(start_gateway, config, args.startup_rounds)
    if starts is not None:
        print(startup.describe(starts), flush=True)
    gateway, startup_s = start_gateway(config, workdir, gw_port)
    try:
        time.sleep(1.0)
        idle_rss = process_memory_kib(gateway.pid)["VmRSS"]
        direct_url = f"http://127.0.0.1:{mock_port}/v1/chat/completions"
        gateway_base = f"http://127.0.0.1:{gw_port}"
        gateway_url = f"{gateway_base}/v1/chat/completions"
        bases = (f"http://127.0.0.1:{mock_port}/v1", f"http://127.0.0.1:{gw_port}/v1")
        if args.dialects:
            dialects.check(bases[1], MASTER_KEY)
        rows, dialect_rows, chat_cpu = [], [], {}

        def dialect_loadgen(
            url: str, c: int, stream: bool, key: str, alias: str, d: str
        ) -> dict[str, Any]:
            return loadgen(url, c, args.duration, stream, key, alias, d)

        def chat_cpu_per_request(stream: bool, concurrency: int) -> float | None:
            cpu_before = process_cpu_seconds(gateway.pid)
            via = loadgen(gateway_url, concurrency, args.duration, stream, MASTER_KEY)
            wait_for_request_log(gateway_base, MASTER_KEY)
            served = via["requests"] * (1 + 1 / args.duration)
            used = process_cpu_seconds(gateway.pid) - cpu_before
            return used * 1000 / served if served else None

        for stream in (False, True):
            for concurrency in levels:
                direct = loadgen(direct_url, concurrency, args.duration, stream, "")
                lag_before = looplag.scrape(gateway_base)
                cpu_before = process_cpu_seconds(gateway.pid)
                via = loadgen(gateway_url, concurrency, args.duration, stream, MASTER_KEY)
                lag = looplag.late(lag_before, looplag.scrape(gateway_base))
                catch_up = wait_for_request_log(gateway_base, MASTER_KEY)
                cpu_used = process_cpu_seconds(gateway.pid) - cpu_before
                # The load generator's warm-up second is served too: count it in.
                served = via["requests"] * (1 + 1 / args.duration)
                rows.append(
                    {
                        "mode": "stream" if stream else "json",
                        "concurrency": concurrency,
                        "direct": direct,
                        "gateway": via,
                        "gateway_cpu_ms_per_request": cpu_used * 1000 / served if served else None,
                        "loop_lag": lag,
                        "request_log_catch_up_s": catch_up,
                    }
                )
                cpu = rows[-1]["gateway_cpu_ms_per_request"]
                print(
                    f"{rows[-1]['mode']:6} c={concurrency:<3} "
                    f"direct {direct['rps']:8.0f} rps p50 {direct['p50_ms']:.3f} ms | "
                    f"gateway {via['rps']:8.0f} rps p50 {via['p50_ms']:.3f} ms "
                    f"p99 {via['p99_ms']:.3f} ms (direct p99 {direct['p99_ms']:.3f}) "
                    f"errors {via['errors']} cpu/req {cpu:.3f} ms (request log caught up "
                    f"{catch_up:.1f} s after); {looplag.describe(lag)}",
                    flush=True,
                )
                if not args.dialects:
                    continue
                cell = dialects.run_cell(
                    gateway.pid,
                    stream,
                    concurrency,
                    bases,
                    MASTER_KEY,
                    args.duration,
                    dialect_loadgen,
                )
                after = chat_cpu_per_request(stream, concurrency)
                chat_cpu[(rows[-1]["mode"], concurrency)] = (cpu + after) / 2 if after else cpu
                for row in cell:
                    print(
                        f"  {row['scenario']:24} {row['gateway']['rps']:8.0f} rps "
                        f"p50 {row['gateway']['p50_ms']:.3f} ms errors {row['gateway']['errors']} "
                        f"cpu/req {row['gateway_cpu_ms_per_request']:.3f} ms",
                        flush=True,
                    )
                print(f"  chat again cpu/req {after or 0:.3f} ms", flush=True)
                dialect_rows += cell
        routing_rows = []
        if not args.no_routing:
            routing_rows = routing.run(
                gateway.pid,
                args.duration,
                lambda alias, c: loadgen(gateway_url, c, args.duration, False, MASTER_KEY, alias),
            )
        memory = process_memory_kib(gateway.pid)
    finally:
        gateway.terminate()
        gateway.wait(30)
        for upstream in (mock, flaky):
            upstream.terminate()
            upstream.wait(10)
    overhead = {} if args.no_routing else routing.router_overhead()
    print("router overhead, us/request:", overhead, flush=True)
    results = {
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "command": "./dev bench " + " ".join(sys.argv[1:]),
        "startup_to_ready_s": startup_s,
        "startup": starts,
        "idle_rss_mib": starts["idle_rss_mib"] if starts else idle_rss / 1024,
        "peak_rss_mib": memory["VmHWM"] / 1024,
        "duration_s": args.duration,
        "rows": rows,
        "dialect_rows": dialect_rows,
        "chat_cpu_ms_per_request": [
            {"mode": m, "concurrency": c, "cpu_ms": v} for (m, c), v in chat_cpu.items()
        ],
        "routing_rows": routing_rows,
        "router_overhead_us": overhead,
    }
    out_dir = ROOT / "bench" / "results"
    out_dir.mkdir(exist_ok=True)
    (out_dir / "latest.json").write_text(json.dumps(results, indent=2))
    table = render_markdown(results)
    print(table)
    if args.write_docs:
        write_docs(ROOT / "docs" / "performance.md", table)


if __name__ == "__main__":
    main()
