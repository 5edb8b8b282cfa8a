"""Bedrock's wire as the Bedrock mock speaks it, written independently of the gateway: the
test credentials, Bedrock's error answers, AWS event-stream framing (the mock's own encoder),
and the SigV4 check, done with botocore's signer."""

from __future__ import annotations

import base64
import calendar
import hashlib
import hmac
import json
import struct
import time
import zlib
from typing import Any

from aiohttp import web
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

REGION = "us-east-1"
ACCESS_KEY = "AKIAMOCKBEDROCK00001"
SECRET_KEY = "mock/Secret+Key/bedrock0000000000000000"
TEMP_ACCESS_KEY = "ASIAMOCKBEDROCKTEMP1"
TEMP_SECRET_KEY = "mock/Temporary+Secret/bedrock00000000000"
SESSION_TOKEN = "mock-session-token-0123456789"
API_KEY = "ABSKbedrock-mock-api-key-0123456789"
CONTAINER_TOKEN = "mock-container-authorization-token"
IMDS_TOKEN = "mock-imds-session-token"
KEYS = {ACCESS_KEY: (SECRET_KEY, None), TEMP_ACCESS_KEY: (TEMP_SECRET_KEY, SESSION_TOKEN)}


def bedrock_error(status: int, name: str, message: str) -> web.Response:
    headers = {"x-amzn-ErrorType": f"{name}:http://internal.amazon.com/coral/com.amazon.bedrock/"}
    return web.json_response({"message": message}, status=status, headers=headers)


# --- the event-stream framing, written independently of the gateway's decoder --------------------


def frame(headers: dict[str, str], payload: bytes) -> bytes:
    encoded = b""
    for name, value in headers.items():
        raw = value.encode()
        encoded += bytes([len(name)]) + name.encode() + b"\x07" + struct.pack(">H", len(raw)) + raw
    total = 16 + len(encoded) + len(payload)
    prelude = struct.pack(">II", total, len(encoded))
    message = prelude + struct.pack(">I", zlib.crc32(prelude)) + encoded + payload
    return message + struct.pack(">I", zlib.crc32(message))


def event_frame(event_type: str, payload: dict[str, Any]) -> bytes:
    # Bedrock pads events with a random-length "p" field; clients ignore it.
    body = json.dumps({**payload, "p": "abcdefgh"[: len(event_type) % 8]}).encode()
    headers = {":event-type": event_type, ":content-type": "application/json"}
    return frame({**headers, ":message-type": "event"}, body)


def exception_frame(name: str, message: str) -> bytes:
    headers = {":exception-type": name, ":content-type": "application/json"}
    return frame(
        {**headers, ":message-type": "exception"}, json.dumps({"message": message}).encode()
    )


def chunk_frame(event: dict[str, Any]) -> bytes:
    data = base64.b64encode(json.dumps(event).encode()).decode()
    return event_frame("chunk", {"bytes": data})


# --- SigV4, checked by botocore ------------------------------------------------------------------


def check_signature(request: web.Request, raw: bytes) -> web.Response | None:
    authorization = request.headers.get("authorization", "")
    if authorization.startswith("Bearer "):
        if authorization.removeprefix("Bearer ") != API_KEY:
            return bedrock_error(403, "UnrecognizedClientException", "Invalid API key.")
        return None
    if not authorization.startswith("AWS4-HMAC-SHA256 "):
        return bedrock_error(
            403, "MissingAuthenticationTokenException", "Missing Authentication Token"
        )
    fields = dict(
        part.strip().split("=", 1)
        for part in authorization.removeprefix("AWS4-HMAC-SHA256 ").split(",")
    )
    key_id, date, region, service, _ = fields["Credential"].split("/")
    if key_id not in KEYS:
        return bedrock_error(
            403,
            "UnrecognizedClientException",
            "The security token included in the request is invalid.",
        )
    secret, token = KEYS[key_id]
    if token is not None and request.headers.get("x-amz-security-token") != token:
        return bedrock_error(
            403,
            "UnrecognizedClientException",
            "The security token included in the request is invalid.",
        )
    if region != REGION or service != "bedrock":
        return bedrock_error(
            403,
            "InvalidSignatureException",
            f"Credential should be scoped to a valid region ({region}/{service}).",
        )
    amz_date = request.headers.get("x-amz-date", "")
    try:
        signed_at = calendar.timegm(time.strptime(amz_date, "%Y%m%dT%H%M%SZ"))
    except ValueError:
        return bedrock_error(403, "IncompleteSignatureException", "x-amz-date is missing.")
    if abs(time.time() - signed_at) > 300 or amz_date[:8] != date:
        return bedrock_error(403, "InvalidSignatureException", "Signature expired.")
    # Optional (AWS's SDKs send it for S3 only); when present it stands for the body in the
    # canonical request, so it must match the body itself.
    declared = request.headers.get("x-amz-content-sha256")
    if declared is not None and declared != hashlib.sha256(raw).hexdigest():
        return bedrock_error(
            400,
            "XAmzContentSHA256Mismatch",
            "The provided 'x-amz-content-sha256' header does not match.",
        )
    signed = fields["SignedHeaders"].split(";")
    if "host" not in signed or "x-amz-date" not in signed:
        return bedrock_error(
            403, "InvalidSignatureException", "host and x-amz-date must be signed."
        )
    url = f"http://{request.headers['host']}{request.raw_path}"
    aws_request = AWSRequest(
        method=request.method, url=url, data=raw, headers={h: request.headers[h] for h in signed}
    )
    aws_request.context["timestamp"] = amz_date
    signer = SigV4Auth(Credentials(key_id, secret, token), "bedrock", REGION)
    canonical = signer.canonical_request(aws_request)
    expected = signer.signature(signer.string_to_sign(aws_request, canonical), aws_request)
    if not hmac.compare_digest(expected, fields["Signature"]):
        return bedrock_error(
            403,
            "InvalidSignatureException",
            "The request signature we calculated does not match the signature you provided.",
        )
    return None
