"""Dashboard server time with a large request log: `python -m bench.dashboard`.

Fills a SQLite database with ROWS request-log rows (default 1,000,000) spread over the last
30 days, with their hourly rollups, for one busy workspace (plus a second one, so every query
must pick its workspace out), then renders every dashboard page in-process through the real
ASGI application (httpx's ASGITransport: no network, no browser) and reports each page's
server time: the median and the worst of REPEAT renders after one warm-up.

    .venv/bin/python -m bench.dashboard [--rows N] [--repeat R] [--markdown] [--keep DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import random
import re
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import msgspec

from perpetuo.api.asgi import GatewayApp
from perpetuo.app import build_gateway
from perpetuo.auth.credential_crypto import new_key_spec
from perpetuo.config import GatewayConfig, Settings
from perpetuo.control import api_keys, credentials, models, sessions, workspaces
from perpetuo.control.accounts import UserCreate, create_user
from perpetuo.control.actor import CLI_ACTOR, Actor
from perpetuo.metering.record import RequestRecord
from perpetuo.metering.rollup import COUNTERS, add_into, fold
from perpetuo.store.migrate import upgrade
from perpetuo.store.schema import memberships

DAYS = 30
CHUNK = 50_000
ALIASES = ("chat-fast", "chat-smart", "embed")
PROVIDERS = ("openai-main", "anthropic-main")
MODELS = ("gpt-4o-mini", "claude-sonnet-4-5", "text-embedding-3-small")
encode = msgspec.json.Encoder().encode


def _stamp(epoch: float) -> str:
    """SQLAlchemy's SQLite text form of a UTC datetime."""
    return dt.datetime.fromtimestamp(epoch, dt.UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


def records(
    workspace_id: str, keys: list[str], users: list[str], count: int, seed: int
) -> Iterator[RequestRecord]:
    rng = random.Random(seed)
    now = time.time()
    for n in range(count):
        alias = rng.choice(ALIASES)
        index = ALIASES.index(alias)
        failed = rng.random() < 0.01
        fallback = rng.random() < 0.005
        prompt, completion = rng.randint(10, 2000), 0 if alias == "embed" else rng.randint(5, 800)
        latency = rng.lognormvariate(6, 0.6)
        key = rng.randrange(len(keys))
        yield RequestRecord(
            id=f"req_{seed}_{n:08d}",
            workspace_id=workspace_id,
            created_at=now - rng.random() * DAYS * 86400,
            endpoint="embeddings" if alias == "embed" else "chat",
            status=502 if failed else 200,
            key_id=keys[key],
            user_id=users[key % len(users)],
            alias=alias,
            provider=PROVIDERS[index % 2],
            model=MODELS[index],
            strategy="default",
            attempts=2 if fallback else 1,
            fallback=fallback,
            stream=rng.random() < 0.4,
            error_code="upstream_error" if failed else None,
            prompt_tokens=prompt,
            completion_tokens=completion,
            cost_micros=prompt * 3 + completion * 12,
            latency_ms=latency,
            ttft_ms=latency / 3,
            tags=["team-a"] if rng.random() < 0.3 else None,
            trace={
                "strategy": "default",
                "strategy_source": "alias",
                "candidates": [f"{PROVIDERS[index % 2]}/{MODELS[index]}"],
                "aliases": [alias],
                "skipped": [],
                "attempts": [],
                "served_alias": alias,
                "fallback": fallback,
            },
        )


LOG_COLUMNS = (
    "id", "workspace_id", "key_id", "user_id", "created_at", "endpoint", "alias", "provider",
    "model", "strategy", "attempts", "fallback", "stream", "status", "error_code",
    "prompt_tokens", "completion_tokens", "cached_tokens", "reasoning_tokens", "usage_estimated",
    "cost_micros", "latency_ms", "ttft_ms", "cache", "saved_cost_micros", "client_ip",
    "user_agent", "tags", "trace", "detail",
)  # fmt: skip


def _log_row(r: RequestRecord) -> tuple[Any, ...]:
    return (
        r.id, r.workspace_id, r.key_id, r.user_id, _stamp(r.created_at), r.endpoint, r.alias,
        r.provider, r.model, r.strategy, r.attempts, int(r.fallback), int(r.stream), r.status,
        r.error_code, r.prompt_tokens, r.completion_tokens, r.cached_tokens, r.reasoning_tokens,
        int(r.usage_estimated), r.cost_micros, r.latency_ms, r.ttft_ms, r.cache,
        r.saved_cost_micros, "10.0.0.1", "bench/1.0",
        encode(r.tags).decode() if r.tags else None, encode(r.trace).decode(), None,
    )  # fmt: skip


def fill(path: Path, batches: list[Iterator[RequestRecord]]) -> int:
    """Insert the records and their rollups with plain executemany, in large transactions."""
    db = sqlite3.connect(path)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=OFF")
    rollups: dict[Any, dict[str, Any]] = {}
    placeholders = ",".join("?" * len(LOG_COLUMNS))
    insert_log = f"INSERT INTO request_logs ({','.join(LOG_COLUMNS)}) VALUES ({placeholders})"
    written = 0
    for batch in batches:
        while chunk := [r for _, r in zip(range(CHUNK), batch, strict=False)]:
            with db:
                db.executemany(insert_log, [_log_row(r) for r in chunk])
            for key, counters in fold(chunk).items():
                add_into(rollups.setdefault(key, dict.fromkeys(COUNTERS, 0)), counters)
            written += len(chunk)
    columns = ("workspace_id", "bucket", "dim", "value", *COUNTERS)
    insert_rollup = (
        f"INSERT INTO usage_rollups ({','.join(columns)}) VALUES ({','.join('?' * len(columns))})"
    )
    with db:
        db.executemany(
            insert_rollup,
            [
                (ws, bucket.strftime("%Y-%m-%d %H:%M:%S.%f"), dim, value, *c.values())
                for (ws, bucket, dim, value), c in rollups.items()
            ],
        )
    db.close()  # no ANALYZE: a real deployment never runs one either
    return written


async def seed(gateway: Any) -> dict[str, Any]:
    """A busy workspace: an owner, members, keys, credentials and aliases; and a quiet one."""
    plane = gateway.plane
    spec = UserCreate(email="owner@example.com", password="Bench-password-1")
    owner = await create_user(plane, CLI_ACTOR, spec)
    actor = Actor(kind="user", user_id=owner["id"])
    busy = await workspaces.create_workspace(plane, actor, workspaces.WorkspaceCreate(name="Busy"))
    quiet = await workspaces.create_workspace(
        plane, actor, workspaces.WorkspaceCreate(name="Quiet")
    )
    users = [owner["id"]]
    for n in range(4):
        made = await create_user(
            plane, CLI_ACTOR, UserCreate(email=f"m{n}@example.com", password="Bench-password-1")
        )
        users.append(made["id"])
    async with plane.db.begin() as conn:
        for user_id in users[1:]:
            await conn.execute(
                memberships.insert().values(
                    workspace_id=busy["id"],
                    user_id=user_id,
                    role="member",
                    created_at=dt.datetime.now(dt.UTC),
                )
            )
    keys = []
    for n in range(20):
        view, _ = await api_keys.create_key(
            plane, actor, busy["id"], api_keys.KeyCreate(name=f"service-{n}")
        )
        keys.append(view["id"])
    creds = []
    for name in PROVIDERS:
        body = credentials.CredentialCreate(
            name=name,
            provider_type="openai",
            api_key="sk-bench-1234",
            api_base="http://127.0.0.1:9/v1",
        )
        creds.append((await credentials.create_credential(plane, actor, busy["id"], body))["id"])
    for index, alias in enumerate(ALIASES):
        deployment = models.DeploymentSpec(credential_id=creds[index % 2], model=MODELS[index])
        await models.create_model(
            plane, actor, busy["id"], models.ModelCreate(alias=alias, deployments=[deployment])
        )
    quiet_key, _ = await api_keys.create_key(
        plane, actor, quiet["id"], api_keys.KeyCreate(name="quiet")
    )
    async with plane.db.begin() as conn:
        tokens = await sessions.open_session(conn, plane, owner["id"], sessions.ClientInfo())
    return {
        "busy": busy["id"],
        "quiet": quiet["id"],
        "keys": keys,
        "users": users,
        "quiet_keys": [quiet_key["id"]],
        "session": tokens.refresh_token,
    }


def pages(busy: str, first_key: str, request_id: str, cursor: str) -> list[tuple[str, str]]:
    base = f"/ui/w/{busy}"
    return [
        ("overview", base),
        ("models", f"{base}/models"),
        ("model form", f"{base}/models/edit?alias=chat-fast"),
        ("providers", f"{base}/providers"),
        ("API keys", f"{base}/keys"),
        ("one key", f"{base}/keys/{first_key}"),
        ("playground", f"{base}/playground"),
        ("logs, 24 h", f"{base}/logs"),
        ("logs, 30 days", f"{base}/logs?range=30d"),
        ("logs, next page", f"{base}/logs?range=30d&cursor={cursor}"),
        ("logs, one key", f"{base}/logs?range=30d&key_id={first_key}"),
        ("logs, failed (1%)", f"{base}/logs?range=30d&status=error"),
        ("logs, fallback (0.5%)", f"{base}/logs?range=30d&fallback=yes"),
        (
            "logs, alias + provider",
            f"{base}/logs?range=7d&alias=chat-smart&provider=anthropic-main",
        ),
        ("logs, nothing matches", f"{base}/logs?range=30d&status=429"),
        ("logs, unknown alias", f"{base}/logs?range=30d&alias=never-used"),
        ("log detail", f"{base}/logs/{request_id}"),
        ("usage, 24 h", f"{base}/usage?range=24h"),
        ("usage, 7 days", f"{base}/usage"),
        ("usage, 30 days", f"{base}/usage?range=30d"),
        ("limits and plan", f"{base}/limits"),
        ("members", f"{base}/members"),
        ("audit log", f"{base}/audit"),
        ("settings", f"{base}/settings"),
        ("workspaces", "/ui/workspaces"),
    ]


async def measure(
    app: GatewayApp, session: str, urls: list[tuple[str, str]], repeat: int
) -> list[tuple[str, float, float]]:
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 40000))
    cookies = {"perpetuo_session": session}
    results = []
    async with httpx.AsyncClient(
        transport=transport, base_url="http://bench", cookies=cookies
    ) as client:
        for name, url in urls:
            timings = []
            for attempt in range(repeat + 1):
                started = time.perf_counter()
                response = await client.get(url)
                elapsed = (time.perf_counter() - started) * 1000
                assert response.status_code == 200, (url, response.status_code, response.text[:300])
                if attempt:  # the first render warms caches (templates, workspace routing)
                    timings.append(elapsed)
            results.append((name, statistics.median(timings), max(timings)))
    return results


