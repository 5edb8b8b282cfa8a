"""Helpers for the limits tests: an injectable clock, request builders, outcome tallies."""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
from collections.abc import Awaitable
from typing import Any

import redis.asyncio as redis

from perpetuo.limits import Admission, LimitEngine, LimitRequest, WorkspaceLimits
from perpetuo.limits.backend import LimitBackend
from perpetuo.limits.redis_backend import PREFIX
from perpetuo.schema.errors import GatewayError

_ids = itertools.count()


class Clock:
    """Seconds since the epoch, moved by hand."""

    def __init__(self, start: dt.datetime | float = 1_750_000_000.0) -> None:
        self.now = start.timestamp() if isinstance(start, dt.datetime) else float(start)

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def at(text: str) -> Clock:
    """A clock at an ISO UTC time, e.g. at("2025-01-31T23:59:00")."""
    return Clock(dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC))


def make_request(
    workspace_id: str = "ws_1",
    key_id: str | None = "key_1",
    *,
    user_id: str | None = None,
    team_id: str | None = None,
    key_limits: dict[str, Any] | None = None,
    team_limits: dict[str, Any] | None = None,
    user_limits: dict[str, Any] | None = None,
    workspace: WorkspaceLimits | None = None,
    prompt_tokens: int = 0,
    max_output_tokens: int = 0,
    max_cost_micros: int = 0,
) -> LimitRequest:
    return LimitRequest(
        request_id=f"req_{next(_ids)}",
        workspace_id=workspace_id,
        key_id=key_id,
        user_id=user_id,
        team_id=team_id,
        key_limits=key_limits,
        team_limits=team_limits,
        user_limits=user_limits,
        workspace=workspace,
        prompt_tokens=prompt_tokens,
        max_output_tokens=max_output_tokens,
        max_cost_micros=max_cost_micros,
    )


def engine(backend: LimitBackend, clock: Clock | None = None, **options: Any) -> LimitEngine:
    return LimitEngine(backend, clock=clock or Clock(), **options)


async def attempt(admit: Awaitable[Admission]) -> Admission | GatewayError:
    try:
        return await admit
    except GatewayError as exc:
        return exc


async def admit_all(
    engines: list[LimitEngine], requests: list[LimitRequest]
) -> tuple[list[Admission], list[GatewayError]]:
    """Admit every request at once, spread round-robin over the engines."""
    outcomes = await asyncio.gather(
        *(attempt(engines[i % len(engines)].admit(r)) for i, r in enumerate(requests))
    )
    admitted = [o for o in outcomes if isinstance(o, Admission)]
    refused = [o for o in outcomes if isinstance(o, GatewayError)]
    return admitted, refused


async def counters(url: str, workspace: str = "ws_1") -> dict[str, dict[str, int]]:
    """A workspace's counters in Redis by kind (tpm, usd, ...), their hash fields as integers;
    `tickets`: how many admissions wait for their settlement."""
    client = redis.from_url(url)
    prefix = PREFIX + "{" + workspace + "}:"
    try:
        found = {}
        async for name in client.scan_iter(match=prefix + "*"):
            kind = name.decode().removeprefix(prefix).split(":")[0]
            if await client.type(name) == b"hash":
                found[kind] = {k.decode(): int(v) for k, v in (await client.hgetall(name)).items()}
            elif kind == "tickets":
                found[kind] = {"count": await client.zcard(name)}
        return found
    finally:
        await client.aclose()
