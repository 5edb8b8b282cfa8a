"""AWS Signature Version 4 for one request, written to the published algorithm.

1. Canonical request: method, canonical URI, canonical query, canonical headers, signed
   header names, hex SHA-256 of the body, joined by newlines. For every service but S3 the
   URI's path segments are URI-encoded twice: the path already percent-encoded on the wire
   (a model id's `:` as `%3A`) is encoded again (`%253A`). Headers are lower-cased, values
   trimmed with inner runs of spaces collapsed, sorted by name; `host` is always signed.
2. String to sign: `AWS4-HMAC-SHA256`, the `x-amz-date` timestamp, the credential scope
   (`date/region/service/aws4_request`) and the hex SHA-256 of the canonical request.
3. Signing key: HMAC-SHA256 chained over date, region, service and `aws4_request`, starting
   from `AWS4` + secret key (cached per day, region and service: the chain is most of the
   cost). The signature is the hex HMAC of the string to sign under it.

The request carries `x-amz-date`, `x-amz-content-sha256`, `x-amz-security-token` for
temporary credentials, and `authorization` with the access key, scope, signed headers and
signature. Headers added after signing (the router's tracing headers) are simply unsigned.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from dataclasses import dataclass, field
from functools import lru_cache
from urllib.parse import quote, unquote

from perpetuo.transport.url import URL

ALGORITHM = "AWS4-HMAC-SHA256"
# Never signed: proxies and clients change them on the way (as AWS's own SDKs leave them out).
UNSIGNED = frozenset({"expect", "transfer-encoding", "user-agent", "x-amzn-trace-id"})


@dataclass(frozen=True, slots=True)
class AwsCredentials:
    access_key: str
    secret_key: str = field(repr=False)
    token: str | None = field(default=None, repr=False)  # temporary credentials only


def sign(
    method: str,
    url: URL,
    headers: list[tuple[str, str]],
    body: bytes,
    credentials: AwsCredentials,
    region: str,
    service: str,
    now: float | None = None,
) -> list[tuple[str, str]]:
    """`headers` plus the signing headers, for sending `body` to `url`."""
    amz_date = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now))
    payload_hash = hashlib.sha256(body).hexdigest()
    signed = [*headers, ("x-amz-date", amz_date), ("x-amz-content-sha256", payload_hash)]
    if credentials.token:
        signed.append(("x-amz-security-token", credentials.token))
    canonical, names = canonical_request(method, url, signed, payload_hash)
    scope = f"{amz_date[:8]}/{region}/{service}/aws4_request"
    to_sign = "\n".join(
        (ALGORITHM, amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest())
    )
    key = signing_key(credentials.secret_key, amz_date[:8], region, service)
    signature = hmac.digest(key, to_sign.encode(), "sha256").hex()
    authorization = (
        f"{ALGORITHM} Credential={credentials.access_key}/{scope}, "
        f"SignedHeaders={names}, Signature={signature}"
    )
    signed.append(("authorization", authorization))
    return signed


def canonical_request(
    method: str, url: URL, headers: list[tuple[str, str]], payload_hash: str
) -> tuple[str, str]:
    """(the canonical request, its signed header names joined by `;`)."""
    path, _, query = url.target.partition("?")
    values: dict[str, str] = {"host": url.origin.host_header}
    for name, value in headers:
        name = name.lower()
        if name in UNSIGNED or name == "host":
            continue
        value = " ".join(value.split()) if "  " in value or value != value.strip() else value
        values[name] = f"{values[name]},{value}" if name in values else value
    names = sorted(values)
    signed_names = ";".join(names)
    lines = "".join([f"{name}:{values[name]}\n" for name in names])
    canonical = (
        f"{method.upper()}\n{canonical_uri(path)}\n{canonical_query(query)}\n"
        f"{lines}\n{signed_names}\n{payload_hash}"
    )
    return canonical, signed_names


@lru_cache(maxsize=1024)
def canonical_uri(path: str) -> str:
    """The path encoded once more (each deployment's few paths are worked out once)."""
    return quote(path or "/", safe="/~")


def canonical_query(query: str) -> str:
    """Name=value pairs, each part URI-encoded once (RFC 3986 unreserved kept), sorted."""
    if not query:
        return ""
    pairs = []
    for item in query.split("&"):
        name, _, value = item.partition("=")
        pairs.append((_encode(unquote(name)), _encode(unquote(value))))
    return "&".join(f"{name}={value}" for name, value in sorted(pairs))


def _encode(text: str) -> str:
    return quote(text, safe="-_.~")


@lru_cache(maxsize=64)
def signing_key(secret: str, date: str, region: str, service: str) -> bytes:
    key = _hmac(f"AWS4{secret}".encode(), date)
    for part in (region, service, "aws4_request"):
        key = _hmac(key, part)
    return key


def _hmac(key: bytes, message: str) -> bytes:
    return hmac.digest(key, message.encode(), "sha256")
