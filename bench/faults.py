"""Faults, measured: `./dev bench --faults` (`--write-docs`: its tables into docs/performance.md).

Redis and PostgreSQL are real processes (the test suite's, tests/support/services.py) that
this run pauses (SIGSTOP), stops, or kills with kill -9 while `CONCURRENCY` clients send chat
requests through a gateway with a virtual key; the upstream is the bench mock. What it
reports, per scenario: the requests sent during the fault, their p99 and slowest latency,
the errors by status and code, and how long recovery took:

- Redis paused 10 s, fail open and fail closed (keys with RPM, TPM and a budget, the
  workspace's budget and credits on Redis; request log in SQLite): seconds from SIGCONT
  until admissions run in Redis again (open: its script calls resume; closed: the first
  answered request), and the credit ledger's charge against the request log's cost (a
  settlement applied twice would show). Redis killed and restarted empty, fail open.
- PostgreSQL stopped 60 s, and killed with kill -9 and restarted after 5 s (keys and the
  request log there): records spilled, seconds from the restart until the spill is empty,
  and rows lost (answered requests without their row) and counted twice (usage rollups).
- Upstream faults (tests/faults/upstreams.py): what a client sees, alone and with a second
  deployment to fall over to, and how long it took.
"""

from __future__ import annotations

import re
import signal
import sqlite3
import statistics
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
from tests.faults.support import (
    ADMIN,
    Load,
    answered,
    create_key,
    kill_and_restart_redis,
    kill_postgres,
    psql,
    script_calls,
)
from tests.support.gateway import GatewayProcess
from tests.support.services import PostgresServer, RedisServer

from bench.system import free_port, start_mock

ROOT = Path(__file__).resolve().parent.parent

CONCURRENCY = 8
GAP = 0.02  # seconds each client waits between requests: a steady load, not a saturating one
BEFORE, AFTER = 3.0, 6.0  # seconds of load before a fault and after it ends
REDIS_PAUSE, PG_OUTAGE, PG_KILLED = 10.0, 60.0, 5.0
KEY_LIMITS = {"rpm": 10_000_000, "tpm": 10**10, "budget_usd": 1_000_000.0, "budget_period": "daily"}
BEGIN, END = "<!-- bench:faults:begin -->", "<!-- bench:faults:end -->"


def _gateway(work: Path, mock_port: int, env: dict[str, str]) -> GatewayProcess:
    provider = {"type": "openai", "api_base": f"http://127.0.0.1:{mock_port}/v1", "api_key": "sk"}
    config = {
        "providers": {"mock": provider},
        "models": {"gpt-4o-mini": {"deployments": [{"provider": "mock", "model": "gpt-4o-mini"}]}},
    }
    full = {"PERPETUO_SECRET_KEY": "bench-secret-" + "s" * 30, "PERPETUO_LOG_LEVEL": "warning"}
    return GatewayProcess(config, work, env={**full, **env}).start(timeout=60)


def _summary(outcomes: list[Any]) -> dict[str, Any]:
    seconds = sorted(o.seconds for o in outcomes) or [0.0]
    errors = Counter(f"{o.status} {o.code or ''}".strip() for o in outcomes if o.status != 200)
    return {
        "requests": len(outcomes),
        "answered": sum(o.status == 200 for o in outcomes),
        "p99_ms": seconds[min(len(seconds) - 1, int(len(seconds) * 0.99))] * 1000,
        "max_ms": seconds[-1] * 1000,
        "over_600_ms": sum(s > 0.6 for s in seconds),  # the Redis deadline (0.5 s) and some
        "errors": dict(errors),
    }


def _metric(gateway: GatewayProcess, name: str) -> float:
    text = httpx.get(f"{gateway.url}/metrics", timeout=10).text
    found = re.search(rf"^{name}(?:{{[^}}]*}})? ([0-9.e+]+)$", text, re.MULTILINE)
    return float(found.group(1)) if found else 0.0


# -- Redis --------------------------------------------------------------------------------------


