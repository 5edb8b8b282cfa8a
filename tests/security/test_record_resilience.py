"""Whatever fails after the response (settling limits, the trace, metrics, the access log,
the cache), the request still gets its request-log row, and the failure is logged without
its message (which could quote request data or a credential)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from sqlalchemy import select

from perpetuo.api.asgi import GatewayApp
from perpetuo.app import build_gateway
from perpetuo.config import GatewayConfig, Settings
from perpetuo.observability import logs
from perpetuo.observability.metrics import GatewayMetrics
from perpetuo.observability.tracing import Tracing
from perpetuo.pipeline import cache as pipeline_cache
from perpetuo.pipeline import runtime
from perpetuo.pipeline.runtime import Gateway
from perpetuo.store.migrate import upgrade
from perpetuo.store.schema import request_logs
from tests.mocks.hostile_mock import HostileMock, config_for
from tests.support.gateway import MASTER_KEY

SECRET = "sk-live-0123456789abcdefSECRET"

# Every step Gateway.record (and the cache store) runs after the response.
STEPS = {
    "settle": (Gateway, "_settle"),
    "tracing": (Tracing, "finish"),
    "metrics": (GatewayMetrics, "observe"),
    "feature metrics": (runtime, "observe_features"),
    "access log": (logs, "access"),
    "cache store": (pipeline_cache, "_persist"),
    "cache outcome": (runtime, "note_cache"),
}


def boom(*args: object, **kwargs: object) -> None:
    raise RuntimeError(f"failed while holding {SECRET}")


@pytest.fixture(scope="module")
def hostile() -> Iterator[HostileMock]:
    mock = HostileMock().start()
    yield mock
    mock.stop()


@pytest.fixture
async def app(hostile: HostileMock, tmp_path) -> AsyncIterator[GatewayApp]:
    spec = config_for(hostile, "ok", "negative-usage")
    for alias in spec["models"].values():
        alias["cache"] = {"enabled": True}  # so the cache steps run too
    gateway = build_gateway(
        Settings(
            database_url=f"sqlite+aiosqlite:///{tmp_path / 'store.db'}",
            data_dir=tmp_path,
            master_key=MASTER_KEY,
            redis_url=None,
        ),
        GatewayConfig.model_validate(spec),
    )
    await upgrade(gateway.plane.db)
    await gateway.start()
    try:
        yield GatewayApp(gateway)
    finally:
        await gateway.aclose()


async def chat(app: GatewayApp, model: str = "ok", content: str = "hello") -> httpx.Response:
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as http:
        return await http.post(
            "/v1/chat/completions",
            json={"model": model, "messages": [{"role": "user", "content": content}]},
            headers={"authorization": f"Bearer {MASTER_KEY}"},
        )


async def logged_row(app: GatewayApp, request_id: str) -> dict:
    gateway = app.gateway
    await gateway.usage.stop()  # writes what is queued
    async with gateway.plane.db.connect() as conn:
        rows = (
            await conn.execute(select(request_logs).where(request_logs.c.id == request_id))
        ).all()
    assert len(rows) == 1, f"no request-log row for {request_id}"
    return dict(rows[0]._mapping)


@pytest.mark.parametrize("failing", [*STEPS, "all at once"])
async def test_the_request_log_row_survives_a_failing_step(app, monkeypatch, caplog, failing):
    for name, (owner, attribute) in STEPS.items():
        if failing in (name, "all at once"):
            monkeypatch.setattr(owner, attribute, boom)
    with caplog.at_level(logging.INFO, logger="perpetuo"):
        response = await chat(app)
    assert response.status_code == 200, response.text
    row = await logged_row(app, response.headers["x-request-id"])
    assert row["status"] == 200
    assert row["alias"] == "ok"
    assert row["prompt_tokens"] == 5 and row["completion_tokens"] == 3
    assert "failed" in caplog.text  # the failure is reported...
    assert SECRET not in caplog.text  # ...without its message


async def test_hostile_usage_no_longer_costs_the_row(app):
    # The finding: negative usage made metrics raise and the request left no row at all.
    response = await chat(app, "negative-usage", "count me")
    assert response.status_code == 200
    assert response.json()["usage"]["prompt_tokens"] == 0
    row = await logged_row(app, response.headers["x-request-id"])
    assert row["prompt_tokens"] == 0 and row["completion_tokens"] == 3
    assert row["cost_micros"] >= 0
