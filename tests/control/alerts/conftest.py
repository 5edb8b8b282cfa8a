"""Alert tests: a webhook receiver on loopback, a gateway in-process whose alert worker the
test drives (evaluate, deliver) with the clock it chooses."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web

from perpetuo.auth.credential_crypto import new_key_spec
from perpetuo.transport.egress import EgressPolicy
from tests.support.admin_api import MASTER, AdminAPI, admin_api

# The receivers listen on loopback: the tests' policy lets alerts reach them.
LOOPBACK_ALLOWED = EgressPolicy(allow_http=True, allow_private=True)


@dataclass
class Receiver:
    url: str
    received: list[dict[str, Any]] = field(default_factory=list)  # headers, body, raw, at
    statuses: list[int] = field(default_factory=list)  # answers to give first, in order

    def bodies(self) -> list[Any]:
        return [r["body"] for r in self.received]


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    box = Receiver("")

    async def receive(request: web.Request) -> web.Response:
        raw = await request.read()
        box.received.append(
            {
                "headers": {k.lower(): v for k, v in request.headers.items()},
                "raw": raw,
                "body": await request.json(),
                "at": time.monotonic(),
            }
        )
        return web.Response(status=box.statuses.pop(0) if box.statuses else 200, text="ok")

    app = web.Application()
    app.router.add_post("/hook", receive)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    box.url = f"http://127.0.0.1:{runner.addresses[0][1]}/hook"
    yield box
    await runner.cleanup()


async def quiet(api: AdminAPI) -> Any:
    """The gateway's alert service with its background loop stopped: the test drives it."""
    service = api.app.gateway.alerts
    await service.aclose()
    api.plane.egress = LOOPBACK_ALLOWED
    return service


@pytest.fixture
async def api(tmp_path, monkeypatch) -> AsyncIterator[AdminAPI]:
    monkeypatch.setenv("PERPETUO_ENCRYPTION_KEYS", new_key_spec("k1"))
    url = f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}"
    async with admin_api(url, tmp_path, alert_retry_seconds=0.2) as api:
        await quiet(api)
        yield api


async def make_channel(api: AdminAPI, base: str, body: dict[str, Any], headers=MASTER) -> dict:
    response = await api.http.post(f"{base}/alert-channels", headers=headers, json=body)
    assert response.status_code == 201, response.text
    return response.json()["data"]


async def make_rule(api: AdminAPI, base: str, body: dict[str, Any], headers=MASTER) -> dict:
    response = await api.http.post(f"{base}/alert-rules", headers=headers, json=body)
    assert response.status_code == 201, response.text
    return response.json()["data"]


async def history(api: AdminAPI, base: str) -> list[dict[str, Any]]:
    response = await api.http.get(f"{base}/alerts?limit=200", headers=MASTER)
    assert response.status_code == 200, response.text
    return response.json()["data"]