def _redis_world(work: Path, mock_port: int, redis: RedisServer, policy: str):
    env = {
        "PERPETUO_DATABASE_URL": f"sqlite+aiosqlite:///{work / 'store.db'}",
        "PERPETUO_REDIS_URL": redis.url,
        "PERPETUO_LIMITS_REDIS_FAILURE": policy,
    }
    gateway = _gateway(work, mock_port, env)
    with httpx.Client(base_url=gateway.url, headers=ADMIN, timeout=30) as admin:
        settings = {"budget_usd": 1e6, "budget_period": "monthly", "credits_required": True}
        admin.patch("/api/workspaces/ws_default", json={"settings": settings}).raise_for_status()
        grant = {"amount_usd": 1e6, "note": "bench"}
        admin.post("/api/workspaces/ws_default/credits", json=grant).raise_for_status()
    return gateway, create_key(gateway, limits=KEY_LIMITS)["key"]


def _back_on_redis(redis: RedisServer, since: float) -> float:
    """Seconds from `since` until the gateway runs scripts in Redis again (calls a paused
    Redis had queued are run at once on SIGCONT: those are let through first)."""
    time.sleep(0.3)
    base = script_calls(redis)
    deadline = time.monotonic() + 30
    while script_calls(redis) <= base and time.monotonic() < deadline:
        time.sleep(0.02)
    return time.monotonic() - since


def _books(gateway: GatewayProcess, work: Path) -> dict[str, int]:
    gateway.stop()
    with sqlite3.connect(work / "store.db") as db:
        (cost,) = db.execute("select coalesce(sum(cost_micros), 0) from request_logs").fetchone()
        (charged,) = db.execute(
            "select -coalesce(sum(amount_micros), 0) from credit_ledger where kind = 'usage'"
        ).fetchone()
    return {"metered_micros": cost, "ledger_micros": charged}


def redis_fault(work: Path, mock_port: int, policy: str, kill: bool) -> dict[str, Any]:
    redis = RedisServer().start()
    gateway, key = _redis_world(work, mock_port, redis, policy)
    try:
        load = Load(gateway.url, key, concurrency=CONCURRENCY, gap=GAP).start()
        time.sleep(BEFORE)
        assert redis.proc is not None
        start = time.monotonic()
        if kill:
            kill_and_restart_redis(redis)
        else:
            redis.proc.send_signal(signal.SIGSTOP)
            time.sleep(REDIS_PAUSE)
            redis.proc.send_signal(signal.SIGCONT)
        back = time.monotonic()
        recovery = _back_on_redis(redis, back) if policy == "open" or kill else None
        time.sleep(max(0.0, back + AFTER - time.monotonic()))
        outcomes = load.stop()
        if recovery is None:  # fail closed: until the first request answered again
            ends = [o.ended for o in answered(load.between(back, back + AFTER))]
            recovery = min(ends) - back if ends else float("nan")
        result = {
            "fault": "Redis killed, restarted empty" if kill else f"Redis paused {REDIS_PAUSE:g} s",
            "policy": policy,
            "outage_s": back - start,
            "during": _summary(load.between(start, back)),
            "all": _summary(outcomes),
            "recovery_s": recovery,
        }
        return result | _books(gateway, work)
    finally:
        gateway.stop()
        if redis.proc is not None and redis.proc.poll() is None:
            redis.proc.send_signal(signal.SIGCONT)
        redis.stop()


# -- PostgreSQL ---------------------------------------------------------------------------------


def postgres_fault(work: Path, mock_port: int, kill: bool) -> dict[str, Any]:
    postgres = PostgresServer().start()
    try:
        url = postgres.create_database("perpetuo")
        # The test server commits asynchronously; production commits survive a crash.
        postgres.sql('ALTER DATABASE "perpetuo" SET synchronous_commit = on')
        gateway = _gateway(work, mock_port, {"PERPETUO_DATABASE_URL": url})
        try:
            return _postgres_run(gateway, postgres, kill)
        finally:
            gateway.stop()
    finally:
        postgres.stop()


