"""The production profile against the bare one: `./dev bench --production`.

Bare: what the main table measures (one worker, the master key, the request log in SQLite,
no limits). Production: what a multi-instance install turns on: PostgreSQL and Redis (real
processes from the system binaries, started here as the test suite starts them), two worker
processes, 10,000 virtual keys each with RPM and TPM limits and a USD budget (the load uses
1,000 of them in turn, as the feature benchmark does), the workspace's own budget and
prepaid credits, request logs and rollups written to PostgreSQL, metrics on. Each cell
measures the mock directly, then the bare gateway, then the production one, in the same
run; CPU is the gateway's (every worker's), with Redis's and PostgreSQL's beside it.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
from pathlib import Path
from typing import Any

import httpx
import yaml

from bench.drain import wait_for_request_log
from bench.keystore import seed_keys
from bench.system import free_port, start_gateway_process, start_mock, tree_cpu_seconds

ROOT = Path(__file__).resolve().parent.parent
MASTER = "pk-bench-master-key"
SECRET = "bench-server-secret-0123456789-abcdefgh"
KEYS = 10_000
LOADED_KEYS = 1_000  # each used about once a second: key cache entries live 60 s
BEGIN, END = "<!-- bench:production:begin -->", "<!-- bench:production:end -->"
WORKSPACE = "ws_default"
# High enough never to refuse: the figures are the cost of checking, not of refusing.
KEY_LIMITS = {"rpm": 10_000_000, "tpm": 10_000_000_000, "budget_usd": 1_000_000.0}
WORKSPACE_SETTINGS = {
    "budget_usd": 1_000_000.0,
    "budget_period": "monthly",
    "credits_required": True,
}
CREDITS_USD = 1_000_000


def _config(mock_port: int) -> dict[str, Any]:
    provider = {"type": "openai", "api_base": f"http://127.0.0.1:{mock_port}/v1", "api_key": "sk"}
    return {
        "providers": {"mock": provider},
        "models": {"gpt-4o-mini": {"deployments": [{"provider": "mock", "model": "gpt-4o-mini"}]}},
    }


def _gateway(work: Path, name: str, mock_port: int, env: dict[str, str], args: tuple[str, ...]):
    path = work / f"{name}.yaml"
    path.write_text(yaml.safe_dump(_config(mock_port)))
    port = free_port()
    full = {
        "PERPETUO_MASTER_KEY": MASTER,
        "PERPETUO_SECRET_KEY": SECRET,
        "PERPETUO_DATA_DIR": str(work / name),
        "PERPETUO_LOG_LEVEL": "warning",
        **env,
    }
    proc = start_gateway_process(path, port, full, work / f"{name}.log", args)
    return proc, f"http://127.0.0.1:{port}"


def _prepare_workspace(base: str) -> None:
    """Budget and credits on for the workspace, through the admin API as an operator would."""
    auth = {"authorization": f"Bearer {MASTER}"}
    with httpx.Client(base_url=base, headers=auth, timeout=30) as admin:
        patch = {"settings": WORKSPACE_SETTINGS}
        admin.patch(f"/api/workspaces/{WORKSPACE}", json=patch).raise_for_status()
        admin.post(
            f"/api/workspaces/{WORKSPACE}/credits",
            json={"amount_usd": CREDITS_USD, "note": "bench"},
        ).raise_for_status()
        settings = admin.get(f"/api/workspaces/{WORKSPACE}").json()["data"]["settings"]
    for name, value in WORKSPACE_SETTINGS.items():
        if settings.get(name) != value:
            raise RuntimeError(f"workspace setting {name} is {settings.get(name)!r}")


def run(duration: float, levels: list[int], loadgen) -> dict[str, Any]:
    """`loadgen(url, concurrency, stream, key, keys_file)` runs one measurement."""
    sys.path.insert(0, str(ROOT))
    from tests.support.services import PostgresServer, RedisServer

    work = Path(tempfile.mkdtemp(prefix="perpetuo-production-"))
    mock_port = free_port()
    mock = start_mock(mock_port)
    redis, postgres = RedisServer().start(), PostgresServer().start()
    started: list[Any] = []
    try:
        db_url = postgres.create_database("perpetuo")
        bare, bare_url = _gateway(work, "bare", mock_port, {}, ())
        started.append(bare)
        prod_env = {"PERPETUO_DATABASE_URL": db_url, "PERPETUO_REDIS_URL": redis.url}
        prod, prod_url = _gateway(work, "production", mock_port, prod_env, ("--workers", "2"))
        started.append(prod)
        _prepare_workspace(prod_url)
        keys = asyncio.run(seed_keys(db_url, SECRET, KEYS, limits=KEY_LIMITS))
        keys_file = work / "keys.txt"
        keys_file.write_text("\n".join(keys[:LOADED_KEYS]))
        chat = "/v1/chat/completions"
        direct_url = f"http://127.0.0.1:{mock_port}/v1/chat/completions"
        # Every key once or more through each worker: key cache entries and budget counters
        # (seeded from PostgreSQL the first time) are in place before anything is measured.
        loadgen(prod_url + chat, 64, False, "", str(keys_file), max(20.0, duration))
        services = (redis.proc.pid, postgres.proc.pid)
        rows = []
        for stream in (False, True):
            for concurrency in levels:
                row: dict[str, Any] = {"mode": "stream" if stream else "json"}
                row["concurrency"] = concurrency
                row["direct"] = loadgen(direct_url, concurrency, stream, "", "", duration)
                for name, proc, url, auth in (
                    ("bare", bare, bare_url, (MASTER, "")),
                    ("production", prod, prod_url, ("", str(keys_file))),
                ):
                    pids = [proc.pid, *(services if proc is prod else ())]
                    before = [tree_cpu_seconds(pid) for pid in pids]
                    result = loadgen(url + chat, concurrency, stream, *auth, duration)
                    wait_for_request_log(url, MASTER)  # its rows written: part of its cost
                    used = [tree_cpu_seconds(pid) - b for pid, b in zip(pids, before, strict=True)]
                    served = result["requests"] * (1 + 1 / duration)  # warm-up second too
                    per = [u * 1000 / served if served else float("nan") for u in used]
                    row[name] = {**result, "cpu_ms": per[0]}
                    if len(per) == 3:
                        row[name]["redis_cpu_ms"], row[name]["postgres_cpu_ms"] = per[1], per[2]
                rows.append(row)
                print(line(row), flush=True)
        return {"rows": rows, "keys": KEYS, "duration_s": duration}
    finally:
        for proc in started:
            proc.terminate()
            proc.wait(60)
        mock.terminate()
        mock.wait(10)
        redis.stop()
        postgres.stop()


def line(row: dict[str, Any]) -> str:
    direct, bare, prod = row["direct"], row["bare"], row["production"]
    return (
        f"{row['mode']:6} c={row['concurrency']:<3} direct p50 {direct['p50_ms']:.3f} | "
        f"bare {bare['rps']:6.0f} rps p50 {bare['p50_ms']:.3f} p99 {bare['p99_ms']:.3f} "
        f"cpu {bare['cpu_ms']:.3f} | production {prod['rps']:6.0f} rps p50 "
        f"{prod['p50_ms']:.3f} p99 {prod['p99_ms']:.3f} cpu {prod['cpu_ms']:.3f} "
        f"(redis {prod['redis_cpu_ms']:.3f}, postgres {prod['postgres_cpu_ms']:.3f}) "
        f"errors {bare['errors']}/{prod['errors']}"
    )


def render(results: dict[str, Any]) -> list[str]:
    lines = [
        "| mode | conc. | direct p50 ms | bare rps | bare p50 ms | bare p99 ms | bare CPU ms/req "
        "| prod. rps | prod. p50 ms | prod. added p50 ms | prod. p99 ms | prod. CPU ms/req "
        "| CPU ratio prod./bare | Redis CPU ms/req | PostgreSQL CPU ms/req | errors |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in results["rows"]:
        direct, bare, prod = row["direct"], row["bare"], row["production"]
        lines.append(
            f"| {row['mode']} | {row['concurrency']} | {direct['p50_ms']:.3f} "
            f"| {bare['rps']:.0f} | {bare['p50_ms']:.3f} | {bare['p99_ms']:.3f} "
            f"| {bare['cpu_ms']:.3f} | {prod['rps']:.0f} | {prod['p50_ms']:.3f} "
            f"| {prod['p50_ms'] - direct['p50_ms']:.3f} | {prod['p99_ms']:.3f} "
            f"| {prod['cpu_ms']:.3f} | {prod['cpu_ms'] / bare['cpu_ms']:.2f} "
            f"| {prod['redis_cpu_ms']:.3f} | {prod['postgres_cpu_ms']:.3f} "
            f"| {bare['errors'] + prod['errors']} |"
        )
    return lines
