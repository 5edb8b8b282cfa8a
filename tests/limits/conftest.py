"""A backend factory per counter store: each test runs against memory and against Redis."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import pytest

from perpetuo.limits.backend import LimitBackend
from perpetuo.limits.memory import MemoryBackend
from perpetuo.limits.redis_backend import RedisBackend
from tests.support.services import RedisServer

BackendFactory = Callable[[], LimitBackend]


@pytest.fixture(params=["memory", "redis"])
async def backends(request: pytest.FixtureRequest) -> AsyncIterator[BackendFactory]:
    """Makes backends sharing one store: memory backends share one instance (one process),
    Redis backends are separate clients of one Redis (separate gateway instances). Their
    deadlines (the call, the connection) are generous: these tests are about exactness on a
    possibly busy machine; the failure tests use the real ones."""
    made: list[LimitBackend] = []
    if request.param == "memory":
        shared = MemoryBackend()
        made.append(shared)
        yield lambda: shared
    else:
        server: RedisServer = request.getfixturevalue("redis_server")
        server.flush()

        def make() -> LimitBackend:
            backend = RedisBackend(server.url, deadline=3.0, socket_timeout=3.0)
            made.append(backend)
            return backend

        yield make
    for backend in made:
        await backend.aclose()