def _postgres_run(gateway: GatewayProcess, postgres: PostgresServer, kill: bool) -> dict[str, Any]:
    key = create_key(gateway)["key"]
    load = Load(gateway.url, key, concurrency=CONCURRENCY, gap=GAP).start()
    time.sleep(BEFORE)  # also past the change poll that announces the new key
    start = time.monotonic()
    if kill:
        kill_postgres(postgres)
        time.sleep(PG_KILLED)
    else:
        postgres.stop_server()
        time.sleep(PG_OUTAGE)
    down = time.monotonic()
    postgres.start_server()
    back = time.monotonic()
    spilled = _metric(gateway, "perpetuo_usage_spilled_records")
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and (
        _metric(gateway, "perpetuo_usage_spill_files")
        or _metric(gateway, "perpetuo_usage_spill_bytes")
    ):
        time.sleep(0.1)
    replay = time.monotonic() - back
    time.sleep(max(0.0, back + AFTER - time.monotonic()))
    outcomes = load.stop()
    ids = {o.request_id for o in answered(outcomes)}
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        rows = set(psql(postgres, "perpetuo", "select id from request_logs").split())
        if rows >= ids:
            break
        time.sleep(0.5)
    counted = psql(postgres, "perpetuo", "select sum(requests) from usage_rollups where dim='all'")
    return {
        "fault": f"PostgreSQL kill -9, restarted after {PG_KILLED:g} s"
        if kill
        else f"PostgreSQL stopped {PG_OUTAGE:g} s",
        "outage_s": back - start,
        "restart_s": back - down,
        "during": _summary(load.between(start, back)),
        "all": _summary(outcomes),
        "spilled": int(spilled),
        "replay_s": replay,
        "answered": len(ids),
        "rows_lost": len(ids - rows),
        "rows_counted_twice": int(counted or 0) - len(rows),
        "dropped": int(_metric(gateway, "perpetuo_usage_dropped_records_total")),
    }


# -- upstreams ----------------------------------------------------------------------------------


def upstream_faults(work: Path, mock_port: int) -> list[dict[str, Any]]:
    from tests.faults.upstreams import RAW_MODES, FaultyUpstream, fault_bases, fault_config
    from tests.mocks.openai_mock import OpenAIMock
    from tests.support.pki import make_pki

    raw = {mode: FaultyUpstream(mode).start() for mode in RAW_MODES}
    untrusted = OpenAIMock()
    untrusted.tls = make_pki(work / "pki", "untrusted").server_context()
    untrusted.start()
    good = {"api_base": f"http://127.0.0.1:{mock_port}/v1", "api_key": "sk"}
    bases = fault_bases(raw, f"{untrusted.url}/v1")
    gateway = GatewayProcess(fault_config(bases, good), work).start(timeout=60)
    rows = []
    try:
        with httpx.Client(base_url=gateway.url, timeout=60) as client:
            client.headers["authorization"] = ADMIN["authorization"]
            for fault in bases:
                row: dict[str, Any] = {"fault": fault}
                for lane in ("only", "over"):
                    row[lane] = _ask(client, f"{lane}-{fault}", stream=fault == "reset-mid-stream")
                rows.append(row)
    finally:
        gateway.stop()
        for server in raw.values():
            server.stop()
        untrusted.stop()
    return rows


def _ask(client: httpx.Client, model: str, stream: bool, times: int = 3) -> dict[str, Any]:
    body = {"model": model, "messages": [{"role": "user", "content": "x"}], "stream": stream}
    seconds, outcome = [], ""
    for _ in range(times):
        started = time.monotonic()
        with client.stream("POST", "/v1/chat/completions", json=body) as response:
            text = response.read().decode()
        seconds.append(time.monotonic() - started)
        if response.status_code != 200:
            outcome = f"{response.status_code} {response.json()['error']['code']}"
        elif stream and '"error"' in text:
            code = re.search(r'"code":\s*"([a-z_]+)"', text)
            outcome = f"200, stream ended by an error event ({code.group(1) if code else '?'})"
            outcome += f", {response.headers.get('x-perpetuo-attempts')} attempt"
        else:
            outcome = f"200 from {response.headers.get('x-perpetuo-provider')}"
            outcome += f", {response.headers.get('x-perpetuo-attempts')} attempts"
    return {"outcome": outcome, "median_s": statistics.median(seconds)}


# -- the run ------------------------------------------------------------------------------------


