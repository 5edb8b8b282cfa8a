"""Operations: readiness detail, configuration hot reload, graceful shutdown in a rolling
restart, and the request log losing nothing (SIGTERM, a 60 s database outage, load)."""

from __future__ import annotations

import asyncio
import copy
import signal
import threading
import time

import httpx
import pytest
from sqlalchemy import func, select

from perpetuo.store.database import Database
from perpetuo.store.schema import request_logs
from tests.conftest import full_config
from tests.mocks.server import Fault
from tests.support.gateway import MASTER_KEY, GatewayProcess
from tests.support.services import PostgresServer

AUTH = {"authorization": f"Bearer {MASTER_KEY}"}
CHAT = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hello"}]}


def eventually(check, timeout: float, interval: float = 0.1):
    deadline = time.monotonic() + timeout
    while True:
        try:
            return check()
        except AssertionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(interval)


def model_ids(gw: GatewayProcess) -> set[str]:
    return {m["id"] for m in httpx.get(f"{gw.url}/v1/models", headers=AUTH).json()["data"]}


async def count_logs(url: str) -> int:
    db = Database(url)
    try:
        async with db.connect() as conn:
            return int(await conn.scalar(select(func.count()).select_from(request_logs)))
    finally:
        await db.dispose()


def test_readiness_reports_each_check(mocks, tmp_path):
    config, env = full_config(mocks)
    # Only healthy aliases: the shared config has some whose breakers tests open on purpose.
    config = {
        "providers": {"openai-main": config["providers"]["openai-main"]},
        "models": {"gpt-4o-mini": config["models"]["gpt-4o-mini"]},
    }
    with GatewayProcess(config, tmp_path, env=env) as gateway:
        body = httpx.get(f"{gateway.url}/health/ready", headers=AUTH).json()
    assert body["status"] == "ready"
    assert body["checks"]["store"]["ok"] is True and body["checks"]["store"]["latency_ms"] >= 0
    assert body["checks"]["redis"] == {"configured": False}
    assert body["checks"]["routing"]["ok"] is True
    assert body["checks"]["routing"]["deployments"]["openai-main/gpt-4o-mini"]["state"] == "closed"


def test_readiness_follows_the_store(mocks, tmp_path):
    pg = PostgresServer().start()
    try:
        config, env = full_config(mocks)
        env = {**env, "PERPETUO_DATABASE_URL": pg.create_database("ready")}
        with GatewayProcess(config, tmp_path, env=env) as gw:
            assert httpx.get(f"{gw.url}/health/ready").status_code == 200
            pg.stop_server()
            down = httpx.get(f"{gw.url}/health/ready", headers=AUTH, timeout=10)
            assert down.status_code == 503 and down.json()["checks"]["store"]["ok"] is False
            assert down.json()["status"] == "not_ready"
            assert httpx.get(f"{gw.url}/health/live").status_code == 200
            pg.start_server()
            eventually(lambda: httpx.get(f"{gw.url}/health/ready").raise_for_status(), timeout=10)
    finally:
        pg.stop()


def test_sighup_reloads_and_a_bad_file_keeps_the_old_config(mocks, tmp_path):
    config, env = full_config(mocks)
    with GatewayProcess(config, tmp_path, env=env) as gw:
        assert "brand-new" not in model_ids(gw)
        mocks["openai"].fail_next(Fault(event_delay=0.2))
        with httpx.stream(
            "POST", f"{gw.url}/v1/chat/completions", headers=AUTH, json={**CHAT, "stream": True}
        ) as stream:
            changed = copy.deepcopy(config)
            changed["models"]["brand-new"] = changed["models"]["gpt-4o-mini"]
            gw.write_config(changed)
            gw.proc.send_signal(signal.SIGHUP)

            def reloaded():
                assert "brand-new" in model_ids(gw)

            eventually(reloaded, timeout=5)
            body = b"".join(stream.iter_raw())  # the stream begun before the reload finishes
        assert body.endswith(b"data: [DONE]\n\n")

        gw.config_path.write_text("models: {broken: {deployments: []}}")
        gw.proc.send_signal(signal.SIGHUP)

        def refused():
            assert "configuration reload refused" in gw.log()

        eventually(refused, timeout=5)
        assert "brand-new" in model_ids(gw)  # still serving the last good configuration
        reply = httpx.post(
            f"{gw.url}/v1/chat/completions", headers=AUTH, json={**CHAT, "model": "brand-new"}
        )
        assert reply.status_code == 200


@pytest.mark.parametrize("with_redis", [True, False], ids=["redis", "db-polling"])
def test_reload_api_reaches_every_instance(mocks, postgres, redis_server, tmp_path, with_redis):
    config, env = full_config(mocks)
    shared = {
        **env,
        "PERPETUO_DATABASE_URL": postgres.create_database(f"reload_{with_redis}"),
        "PERPETUO_SECRET_KEY": "s" * 40,
    }
    if with_redis:
        shared["PERPETUO_REDIS_URL"] = redis_server.url
    a = GatewayProcess(config, tmp_path / "a", env=shared).start()
    b = GatewayProcess(config, tmp_path / "b", env=shared).start()
    try:
        changed = copy.deepcopy(config)
        changed["models"]["everywhere"] = changed["models"]["gpt-4o-mini"]
        a.write_config(changed)
        b.write_config(changed)  # the same file on every instance (a ConfigMap, say)
        refused = httpx.post(f"{a.url}/api/admin/reload", headers={"authorization": "Bearer nope"})
        assert refused.status_code == 401
        response = httpx.post(f"{a.url}/api/admin/reload", headers=AUTH)
        assert response.status_code == 200, response.text
        assert "everywhere" in model_ids(a)
        started = time.monotonic()

        def on_b():
            assert "everywhere" in model_ids(b)

        eventually(on_b, timeout=6)
        assert time.monotonic() - started < (1.5 if with_redis else 6)
        a.config_path.write_text("providers: {x: {type: nonsense}}")
        bad = httpx.post(f"{a.url}/api/admin/reload", headers=AUTH)
        assert bad.status_code == 422 and "providers.x.type" in bad.json()["error"]["message"]
        assert "everywhere" in model_ids(a)
    finally:
        a.stop()
        b.stop()


