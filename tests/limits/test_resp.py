"""The limits' own Redis client: replies reach their callers in order, whatever the framing,
cancellations, stalls, broken streams or connection setup."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
import redis as redis_py

from perpetuo.limits import resp
from perpetuo.limits.resp import ProtocolError, ReplyError, RespClient, pack, parse
from tests.support.services import RedisServer, free_port

PIPELINE = (
    b":42\r\n"
    b"$5\r\nhello\r\n"
    b"$-1\r\n"
    b"*3\r\n:1\r\n*2\r\n$1\r\na\r\n:-7\r\n$0\r\n\r\n"
    b"+OK\r\n"
    b"-NOSCRIPT No matching script\r\n"
    b"*-1\r\n"
)
EXPECTED = [42, b"hello", None, [1, [b"a", -7], b""], "OK", "NOSCRIPT No matching script", None]


def _all(buffer: bytes) -> list[object]:
    replies, at = [], 0
    while at < len(buffer):
        reply, at = parse(buffer, at)
        replies.append(str(reply) if isinstance(reply, ReplyError) else reply)
    return replies


def test_parse_reads_every_reply_type() -> None:
    assert _all(PIPELINE) == EXPECTED


def test_pack_writes_bulk_strings_and_refuses_what_redis_cannot_take() -> None:
    assert pack(("EVALSHA", "ab", 1, b"k\r\n", 2.5)) == (
        b"*5\r\n$7\r\nEVALSHA\r\n$2\r\nab\r\n$1\r\n1\r\n$3\r\nk\r\n\r\n$3\r\n2.5\r\n"
    )
    for wrong in (None, True, object()):
        with pytest.raises(TypeError):
            pack(("SET", "k", wrong))
    # Lengths are in bytes, whatever mix of arguments (the ASCII-only path and the other).
    assert pack(("SET", "clé", 12)) == b"*3\r\n$3\r\nSET\r\n$4\r\ncl\xc3\xa9\r\n$2\r\n12\r\n"
    assert pack(("EVALSHA", -7, "k")) == b"*3\r\n$7\r\nEVALSHA\r\n$2\r\n-7\r\n$1\r\nk\r\n"


class FakeRedis:
    """A server that records what it receives and answers only what the test tells it to."""

    def __init__(self) -> None:
        self.received = bytearray()
        self.writers: list[asyncio.StreamWriter] = []
        self.port = 0
        self._server: asyncio.Server | None = None

    async def __aenter__(self) -> FakeRedis:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        for writer in self.writers:
            writer.close()
        self._server.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.writers.append(writer)
        while data := await reader.read(65536):
            self.received += data

    async def answer(self, data: bytes, connection: int = -1) -> None:
        writer = self.writers[connection]
        writer.write(data)
        await writer.drain()

    async def wait_for(self, needle: bytes) -> None:
        async with asyncio.timeout(5):
            while needle not in self.received:
                await asyncio.sleep(0.005)


@pytest.fixture
async def fake() -> AsyncIterator[FakeRedis]:
    async with FakeRedis() as server:
        yield server


def _client(port: int, path: str = "/0", reply_timeout: float = 5.0) -> RespClient:
    url = f"redis://127.0.0.1:{port}{path}"
    return RespClient(url, connect_timeout=2.0, reply_timeout=reply_timeout)


async def test_replies_split_at_every_byte_reach_their_callers_in_order(fake: FakeRedis) -> None:
    client = _client(fake.port)
    calls = [asyncio.ensure_future(client.execute("PING", str(i))) for i in range(len(EXPECTED))]
    await fake.wait_for(b"$1\r\n6\r\n")
    for i in range(len(PIPELINE)):
        await fake.answer(PIPELINE[i : i + 1])
    results = await asyncio.gather(*calls, return_exceptions=True)
    got = [str(r) if isinstance(r, ReplyError) else r for r in results]
    assert got == EXPECTED
    assert isinstance(results[5], ReplyError)
    await client.aclose()


async def test_a_caller_that_gives_up_does_not_shift_the_replies_after_it(fake: FakeRedis) -> None:
    client = _client(fake.port)
    first = asyncio.ensure_future(client.execute("GET", "first"))
    await fake.wait_for(b"first")
    first.cancel()
    second = asyncio.ensure_future(client.execute("GET", "second"))
    await fake.wait_for(b"second")
    await fake.answer(b"$5\r\nfirst\r\n$6\r\nsecond\r\n")
    assert await second == b"second"
    assert first.cancelled()
    await client.aclose()


async def test_a_stalled_connection_is_dropped_and_the_next_call_opens_another(
    fake: FakeRedis,
) -> None:
    client = _client(fake.port, reply_timeout=0.1)
    waiting = asyncio.ensure_future(client.execute("GET", "never"))
    await fake.wait_for(b"never")
    await asyncio.sleep(0.15)
    after = asyncio.ensure_future(client.execute("GET", "fresh"))
    with pytest.raises(ConnectionError):
        await waiting  # dropped with its connection, not left hanging
    await fake.wait_for(b"fresh")
    assert len(fake.writers) == 2
    await fake.answer(b"$2\r\nok\r\n", connection=1)
    assert await after == b"ok"
    await client.aclose()


@pytest.mark.parametrize("garbage", [b"?what\r\n", b":notanumber\r\n"], ids=str)
async def test_bytes_that_are_not_resp_drop_the_connection(fake: FakeRedis, garbage: bytes) -> None:
    client = _client(fake.port)
    call = asyncio.ensure_future(client.execute("PING", "one"))
    await fake.wait_for(b"one")
    await fake.answer(garbage)
    with pytest.raises(ProtocolError):
        await call
    await _next_call_uses_a_new_connection(client, fake)


async def test_a_reply_nobody_asked_for_drops_the_connection(fake: FakeRedis) -> None:
    client = _client(fake.port)
    call = asyncio.ensure_future(client.execute("PING", "one"))
    await fake.wait_for(b"one")
    await fake.answer(b"+PONG\r\n+unasked\r\n")
    assert await call == "PONG"
    await _next_call_uses_a_new_connection(client, fake)


async def _next_call_uses_a_new_connection(client: RespClient, fake: FakeRedis) -> None:
    call = asyncio.ensure_future(client.execute("PING", "two"))
    await fake.wait_for(b"two")
    assert len(fake.writers) == 2
    await fake.answer(b"+PONG\r\n", connection=1)
    assert await call == "PONG"
    await client.aclose()


async def test_a_reply_larger_than_the_buffer_drops_the_connection(
    fake: FakeRedis, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(resp, "MAX_BUFFER", 1000)
    client = _client(fake.port)
    call = asyncio.ensure_future(client.execute("GET", "big"))
    await fake.wait_for(b"big")
    await fake.answer(b"$100000\r\n" + b"x" * 5000)
    with pytest.raises(ProtocolError):
        await call
    await client.aclose()


async def test_password_user_and_database_are_sent_before_the_first_command(
    fake: FakeRedis,
) -> None:
    url = f"redis://bench:s%40cret@127.0.0.1:{fake.port}/3"
    client = RespClient(url, connect_timeout=2.0, reply_timeout=5.0)
    call = asyncio.ensure_future(client.execute("GET", "k"))
    await fake.wait_for(b"SELECT")
    assert bytes(fake.received) == pack(("AUTH", "bench", "s@cret")) + pack(("SELECT", 3))
    await fake.answer(b"+OK\r\n+OK\r\n")
    await fake.wait_for(b"GET")
    await fake.answer(b"$1\r\nv\r\n")
    assert await call == b"v"
    await client.aclose()


async def test_a_refused_password_fails_the_call(fake: FakeRedis) -> None:
    client = RespClient(
        f"redis://:wrong@127.0.0.1:{fake.port}/0", connect_timeout=2.0, reply_timeout=5.0
    )
    call = asyncio.ensure_future(client.execute("GET", "k"))
    await fake.wait_for(b"AUTH")
    await fake.answer(b"-WRONGPASS invalid username-password pair\r\n")
    with pytest.raises(ReplyError, match="WRONGPASS"):
        await call
    assert b"GET" not in fake.received
    await client.aclose()


async def test_against_redis_concurrent_commands_each_get_their_own_reply(
    redis_server: RedisServer,
) -> None:
    client = _client(redis_server.port, path="/5")
    await asyncio.gather(*(client.execute("SET", f"resp:{i}", i * 3) for i in range(500)))
    values = await asyncio.gather(*(client.execute("GET", f"resp:{i}") for i in range(500)))
    assert values == [str(i * 3).encode() for i in range(500)]
    with pytest.raises(ReplyError, match="WRONGTYPE"):
        await client.execute("HGET", "resp:1", "field")
    assert await client.execute("GET", "resp:2") == b"6"  # the error left the stream in step
    await client.aclose()
    # The database in the URL was selected.
    other = redis_py.Redis(port=redis_server.port, db=5)
    assert other.get("resp:7") == b"21"
    assert redis_py.Redis(port=redis_server.port, db=0).get("resp:7") is None


async def test_against_redis_nothing_listening_is_a_connection_error() -> None:
    client = _client(free_port(), reply_timeout=0.5)
    with pytest.raises(ConnectionError):
        await client.execute("PING")


@pytest.mark.parametrize(
    "url",
    [
        "redis://127.0.0.1:6380/3",
        "redis://user:p%40ss%2Fword@cache.internal/0",
        "rediss://:secret@cache.internal:6390?db=2&ssl_cert_reqs=none",
        "rediss://cache.internal/1?ssl_ca_certs=/etc/ssl/redis.pem",
        "unix:///run/redis.sock?db=4",
        "redis://localhost",
    ],
)
def test_urls_are_read_as_redis_py_reads_them(url: str) -> None:
    from redis.asyncio.connection import parse_url as redis_py_parse_url

    theirs = redis_py_parse_url(url)
    theirs.pop("connection_class", None)
    ours = resp.parse_url(url)
    assert ours == {"port": 6379, **theirs} if "host" in theirs else ours == theirs


def test_an_unknown_url_scheme_is_refused() -> None:
    with pytest.raises(ValueError, match="redis://"):
        resp.parse_url("http://cache.internal:6379")