def run() -> dict[str, Any]:
    root = Path(tempfile.mkdtemp(prefix="perpetuo-faults-"))
    mock_port = free_port()
    mock = start_mock(mock_port)
    try:
        scenarios = []
        for name, work in (
            ("open", lambda w: redis_fault(w, mock_port, "open", kill=False)),
            ("closed", lambda w: redis_fault(w, mock_port, "closed", kill=False)),
            ("killed", lambda w: redis_fault(w, mock_port, "open", kill=True)),
            ("pg-stop", lambda w: postgres_fault(w, mock_port, kill=False)),
            ("pg-kill", lambda w: postgres_fault(w, mock_port, kill=True)),
        ):
            result = work(root / name)
            print(line(result), flush=True)
            scenarios.append(result)
        upstreams = upstream_faults(root / "upstreams", mock_port)
        for row in upstreams:
            print(f"{row['fault']:18} alone: {row['only']} | with a fallback: {row['over']}")
        return {"scenarios": scenarios, "upstreams": upstreams, "concurrency": CONCURRENCY}
    finally:
        mock.terminate()
        mock.wait(10)


def line(result: dict[str, Any]) -> str:
    during = result["during"]
    text = (
        f"{result['fault']} ({result.get('policy', '-')}): {during['requests']} requests during, "
        f"{during['answered']} answered, p99 {during['p99_ms']:.0f} ms, max {during['max_ms']:.0f} "
        f"ms, errors {during['errors'] or 'none'}"
    )
    if "recovery_s" in result:
        text += f"; back on Redis after {result['recovery_s']:.2f} s; ledger "
        text += f"{result['ledger_micros']} = metered {result['metered_micros']} micro-USD"
    else:
        text += f"; {result['spilled']} spilled, replayed in {result['replay_s']:.1f} s, "
        text += f"{result['rows_lost']} rows lost, {result['rows_counted_twice']} counted twice"
    return text


def _errors(errors: dict[str, int]) -> str:
    return ", ".join(f"{n}: {e}" for e, n in sorted(errors.items())) or "none"


def render(results: dict[str, Any]) -> list[str]:
    lines = [
        "| fault | policy | requests during | answered | p99 ms | max ms | over 0.6 s | errors "
        "| recovery |",
        "|---|---|---:|---:|---:|---:|---:|---|---|",
    ]
    for r in results["scenarios"]:
        d = r["during"]
        if "recovery_s" in r:
            recovery = f"back on Redis {r['recovery_s']:.2f} s after it returned; "
            recovery += f"ledger {r['ledger_micros']} µ$ = metered {r['metered_micros']} µ$"
        else:
            recovery = (
                f"{r['spilled']} rows spilled, replayed {r['replay_s']:.1f} s after the restart; "
                f"{r['answered']} answered, {r['rows_lost']} rows lost, "
                f"{r['rows_counted_twice']} counted twice"
            )
        lines.append(
            f"| {r['fault']} | {r.get('policy', '-')} | {d['requests']} | {d['answered']} "
            f"| {d['p99_ms']:.0f} | {d['max_ms']:.0f} | {d['over_600_ms']} "
            f"| {_errors(d['errors'])} | {recovery} |"
        )
    lines += [
        "",
        "| upstream fault | alone: client sees | time | with a second deployment | time |",
        "|---|---|---:|---|---:|",
    ]
    for row in results["upstreams"]:
        only, over = row["only"], row["over"]
        lines.append(
            f"| {row['fault']} | {only['outcome']} | {only['median_s'] * 1000:.0f} ms "
            f"| {over['outcome']} | {over['median_s'] * 1000:.0f} ms |"
        )
    return lines


def main(write: bool = False) -> bool:
    import json

    from bench.report import write_docs

    results = run()
    out = ROOT / "bench" / "results"
    out.mkdir(exist_ok=True)
    (out / "faults.json").write_text(json.dumps(results, indent=2))
    table = "\n".join(render(results))
    print(table)
    if write:
        write_docs(ROOT / "docs" / "performance.md", table, BEGIN, END)
    lost = sum(r.get("rows_lost", 0) + r.get("rows_counted_twice", 0) for r in results["scenarios"])
    doubled = any(r.get("ledger_micros") != r.get("metered_micros") for r in results["scenarios"])
    return lost == 0 and not doubled
