"""A hostile upstream cannot make the gateway hold an unbounded answer: huge bodies, gzip
bombs, endless SSE lines and false content-lengths end the attempt with a clean 502
`upstream_response_too_large` (or an error event once a stream has started), the upstream
connection is dropped, and another deployment may still serve."""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from perpetuo.config.model import ProviderConfig
from perpetuo.transport.caps import RATIO_FLOOR, Inflater, ResponseCaps
from perpetuo.transport.client import HTTPClient
from perpetuo.transport.errors import ResponseTooLarge
from perpetuo.transport.sse import SSEDecoder
from perpetuo.transport.url import URL
from tests.mocks.hostile_mock import HostileMock, MiB, config_for, gzip_of
from tests.support.gateway import MASTER_KEY, GatewayProcess

AUTH = {"authorization": f"Bearer {MASTER_KEY}"}
HELLO = [{"role": "user", "content": "hello"}]
TOO_LARGE = "upstream_response_too_large"


@pytest.fixture(scope="module")
def hostile() -> Iterator[HostileMock]:
    mock = HostileMock().start()
    yield mock
    mock.stop()


@pytest.fixture(scope="module")
def gateway(hostile: HostileMock, tmp_path_factory: pytest.TempPathFactory):
    models = (
        "ok",
        "huge-body",
        "gzip-bomb",
        "gzip-bomb-stream",
        "endless-line",
        "endless-line-late",
        "length-overstated",
        "length-understated",
        "length-truncated",
    )
    config = config_for(hostile, *models, timeouts={"total": 30})
    config["providers"]["small"] = {
        **config["providers"]["hostile"],
        "upstream_limits": {"max_body_bytes": 64 * 1024},
    }
    config["models"]["huge-then-ok"] = {
        "deployments": [
            {"provider": "hostile", "model": "huge-body"},
            {"provider": "hostile", "model": "ok"},
        ]
    }
    config["models"]["small-ok"] = {"deployments": [{"provider": "small", "model": "ok"}]}
    config["models"]["small-huge"] = {"deployments": [{"provider": "small", "model": "huge-body"}]}
    with GatewayProcess(config, tmp_path_factory.mktemp("caps")) as process:
        yield process


@pytest.fixture(autouse=True)
def _sizes(hostile: HostileMock) -> None:
    hostile.reset()
    hostile.body_bytes = 40 * MiB  # past the 32 MiB default
    hostile.bomb_bytes = 100 * MiB  # ~100 KB on the wire


def chat(gateway: GatewayProcess, model: str, **extra: object) -> httpx.Response:
    return httpx.post(
        f"{gateway.url}/v1/chat/completions",
        json={"model": model, "messages": HELLO, **extra},
        headers=AUTH,
        timeout=60,
    )


def stream_events(gateway: GatewayProcess, model: str) -> tuple[int, list[dict]]:
    events = []
    with httpx.stream(
        "POST",
        f"{gateway.url}/v1/chat/completions",
        json={"model": model, "messages": HELLO, "stream": True},
        headers=AUTH,
        timeout=60,
    ) as response:
        if response.status_code != 200:
            response.read()
            return response.status_code, [response.json()]
        for line in response.iter_lines():
            if line.startswith("data: ") and line != "data: [DONE]":
                events.append(json.loads(line[6:]))
    return 200, events


def assert_too_large(response: httpx.Response) -> None:
    assert response.status_code == 502, response.text[:300]
    error = response.json()["error"]
    assert error["code"] == TOO_LARGE
    assert error["type"] == "upstream_error"
    assert set(error) == {"message", "type", "param", "code"}


def test_a_huge_body_is_refused_and_its_connection_dropped(gateway, hostile):
    started = time.monotonic()
    assert_too_large(chat(gateway, "huge-body"))
    assert time.monotonic() - started < 10
    # The gateway hung up mid-body instead of reading the rest.
    deadline = time.monotonic() + 5
    while hostile.disconnects == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert hostile.disconnects == 1
    assert chat(gateway, "ok").status_code == 200  # and goes on serving


def test_another_deployment_serves_when_one_is_too_large(gateway, hostile):
    response = chat(gateway, "huge-then-ok")
    assert response.status_code == 200
    assert response.json()["choices"][0]["message"]["content"] == "Hello there."
    assert [r.body["model"] for r in hostile.requests] == ["huge-body", "ok"]


def test_a_provider_can_set_its_own_caps(gateway, hostile):
    hostile.body_bytes = 128 * 1024
    assert chat(gateway, "small-ok").status_code == 200
    assert_too_large(chat(gateway, "small-huge"))
    assert chat(gateway, "huge-body").status_code == 200  # 128 KB is fine under the default


def test_a_gzip_bomb_is_stopped_early(gateway):
    started = time.monotonic()
    assert_too_large(chat(gateway, "gzip-bomb"))
    assert time.monotonic() - started < 10


