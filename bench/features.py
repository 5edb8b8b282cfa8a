"""Feature costs, each variant in its own gateway process, measured back to back:
`python -m bench.features` (or `./dev bench --features`).

- master key vs virtual keys with 10,000 keys stored (the load cycles through 1,000 of them)
- limits and budgets on (memory backend, then Redis) vs off
- metrics off, and tracing on (OTLP export), vs the default (metrics on, tracing off)
plus the metrics scrape time with 100 aliases and the request-log writer's sustained rate
into PostgreSQL. Ratios are against the `virtual key` row of the same run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.keystore import seed_keys
from bench.system import (
    free_port,
    mock_config,
    process_cpu_seconds,
    start_gateway_process,
    start_mock,
)

ROOT = Path(__file__).resolve().parent.parent
MASTER = "pk-bench-master-key"
SECRET = "bench-server-secret-0123456789-abcdefgh"
LIMITS = {
    "rpm": 10_000_000,
    "tpm": 10_000_000_000,
    "budget_usd": 1_000_000.0,
    "budget_period": "monthly",
    "max_parallel": 10_000,
}


def gateway(
    config_path: Path, data_dir: Path, port: int, env: dict[str, str]
) -> subprocess.Popen[bytes]:
    full = {
        "PERPETUO_MASTER_KEY": MASTER,
        "PERPETUO_SECRET_KEY": SECRET,
        "PERPETUO_DATA_DIR": str(data_dir),
        **env,
    }
    return start_gateway_process(config_path, port, full, data_dir / "gateway.log")


def load(
    url: str, concurrency: int, duration: float, key: str = "", keys_file: str = ""
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
    ]
    cmd += ["--keys-file", keys_file] if keys_file else ["--key", key]
    out = subprocess.run(
        cmd, cwd=ROOT, capture_output=True, text=True, check=True, timeout=duration + 120
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def measure(port: int, pid: int, duration: float, **auth: str) -> dict[str, Any]:
    url = f"http://127.0.0.1:{port}/v1/chat/completions"
    row: dict[str, Any] = {}
    for concurrency in (1, 16):
        before = process_cpu_seconds(pid)
        result = load(url, concurrency, duration, **auth)
        served = result["requests"] * (1 + 1 / duration)
        row[concurrency] = {**result, "cpu_ms": (process_cpu_seconds(pid) - before) * 1000 / served}
    return row


def run_variants(duration: float, redis_url: str) -> list[tuple[str, dict[str, Any]]]:
    mock_port = free_port()
    mock = start_mock(mock_port)
    work = Path(tempfile.mkdtemp(prefix="perpetuo-features-"))
    import yaml

    config = mock_config(mock_port)
    config_path = work / "bench.yaml"
    config_path.write_text(yaml.safe_dump(config))
    data = work / "data"
    data.mkdir()
    # Prepare the database once: schema, 10,000 plain keys and 1,000 with limits.
    port = free_port()
    proc = gateway(config_path, data, port, {})
    proc.terminate()
    proc.wait(30)
    db_url = f"sqlite+aiosqlite:///{data / 'perpetuo.db'}"
    plain = asyncio.run(seed_keys(db_url, SECRET, 10_000, limits=None))
    limited = asyncio.run(seed_keys(db_url, SECRET, 1_000, limits=LIMITS))
    plain_file, limited_file = work / "plain.keys", work / "limited.keys"
    plain_file.write_text("\n".join(plain[:1000]))
    limited_file.write_text("\n".join(limited))
    otlp = f"http://127.0.0.1:{mock_port}"  # any 200 will do as a collector here
    variants = [
        ("master key", {}, {"key": MASTER}),
        ("virtual key (10,000 stored)", {}, {"keys_file": str(plain_file)}),
        ("+ limits & budget (memory)", {}, {"keys_file": str(limited_file)}),
        (
            "+ limits & budget (Redis)",
            {"PERPETUO_REDIS_URL": redis_url},
            {"keys_file": str(limited_file)},
        ),
        ("metrics off", {"PERPETUO_METRICS_ENABLED": "false"}, {"keys_file": str(plain_file)}),
        ("tracing on (OTLP)", {"PERPETUO_OTLP_ENDPOINT": otlp}, {"keys_file": str(plain_file)}),
    ]
    rows = []
    try:
        for name, env, auth in variants:
            port = free_port()
            proc = gateway(config_path, data, port, env)
            try:
                rows.append((name, measure(port, proc.pid, duration, **auth)))
            finally:
                stopping = time.monotonic()
                proc.terminate()
                proc.wait(90)
                stopped_s = time.monotonic() - stopping
            one, sixteen = rows[-1][1][1], rows[-1][1][16]
            print(
                f"{name:32} c=1 {one['p50_ms']:.3f} ms p50, "
                f"c=16 {sixteen['rps']:.0f} rps, {sixteen['cpu_ms']:.3f} ms cpu/req, "
                f"stopped in {stopped_s:.1f} s",
                flush=True,
            )
    finally:
        mock.terminate()
        mock.wait(10)
    return rows


def table(rows: list[tuple[str, dict[str, Any]]]) -> str:
    base = dict(rows)["virtual key (10,000 stored)"]
    lines = [
        "| variant | c=1 p50 ms | ratio | c=16 rps | ratio | c=16 CPU ms/req | ratio | errors |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, row in rows:
        one, many = row[1], row[16]
        lines.append(
            f"| {name} | {one['p50_ms']:.3f} | {one['p50_ms'] / base[1]['p50_ms']:.2f} "
            f"| {many['rps']:.0f} | {many['rps'] / base[16]['rps']:.2f} | {many['cpu_ms']:.3f} "
            f"| {many['cpu_ms'] / base[16]['cpu_ms']:.2f} | {one['errors'] + many['errors']} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--duration", type=float, default=4.0)
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    from tests.support.services import RedisServer

    redis = RedisServer().start()
    try:
        rows = run_variants(args.duration, redis.url)
    finally:
        redis.stop()
    print(table(rows))
    from bench.extras import scrape_with_100_aliases, writer_rate

    print(f"metrics scrape with 100 aliases: {scrape_with_100_aliases():.1f} ms (p50 of 20)")
    print(f"request-log writer into PostgreSQL: {writer_rate():,.0f} records/s sustained")


if __name__ == "__main__":
    main()
