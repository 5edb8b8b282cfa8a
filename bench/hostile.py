"""Hostile upstreams against one gateway: `python -m bench.hostile`.

Starts the fast bench mock (behind the `canary` alias), the hostile mock
(tests/mocks/hostile_mock.py: 200 MB bodies, 500 MB gzip bombs, endless SSE lines) and one
gateway. Measures the gateway's peak memory under ordinary load (chat, JSON and streamed, at
16 concurrent), then under attack (4 concurrent huge bodies, 2 gzip bombs, 2 endless lines,
round after round) while a canary client calls the other alias one request at a time;
reports the canary's latency alone and during the attack.

Targets: peak RSS under attack < 2x the ordinary peak; canary p99 during the attack < 50 ms.
With two CPUs or more the attackers (the hostile mock and the attacking clients) run on
the others, as they would be other machines; the gateway, the canary's client and its
upstream share the first. The canary then measures the gateway's stalls, not the CPU the
attackers burn to produce 200 MB bodies.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx

from bench.system import (
    free_port,
    process_cpu_seconds,
    process_memory_kib,
    start_gateway_process,
    start_mock,
)

ROOT = Path(__file__).resolve().parent.parent
MASTER = "pk-bench-master-key"
MiB = 1024 * 1024
ATTACKS = {"huge-body": 4, "gzip-bomb": 2, "endless-line": 2}  # model -> concurrent clients
_CPUS = sorted(os.sched_getaffinity(0))
PINNED = len(_CPUS) >= 2
GATEWAY_CPU, OTHERS = set(_CPUS[:1]), set(_CPUS[1:])


def start_hostile(port: int, body_bytes: int, bomb_bytes: int) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [
            *(sys.executable, "-m", "tests.mocks.hostile_mock", str(port)),
            *("--body-bytes", str(body_bytes), "--bomb-bytes", str(bomb_bytes)),
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    if proc.stdout.readline().strip() != "ready":
        raise RuntimeError("hostile mock did not start")
    return proc


def config(canary_port: int, hostile_port: int) -> dict[str, Any]:
    def provider(port: int) -> dict[str, Any]:
        return {
            "type": "openai",
            "api_base": f"http://127.0.0.1:{port}/v1",
            "api_key": "sk-bench",
            "timeouts": {"total": 30},
        }

    models = {"canary": {"deployments": [{"provider": "mock", "model": "gpt-4o-mini"}]}}
    for model in ATTACKS:
        models[model] = {"deployments": [{"provider": "hostile", "model": model}]}
    return {
        # Breakers that never open keep every attack reaching the hostile upstream.
        "routing": {
            "circuit_breaker": {"consecutive_failures": 1_000_000, "min_requests": 1_000_000}
        },
        "providers": {"mock": provider(canary_port), "hostile": provider(hostile_port)},
        "models": models,
    }


def loadgen(
    url: str, concurrency: int, duration: float, stream: bool = False
) -> subprocess.Popen[str]:
    cmd = [
        *(sys.executable, "-m", "bench.loadgen", url),
        *("--concurrency", str(concurrency), "--duration", str(duration)),
        *("--warmup", "1", "--model", "canary", "--key", MASTER),
    ]
    if stream:
        cmd.append("--stream")
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, text=True)
    pin(proc.pid)
    return proc


def pin(pid: int) -> None:
    """Put every thread of `pid` on the gateway's CPU (a no-op on one CPU)."""
    if PINNED:
        for thread in os.listdir(f"/proc/{pid}/task"):
            os.sched_setaffinity(int(thread), GATEWAY_CPU)


def result_of(proc: subprocess.Popen[str]) -> dict[str, Any]:
    out, _ = proc.communicate(timeout=300)
    return json.loads(out.strip().splitlines()[-1])


async def attack(url: str, model: str, stop_at: float, outcomes: Counter[str]) -> None:
    """One attacking client: the same hostile request again and again until `stop_at`,
    reading whatever comes back (a 502, or with no caps the whole body) and dropping it."""
    body = {"model": model, "messages": [{"role": "user", "content": "hi"}]}
    if model == "endless-line":
        body["stream"] = True
    headers = {"authorization": f"Bearer {MASTER}"}
    async with httpx.AsyncClient(timeout=60) as client:
        while time.monotonic() < stop_at:
            try:
                async with client.stream("POST", url, json=body, headers=headers) as response:
                    async for _ in response.aiter_raw():
                        if time.monotonic() >= stop_at:
                            break
                    outcomes[f"{model} {response.status_code}"] += 1
            except httpx.HTTPError as exc:
                outcomes[f"{model} {type(exc).__name__}"] += 1


