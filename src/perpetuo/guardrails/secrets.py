"""Credential detectors: provider key formats, AWS access keys, PEM private keys, JWTs, and
generic high-entropy tokens.

Known formats are matched by their documented prefixes and alphabets. The generic detector
looks for long tokens mixing letters and digits with high Shannon entropy, and leaves alone
what is random but public: UUIDs, hex digests (commit ids, checksums), paths and URLs.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
from collections import Counter
from collections.abc import Iterator

from perpetuo.guardrails.detector import Detector, Span

_PROVIDER_KEY = re.compile(
    r"(?<![A-Za-z0-9_-])(?:"
    r"sk-ant-(?:api|admin)\d{2}-[A-Za-z0-9_-]{80,}"  # Anthropic
    r"|sk-(?:proj-|svcacct-|admin-)?[A-Za-z0-9_-]{32,}"  # OpenAI
    r"|gh[pousr]_[A-Za-z0-9]{36,255}"  # GitHub tokens
    r"|github_pat_[A-Za-z0-9_]{60,255}"  # GitHub fine-grained tokens
    r"|xox[abposr]-[A-Za-z0-9-]{10,250}"  # Slack
    r"|(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{24,247}"  # Stripe
    r"|AIza[0-9A-Za-z_-]{35}"  # Google API keys
    r"|hf_[A-Za-z]{34,40}"  # Hugging Face
    r"|glpat-[A-Za-z0-9_-]{20,}"  # GitLab
    r"|pk_[a-z][a-z0-9]{1,7}_[A-Za-z0-9_-]{40,100}"  # Perpetuo's own keys
    r")(?![A-Za-z0-9_-])"
)


def find_provider_keys(text: str) -> Iterator[Span]:
    for match in _PROVIDER_KEY.finditer(text):
        token = match.group()
        if token.startswith("sk-") and not any(c.isdigit() for c in token):
            continue  # "sk-" followed by a long hyphenated word is prose, not a key
        yield match.span()


_AWS_KEY = re.compile(r"(?<![A-Z0-9])(?:AKIA|ASIA|ABIA|ACCA|AROA|AIDA)[A-Z2-7]{16}(?![A-Z0-9])")


def find_aws_keys(text: str) -> Iterator[Span]:
    for match in _AWS_KEY.finditer(text):
        yield match.span()


_PEM = re.compile(
    r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----"
    r"(?:[\s\S]*?-----END (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----|[A-Za-z0-9+/=\s:-]*)"
)


def find_private_keys(text: str) -> Iterator[Span]:
    if "PRIVATE KEY" not in text:
        return
    for match in _PEM.finditer(text):
        start, end = match.span()
        while end > start and text[end - 1].isspace():
            end -= 1  # a truncated block ends at its last base64 line
        yield start, end


_JWT = re.compile(
    r"(?<![A-Za-z0-9_-])eyJ[A-Za-z0-9_-]{5,}\.eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{10,}(?![A-Za-z0-9_-])"
)


def find_jwts(text: str) -> Iterator[Span]:
    if "eyJ" not in text:
        return
    for match in _JWT.finditer(text):
        header = match.group().split(".", 1)[0]
        try:
            decoded = json.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4)))
        except (ValueError, binascii.Error):
            continue
        if isinstance(decoded, dict) and "alg" in decoded:
            yield match.span()


_TOKEN = re.compile(r"(?<![A-Za-z0-9+/_.-])[A-Za-z0-9+/_-]{20,}={0,2}(?![A-Za-z0-9+/_=.-])")
_HEX = re.compile(r"^[0-9a-fA-F]+$")
_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
MIN_ENTROPY = 4.0  # bits per character; English words and identifiers stay well below


def entropy(token: str) -> float:
    counts = Counter(token)
    size = len(token)
    return -sum(n / size * math.log2(n / size) for n in counts.values())


def find_high_entropy(text: str) -> Iterator[Span]:
    for match in _TOKEN.finditer(text):
        token = match.group()
        if _HEX.match(token) or _UUID.match(token.strip("-")):
            continue  # digests and identifiers are random but not secret
        if "/" in token and token.count("/") > 2:
            continue  # a path
        has_digit = any(c.isdigit() for c in token)
        has_upper = any(c.isupper() for c in token)
        has_lower = any(c.islower() for c in token)
        if not (has_digit and has_upper and has_lower):
            continue  # snake_case names, words, plain numbers
        threshold = min(MIN_ENTROPY, math.log2(len(token)) - 0.3)
        if entropy(token) >= threshold:
            yield match.span()


SECRET_DETECTORS: tuple[Detector, ...] = (
    Detector("private_key", "secrets", 100, find_private_keys),
    Detector("jwt", "secrets", 95, find_jwts),
    Detector("api_key", "secrets", 90, find_provider_keys),
    Detector("aws_access_key", "secrets", 85, find_aws_keys),
    Detector("high_entropy", "secrets", 10, find_high_entropy),
)