def test_a_gzip_bomb_in_a_stream_ends_it_with_an_error_event(gateway):
    status, events = stream_events(gateway, "gzip-bomb-stream")
    if status == 200:  # some events passed before the ratio gave it away
        assert events[-1]["error"]["code"] == TOO_LARGE
    else:
        assert events[0]["error"]["code"] == TOO_LARGE


def test_an_endless_line_before_the_first_event_is_a_502(gateway):
    started = time.monotonic()
    status, body = stream_events(gateway, "endless-line")
    assert status == 502
    assert body[0]["error"]["code"] == TOO_LARGE
    assert time.monotonic() - started < 10


def test_an_endless_line_mid_stream_ends_with_an_error_event(gateway):
    status, events = stream_events(gateway, "endless-line-late")
    assert status == 200
    assert events[1]["choices"][0]["delta"]["content"] == "Hello"
    assert events[-1]["error"]["code"] == TOO_LARGE
    assert sum("error" in e for e in events) == 1


def test_a_declared_length_past_the_cap_is_refused_before_reading(gateway):
    started = time.monotonic()
    assert_too_large(chat(gateway, "length-overstated"))
    assert time.monotonic() - started < 5  # did not wait for 100 GB that never come


def test_a_short_content_length_never_poisons_the_next_request(gateway):
    response = chat(gateway, "length-understated")
    assert response.status_code == 502
    assert response.json()["error"]["code"] == "upstream_bad_response"
    for _ in range(3):  # the connection with trailing bytes was not reused
        assert chat(gateway, "ok").json()["choices"][0]["message"]["content"] == "Hello there."


def test_a_body_cut_short_is_an_upstream_failure(gateway):
    response = chat(gateway, "length-truncated")
    assert response.status_code in (502, 503)
    assert response.json()["error"]["code"] in ("upstream_unavailable", "upstream_bad_response")


# -- the decoder itself -------------------------------------------------------------------------


def bomb(size: int) -> bytes:
    return gzip_of(b"\0" * MiB for _ in range(size // MiB))


def test_inflating_a_bomb_stops_after_a_bounded_amount_of_output():
    payload = bomb(256 * MiB)
    inflater = Inflater("gzip", 64 * MiB, 200)
    produced = 0
    with pytest.raises(ResponseTooLarge) as caught:
        for piece in inflater.stream(payload):
            produced += len(piece)
    assert caught.value.what == "decompression ratio"
    assert produced <= RATIO_FLOOR + 256 * 1024  # one step past the floor at most


def test_inflating_past_the_size_cap_is_refused_even_at_a_modest_ratio():
    payload = gzip_of([random.Random(7).randbytes(2 * MiB)])  # does not compress at all
    inflater = Inflater("gzip", 1 * MiB, 200)
    with pytest.raises(ResponseTooLarge) as caught:
        inflater.inflate(payload)
    assert caught.value.what == "decompressed body"
    assert inflater.decompressed <= 1 * MiB


def test_an_honest_compressed_body_decodes_whole():
    body = json.dumps({"choices": [{"message": {"content": "hi " * 1000}}]}).encode()
    inflater = Inflater("gzip", 32 * MiB, 200)
    payload = gzip_of([body])
    out = b"".join(inflater.inflate(payload[i : i + 100]) for i in range(0, len(payload), 100))
    assert out + inflater.flush() == body


# -- many large bodies at once ------------------------------------------------------------------


async def test_large_bodies_read_at_once_share_one_budget(hostile):
    hostile.body_bytes = 8 * MiB
    client = HTTPClient(max_buffered_bytes=10 * MiB)  # one 8 MiB body fits, four do not
    caps = ResponseCaps(max_body_bytes=32 * MiB)
    url = URL.parse(f"{hostile.url}/v1/chat/completions")

    async def read(model: str) -> bytes:
        body = json.dumps({"model": model, "messages": HELLO}).encode()
        response = await client.request(
            "POST", url, [("content-type", "application/json")], body, caps=caps
        )
        return await response.read()

    try:
        results = await asyncio.gather(
            *(read("huge-body") for _ in range(4)), read("ok"), return_exceptions=True
        )
        refused = [r for r in results[:4] if isinstance(r, ResponseTooLarge)]
        assert refused and all(r.what == "total of large bodies being read" for r in refused)
        assert b"Hello there." in results[4]  # a small answer never waits on the budget
        assert client.body_budget.used == 0  # every refused or finished read gave it back
        assert len(await read("huge-body")) > 8 * MiB - 1024  # alone, one fits again
    finally:
        await client.aclose()


def test_the_shared_budget_is_global_only():
    with pytest.raises(ValueError, match="max_buffered_bytes is a global limit"):
        ProviderConfig(type="openai", upstream_limits={"max_buffered_bytes": 2 * MiB})


async def test_an_event_of_many_short_lines_is_held_to_the_cap_too():
    async def network() -> AsyncIterator[bytes]:
        line = b"data: " + b"y" * 1000 + b"\n"
        while True:  # data lines that never end the event
            yield line * 64

    with pytest.raises(ResponseTooLarge) as caught:
        async for _ in SSEDecoder(network(), max_event_bytes=256 * 1024):
            pass
    assert caught.value.what == "SSE event"