async def run_attacks(url: str, duration: float) -> Counter[str]:
    """Every attacking client for `duration` seconds; requests still open then are dropped
    (a stalled gateway would otherwise stretch the attack past the canary's window)."""
    outcomes: Counter[str] = Counter()
    stop_at = time.monotonic() + duration
    clients = [
        asyncio.create_task(attack(url, model, stop_at, outcomes))
        for model, count in ATTACKS.items()
        for _ in range(count)
    ]
    _, pending = await asyncio.wait(clients, timeout=duration)
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    outcomes["dropped at the end"] += len(pending)
    return outcomes


def peak_mib(pid: int) -> float:
    return process_memory_kib(pid)["VmHWM"] / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per phase")
    parser.add_argument("--body-mb", type=int, default=200)
    parser.add_argument("--bomb-mb", type=int, default=500)
    args = parser.parse_args()

    if PINNED:  # the attackers (this process, the hostile mock) keep off the gateway's CPU
        os.sched_setaffinity(0, OTHERS)
    canary_port, hostile_port, gw_port = free_port(), free_port(), free_port()
    canary = start_mock(canary_port)
    pin(canary.pid)
    hostile = start_hostile(hostile_port, args.body_mb * 1_000_000, args.bomb_mb * 1_000_000)
    work = Path(tempfile.mkdtemp(prefix="perpetuo-hostile-"))
    import yaml

    config_path = work / "hostile.yaml"
    config_path.write_text(yaml.safe_dump(config(canary_port, hostile_port)))
    env = {
        "PERPETUO_MASTER_KEY": MASTER,
        "PERPETUO_DATA_DIR": str(work / "data"),
        "PERPETUO_LOG_LEVEL": "warning",
    }
    gateway = start_gateway_process(config_path, gw_port, env, work / "gateway.log")
    pin(gateway.pid)
    url = f"http://127.0.0.1:{gw_port}/v1/chat/completions"
    rows: list[dict[str, Any]] = []
    try:
        time.sleep(1.0)
        rows.append({"phase": "idle", "peak": peak_mib(gateway.pid)})
        for stream in (False, True):  # ordinary load sets the reference peak
            result_of(loadgen(url, 16, args.duration, stream))
        rows.append({"phase": "ordinary load (c=16)", "peak": peak_mib(gateway.pid)})
        quiet = result_of(loadgen(url, 1, args.duration))
        rows.append({"phase": "canary alone (c=1)", "peak": peak_mib(gateway.pid), **quiet})
        cpu = process_cpu_seconds(gateway.pid)
        probe = loadgen(url, 1, args.duration)  # after its 1 s warm-up, it measures...
        time.sleep(0.5)
        outcomes = asyncio.run(run_attacks(url, args.duration + 1.0))  # ...inside the attack
        during = result_of(probe)
        rows.append(
            {
                "phase": "canary during attack",
                "peak": peak_mib(gateway.pid),
                **during,
                "cpu_s": process_cpu_seconds(gateway.pid) - cpu,
                "outcomes": dict(outcomes),
            }
        )
    finally:
        for proc in (gateway, canary, hostile):
            stop(proc)
    report(rows, args, PINNED)


def stop(proc: subprocess.Popen[Any]) -> None:
    """Terminate, and kill what does not stop in time (a stalled gateway may not)."""
    proc.terminate()
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)


def report(rows: list[dict[str, Any]], args: argparse.Namespace, pinned: bool) -> None:
    ordinary = rows[1]["peak"]
    where = "attackers off the gateway's CPU" if pinned else "one CPU"
    print(f"\nhostile upstreams, {args.duration:.0f} s a phase ({where})")
    print("| phase | gateway peak RSS | canary p50 | canary p99 | canary errors |")
    print("|---|---|---|---|---|")
    for row in rows:
        ratio = f" ({row['peak'] / ordinary:.2f}x ordinary)" if row is rows[-1] else ""
        p50 = f"{row['p50_ms']:.2f} ms" if "p50_ms" in row else ""
        p99 = f"{row['p99_ms']:.2f} ms" if "p99_ms" in row else ""
        errors = str(row.get("errors", ""))
        print(f"| {row['phase']} | {row['peak']:.0f} MiB{ratio} | {p50} | {p99} | {errors} |")
    attack = rows[-1]
    print("\nattack requests by outcome:", json.dumps(attack["outcomes"], sort_keys=True))
    print(f"gateway CPU during the attack phase: {attack['cpu_s']:.1f} s")
    memory_ok = attack["peak"] < 2 * ordinary
    latency_ok = attack["p99_ms"] < 50
    print(f"target peak RSS < 2x ordinary peak: {'met' if memory_ok else 'MISSED'}")
    print(f"target canary p99 < 50 ms during the attack: {'met' if latency_ok else 'MISSED'}")
    out = ROOT / "bench" / "results"
    out.mkdir(exist_ok=True)
    (out / "hostile.json").write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
