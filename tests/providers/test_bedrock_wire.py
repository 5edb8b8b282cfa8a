"""Bedrock's wire layers: the AWS event-stream decoder and SigV4 signing.

Signatures are compared with botocore's signer (an independent implementation) and with the
`get-vanilla` case of AWS's SigV4 test suite; frames come from the mock's own encoder and
from hand-built bytes, never only from the gateway's encoder."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import struct
import uuid
import zlib
from collections.abc import AsyncIterator

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.eventstream import EventStreamBuffer

from perpetuo.providers.bedrock.eventstream import EventStreamParser, encode_message
from perpetuo.providers.bedrock.sigv4 import AwsCredentials, canonical_request, sign, signing_key
from perpetuo.providers.bedrock.stream import BedrockEventDecoder
from perpetuo.schema.errors import UpstreamError, UpstreamErrorKind
from perpetuo.transport.errors import ResponseTooLarge
from perpetuo.transport.url import URL
from tests.mocks.bedrock_wire import chunk_frame, event_frame, exception_frame, frame

K = UpstreamErrorKind
SECRET = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"


# --- event-stream framing --------------------------------------------------------------------


def test_messages_split_at_every_byte_are_decoded_once_complete():
    frames = [event_frame("messageStart", {"role": "assistant"}), frame({":x": "y"}, b"")]
    data = b"".join(frames)
    parser = EventStreamParser(1024)
    decoded = []
    for i in range(len(data)):
        decoded += parser.feed(data[i : i + 1])
        if i < len(frames[0]) - 1:
            assert decoded == []  # nothing until the first message's last byte
    parser.close()
    assert [m.headers for m in decoded] == [
        {
            ":event-type": "messageStart",
            ":content-type": "application/json",
            ":message-type": "event",
        },
        {":x": "y"},
    ]
    assert json.loads(decoded[0].payload)["role"] == "assistant"


def test_every_header_value_type():
    def header(name: str, kind: int, value: bytes) -> bytes:
        return bytes([len(name)]) + name.encode() + bytes([kind]) + value

    ident = uuid.uuid4().bytes
    headers = b"".join(
        [
            header("t", 0, b""),
            header("f", 1, b""),
            header("b", 2, struct.pack(">b", -3)),
            header("s", 3, struct.pack(">h", -300)),
            header("i", 4, struct.pack(">i", 70000)),
            header("l", 5, struct.pack(">q", 2**40)),
            header("a", 6, struct.pack(">H", 3) + b"\x00\x01\x02"),
            header("str", 7, struct.pack(">H", len("héy".encode())) + "héy".encode()),
            header("ts", 8, struct.pack(">q", 1_700_000_000_000)),
            header("u", 9, ident),
        ]
    )
    total = 16 + len(headers) + 2
    prelude = struct.pack(">II", total, len(headers))
    body = prelude + struct.pack(">I", zlib.crc32(prelude)) + headers + b"ok"
    message = EventStreamParser(1024).feed(body + struct.pack(">I", zlib.crc32(body)))[0]
    assert message.headers == {
        "t": True, "f": False, "b": -3, "s": -300, "i": 70000, "l": 2**40,
        "a": b"\x00\x01\x02", "str": "héy", "ts": 1_700_000_000_000, "u": ident,
    }  # fmt: skip
    assert message.payload == b"ok"


def test_gateway_encoder_is_read_by_botocore():
    data = encode_message({":event-type": "chunk", ":message-type": "event"}, b'{"a":1}')
    buffer = EventStreamBuffer()
    buffer.add_data(data)
    (message,) = list(buffer)
    assert message.headers[":event-type"] == "chunk" and message.payload == b'{"a":1}'


def test_prelude_corruption_is_refused_before_the_message_arrives():
    data = bytearray(event_frame("messageStart", {"role": "assistant"}))
    data[1] ^= 0x40  # the total length: the prelude's checksum no longer matches
    with pytest.raises(UpstreamError) as exc:
        EventStreamParser(1 << 20).feed(bytes(data[:12]))  # only the prelude is in
    assert exc.value.kind is K.BAD_RESPONSE
    assert "prelude checksum" in exc.value.message


def test_message_checksum_truncation_and_size_cap():
    good = event_frame("messageStop", {"stopReason": "end_turn"})
    damaged = good[:-1] + bytes([good[-1] ^ 1])
    with pytest.raises(UpstreamError, match="message checksum"):
        EventStreamParser(1024).feed(damaged)
    parser = EventStreamParser(1024)
    assert parser.feed(good[:-5]) == []
    with pytest.raises(UpstreamError, match="ended inside a message") as exc:
        parser.close()
    assert exc.value.kind is K.BAD_RESPONSE
    with pytest.raises(ResponseTooLarge):
        EventStreamParser(32).feed(good[:12])  # refused from the prelude alone


def test_impossible_lengths_are_corrupt_not_waited_for():
    prelude = struct.pack(">II", 20, 10)  # headers longer than the message allows
    with pytest.raises(UpstreamError, match="impossible lengths"):
        EventStreamParser(1024).feed(prelude + struct.pack(">I", zlib.crc32(prelude)))


async def _chunks(*parts: bytes) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


async def test_decoder_delivers_events_then_raises_the_streams_exception():
    data = b"".join(
        [
            event_frame("messageStart", {"role": "assistant"}),
            event_frame("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": "Hi"}}),
            exception_frame("throttlingException", "Too many tokens, slow down."),
        ]
    )
    decoder = BedrockEventDecoder(_chunks(data), 1 << 20, unwrap_chunks=False)
    events = []
    with pytest.raises(UpstreamError) as exc:
        async for event in decoder:
            events.append(event)
            if len(events) == 1:
                assert decoder.has_pending()  # the rest of the read is decoded already
    assert [e.event for e in events] == ["messageStart", "contentBlockDelta"]
    assert exc.value.kind is K.RATE_LIMIT
    assert exc.value.message == "Too many tokens, slow down."


async def test_decoder_unwraps_invoke_model_chunks():
    inner = {"type": "message_stop", "amazon-bedrock-invocationMetrics": {"inputTokenCount": 3}}
    decoder = BedrockEventDecoder(_chunks(chunk_frame(inner)), 1 << 20, unwrap_chunks=True)
    events = [event async for event in decoder]
    assert json.loads(events[0].data) == inner
    bad = event_frame("chunk", {"bytes": "not base64!"})
    with pytest.raises(UpstreamError, match="base64"):
        [e async for e in BedrockEventDecoder(_chunks(bad), 1 << 20, unwrap_chunks=True)]


# --- SigV4 -----------------------------------------------------------------------------------


def test_aws_test_suite_get_vanilla():
    url = URL.parse("https://example.amazonaws.com/")
    empty = hashlib.sha256(b"").hexdigest()
    canonical, names = canonical_request("GET", url, [("X-Amz-Date", "20150830T123600Z")], empty)
    assert names == "host;x-amz-date"
    scope = "20150830/us-east-1/service/aws4_request"
    digest = hashlib.sha256(canonical.encode()).hexdigest()
    to_sign = f"AWS4-HMAC-SHA256\n20150830T123600Z\n{scope}\n{digest}"
    key = signing_key(SECRET, "20150830", "us-east-1", "service")
    signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    assert signature == "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"


def botocore_signature(method: str, url: URL, headers: list[tuple[str, str]], body: bytes,
                       creds: AwsCredentials, region: str) -> str:  # fmt: skip
    sent = dict(headers)
    names = sent["authorization"].split("SignedHeaders=")[1].split(",")[0].split(";")
    request = AWSRequest(method=method, url=str(url), data=body)
    for name, value in headers:
        if name in names and name != "host":
            request.headers[name] = value  # appends: a repeated header keeps every value
    request.context["timestamp"] = sent["x-amz-date"]
    signer = SigV4Auth(
        Credentials(creds.access_key, creds.secret_key, creds.token), "bedrock", region
    )
    return signer.signature(
        signer.string_to_sign(request, signer.canonical_request(request)), request
    )


@pytest.mark.parametrize(
    ("target", "headers"),
    [
        ("/model/anthropic.claude-3-haiku-20240307-v1%3A0/converse", []),
        # An inference-profile ARN: its ':' and '/' travel encoded, and are encoded again.
        (
            "/model/arn%3Aaws%3Abedrock%3Aus-west-2%3A123456789012%3Ainference-profile"
            "%2Fus.anthropic.claude-3-5-sonnet-20241022-v2%3A0/invoke",
            [],
        ),
        ("/proxy/prefix/model/amazon.nova-lite-v1%3A0/converse-stream?b=2&a=x%20y&a=1", []),
        ("/model/m/converse", [("x-custom", "  spaced   out  value "), ("x-custom", "second")]),
    ],
)
def test_signatures_match_botocore(target, headers):
    url = URL.parse(f"https://bedrock-runtime.us-west-2.amazonaws.com{target}")
    body = b'{"messages":[{"role":"user","content":[{"text":"hi"}]}]}'
    creds = AwsCredentials("ASIAEXAMPLE", SECRET, "session/token+value")
    base = [("content-type", "application/json"), ("user-agent", "never signed"), *headers]
    signed = sign("POST", url, base, body, creds, "us-west-2", "bedrock")
    sent = dict(signed)
    assert sent["x-amz-security-token"] == "session/token+value"
    assert sent["x-amz-content-sha256"] == hashlib.sha256(body).hexdigest()
    assert "user-agent" not in sent["authorization"]
    ours = sent["authorization"].rsplit("Signature=", 1)[1]
    assert ours == botocore_signature("POST", url, signed, body, creds, "us-west-2")


def test_a_changed_byte_changes_the_signature():
    url = URL.parse("https://bedrock-runtime.us-east-1.amazonaws.com/model/m/converse")
    creds = AwsCredentials("AKIDEXAMPLE", SECRET)
    one = dict(sign("POST", url, [], b'{"a":1}', creds, "us-east-1", "bedrock", now=1.7e9))
    two = dict(sign("POST", url, [], b'{"a":2}', creds, "us-east-1", "bedrock", now=1.7e9))
    assert one["x-amz-date"] == "20231114T221320Z"
    assert one["authorization"] != two["authorization"]
    assert "x-amz-security-token" not in one


def test_the_secret_never_appears_in_what_is_sent():
    url = URL.parse("https://bedrock-runtime.us-east-1.amazonaws.com/model/m/converse")
    signed = sign("POST", url, [], b"{}", AwsCredentials("AKID", SECRET), "us-east-1", "bedrock")
    assert SECRET not in repr(signed)
    assert SECRET not in repr(AwsCredentials("AKID", SECRET, "tok"))
    assert base64.b64encode(SECRET.encode()).decode() not in repr(signed)
