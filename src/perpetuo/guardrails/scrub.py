"""Scrubbing text the gateway passes on from elsewhere (upstream error messages): credentials
found by the secret detectors, `password=…`-style assignments, bearer tokens and file paths
are masked before the text reaches a client or a log line."""

from __future__ import annotations

import re

from perpetuo.guardrails.secrets import SECRET_DETECTORS

_ASSIGNMENT = re.compile(
    r"(?i)\b(password|passwd|pwd|secret|token|api[_-]?key|access[_-]?key|key|auth|"
    r"authorization|credential|signature|sig)(\s*[=:]\s*)(\"[^\"]*\"|'[^']*'|[^\s,;&\"')]+)"
)
_BEARER = re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=\-]{6,}")
# Absolute paths with at least two segments (Unix, or a Windows drive): they tell an attacker
# about the upstream's or the gateway's file system.
_PATH = re.compile(r"(?<![\w:/.])(?:/[\w.\-]+){2,}/?|\b[A-Za-z]:\\(?:[\w.\- ]+\\?)+")
# Key prefixes, even when shortened or partly starred (providers echo "sk-ant-api03-ab...yz"),
# which the detectors (built for whole keys in prompts) rightly do not flag.
_KEY_PREFIX = re.compile(
    r"\b(?:sk-(?:ant-|proj-)?[A-Za-z0-9_\-*.]{6,}|AIza[0-9A-Za-z_\-*.]{10,}"
    r"|(?:pk|sk|rk)_(?:live|test)_[A-Za-z0-9_*.]{6,}|(?:AKIA|ASIA)[A-Z0-9*.]{8,})"
)
_URL_CREDENTIALS = re.compile(r"(?i)\b([a-z][a-z0-9+.\-]*://)[^/\s:@]+:[^/\s@]+@")
REDACTED = "[redacted]"


def scrub(text: str) -> str:
    """`text` with credentials and paths masked; cheap when there is nothing to mask."""
    if not text:
        return text
    text = _URL_CREDENTIALS.sub(rf"\1{REDACTED}@", text)
    text = _ASSIGNMENT.sub(rf"\1\2{REDACTED}", text)
    text = _BEARER.sub(rf"\1 {REDACTED}", text)
    text = _KEY_PREFIX.sub(REDACTED, text)
    spans = sorted(
        (span for detector in SECRET_DETECTORS for span in detector.find(text)),
        key=lambda span: span[0],
    )
    if spans:
        pieces, last = [], 0
        for start, end in spans:
            if start < last:
                continue  # overlaps the previous finding
            pieces += [text[last:start], REDACTED]
            last = end
        text = "".join(pieces) + text[last:]
    return _PATH.sub("[path]", text)