async def run(args: argparse.Namespace, workdir: Path) -> None:
    path = workdir / "dashboard.db"
    os.environ.setdefault("PERPETUO_ENCRYPTION_KEYS", new_key_spec("bench"))
    settings = Settings(
        database_url=f"sqlite+aiosqlite:///{path}",
        data_dir=workdir,
        master_key="pk-bench-master-key",
        redis_url=None,
    )
    gateway = build_gateway(settings, GatewayConfig())
    await upgrade(gateway.plane.db)
    world = await seed(gateway)
    started = time.perf_counter()
    quiet_rows = args.rows // 10
    written = await asyncio.to_thread(
        fill,
        path,
        [
            records(world["busy"], world["keys"], world["users"], args.rows - quiet_rows, 1),
            records(world["quiet"], world["quiet_keys"], world["users"][:1], quiet_rows, 2),
        ],
    )
    print(
        f"filled {written:,} request-log rows (+ rollups) in "
        f"{time.perf_counter() - started:.1f} s into {path}"
    )
    app = GatewayApp(gateway)
    db = sqlite3.connect(path)
    (newest,) = db.execute(
        "SELECT id FROM request_logs WHERE workspace_id = ? ORDER BY created_at DESC LIMIT 1",
        (world["busy"],),
    ).fetchone()
    db.close()
    probe = httpx.ASGITransport(app=app, client=("127.0.0.1", 40000))
    async with httpx.AsyncClient(
        transport=probe, base_url="http://bench", cookies={"perpetuo_session": world["session"]}
    ) as client:
        html = (await client.get(f"/ui/w/{world['busy']}/logs?range=30d")).text
    cursor = re.search(r"cursor=([A-Za-z0-9_-]+)", html)[1]
    urls = pages(world["busy"], world["keys"][0], newest, cursor)
    results = await measure(app, world["session"], urls, args.repeat)
    await gateway.aclose()
    report(results, args.markdown, written)


def report(results: list[tuple[str, float, float]], markdown: bool, rows: int) -> None:
    ordered = sorted(results, key=lambda r: -r[1])
    if markdown:
        print(f"\n| page ({rows:,} log rows) | median ms | worst ms |\n|---|---:|---:|")
        for name, median, worst in ordered:
            print(f"| {name} | {median:.1f} | {worst:.1f} |")
        return
    print(f"\n{'page':<28}{'median ms':>12}{'worst ms':>12}")
    for name, median, worst in ordered:
        print(f"{name:<28}{median:>12.1f}{worst:>12.1f}")
    slowest = ordered[0]
    print(f"\nslowest: {slowest[0]} — median {slowest[1]:.1f} ms, worst {slowest[2]:.1f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--markdown", action="store_true", help="print a Markdown table")
    parser.add_argument("--keep", help="build the database in this directory (kept)")
    args = parser.parse_args()
    workdir = Path(args.keep or tempfile.mkdtemp(prefix="perpetuo-dashboard-"))
    workdir.mkdir(parents=True, exist_ok=True)
    asyncio.run(run(args, workdir))


if __name__ == "__main__":
    main()