def test_rolling_restart_drops_no_request_and_loses_no_record(mocks, postgres, tmp_path):
    """Two instances behind a client-side 'load balancer'; one is stopped with SIGTERM mid
    load. Requests it had accepted finish; new ones go to the other; every success is logged."""
    config, env = full_config(mocks)
    url = postgres.create_database("rolling")
    shared = {**env, "PERPETUO_DATABASE_URL": url, "PERPETUO_SECRET_KEY": "s" * 40}
    a = GatewayProcess(config, tmp_path / "a", env=shared).start()
    b = GatewayProcess(config, tmp_path / "b", env=shared).start()
    mocks["openai"].default_fault = Fault(delay=0.05)  # keep requests in flight
    results: list[int] = []
    stop = threading.Event()

    async def client(index: int) -> None:
        async with httpx.AsyncClient(timeout=30) as http:
            turn = index
            while not stop.is_set():
                targets = [a, b] if turn % 2 == 0 else [b, a]
                turn += 1
                for target in targets:  # a balancer tries the next instance on refusal
                    try:
                        response = await http.post(
                            f"{target.url}/v1/chat/completions", headers=AUTH, json=CHAT
                        )
                    except httpx.TransportError:
                        continue
                    results.append(response.status_code)
                    break

    def load() -> None:
        async def main() -> None:
            await asyncio.gather(*(client(i) for i in range(8)))

        asyncio.run(main())

    worker = threading.Thread(target=load)
    worker.start()
    try:
        time.sleep(1.5)
        with httpx.stream(
            "POST",
            f"{a.url}/v1/chat/completions",
            headers=AUTH,
            json={**CHAT, "stream": True},
            timeout=30,
        ) as stream:
            code = a.stop(signal.SIGTERM, timeout=40)  # returns when A has exited
            tail = b"".join(stream.iter_raw())
        assert code in (0, -signal.SIGTERM)  # uvicorn re-raises SIGTERM after a clean shutdown
        assert tail.endswith(b"data: [DONE]\n\n")  # the stream in flight was finished
        time.sleep(1.0)  # B alone now
        stop.set()
        worker.join(30)
    finally:
        stop.set()
        mocks["openai"].default_fault = None
        b.stop()
    assert results and set(results) == {200}, {c: results.count(c) for c in set(results)}
    logged = asyncio.run(count_logs(url))
    assert logged == len(results) + 1  # plus the stream


def test_database_outage_of_60s_loses_no_record(mocks, tmp_path):
    pg = PostgresServer().start()
    try:
        config, env = full_config(mocks)
        url = pg.create_database("outage")
        with GatewayProcess(config, tmp_path, env={**env, "PERPETUO_DATABASE_URL": url}) as gw:
            sent = 0
            for _ in range(5):
                assert (
                    httpx.post(f"{gw.url}/v1/chat/completions", headers=AUTH, json=CHAT).status_code
                    == 200
                )
                sent += 1
            pg.stop_server()
            outage_started = time.monotonic()
            while time.monotonic() - outage_started < 60:
                started = time.monotonic()
                response = httpx.post(
                    f"{gw.url}/v1/chat/completions", headers=AUTH, json=CHAT, timeout=10
                )
                assert response.status_code == 200  # a down database never fails a request
                assert time.monotonic() - started < 1.0  # nor slows it
                sent += 1
                time.sleep(0.5)
            assert list((tmp_path / "data" / "spill").glob("*.jsonl"))  # the records went to disk
            pg.start_server()
            eventually(lambda: _assert_count(url, sent), timeout=30, interval=0.5)
    finally:
        pg.stop()


def _assert_count(url: str, expected: int) -> None:
    assert asyncio.run(count_logs(url)) == expected


def test_no_record_lost_under_load(mocks, postgres, tmp_path):
    config, env = full_config(mocks)
    url = postgres.create_database("load")
    with GatewayProcess(config, tmp_path, env={**env, "PERPETUO_DATABASE_URL": url}) as gw:

        async def burst() -> int:
            limits = httpx.Limits(max_connections=50)
            # 1,500 requests queue for 50 connections in the client: the wait for a free
            # connection is the client's own (unbounded), each request still has 30 s.
            timeout = httpx.Timeout(30, pool=None)
            async with httpx.AsyncClient(timeout=timeout, limits=limits) as http:

                async def one(i: int) -> int:
                    body = {**CHAT, "stream": i % 3 == 0}
                    response = await http.post(
                        f"{gw.url}/v1/chat/completions", headers=AUTH, json=body
                    )
                    return response.status_code

                codes = await asyncio.gather(*(one(i) for i in range(1500)))
            assert set(codes) == {200}
            return len(codes)

        sent = asyncio.run(burst())
        gw.stop(signal.SIGTERM)  # shutdown writes whatever is still queued
    assert asyncio.run(count_logs(url)) == sent
