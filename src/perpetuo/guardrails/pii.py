"""Personal data detectors: a pattern finds candidates, a validator confirms them.

Validation is what keeps precision up on near-misses: card numbers must pass Luhn and start
with an issued prefix, IBANs their country length and mod-97, Aadhaar numbers Verhoeff,
SSNs the SSA's issuing rules, phone numbers libphonenumber's numbering plans (through the
`phonenumbers` package, imported on first use), IPs the address grammar outside version
strings.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterator
from functools import lru_cache
from typing import Any

from perpetuo.guardrails import checksums
from perpetuo.guardrails.detector import Detector, Span

_EMAIL = re.compile(
    r"(?<![\w.%+-])[A-Za-z0-9][A-Za-z0-9._%+-]{0,63}@"
    r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,24}(?![\w-])"
)


def find_emails(text: str) -> Iterator[Span]:
    if "@" not in text:
        return
    for match in _EMAIL.finditer(text):
        yield match.span()


# 13-19 digits, optionally in groups separated by one space or dash.
_CARD = re.compile(r"(?<![\d.-])\d(?:[ -]?\d){12,18}(?![\d])")


def find_cards(text: str) -> Iterator[Span]:
    for match in _CARD.finditer(text):
        digits = re.sub(r"[ -]", "", match.group())
        if checksums.card_number_valid(digits):
            yield match.span()


_IBAN = re.compile(r"(?<![A-Za-z0-9])[A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,30}(?![A-Za-z0-9])")


def find_ibans(text: str) -> Iterator[Span]:
    for match in _IBAN.finditer(text):
        candidate = match.group()
        compact = candidate.replace(" ", "")
        if checksums.iban_valid(compact):
            yield match.span()
            continue
        # A longer run may hold a valid IBAN followed by another word: trim to its length.
        size = checksums.IBAN_LENGTHS.get(compact[:2])
        if size and len(compact) > size and checksums.iban_valid(compact[:size]):
            end, seen = match.start(), 0
            while seen < size:
                if candidate[end - match.start()] != " ":
                    seen += 1
                end += 1
            yield match.start(), end


_SSN = re.compile(r"(?<![\d-])(\d{3})([- ])(\d{2})\2(\d{4})(?![\d-])")


def find_ssns(text: str) -> Iterator[Span]:
    for match in _SSN.finditer(text):
        if checksums.ssn_valid(match[1], match[3], match[4]):
            yield match.span()


_AADHAAR = re.compile(r"(?<![\d-])[2-9]\d{3}([ -]?)\d{4}\1\d{4}(?![\d-])")


def find_aadhaar(text: str) -> Iterator[Span]:
    for match in _AADHAAR.finditer(text):
        if checksums.aadhaar_valid(re.sub(r"[ -]", "", match.group())):
            yield match.span()


_PAN = re.compile(r"(?<![A-Za-z0-9])[A-Z]{5}\d{4}[A-Z](?![A-Za-z0-9])")


def find_pans(text: str) -> Iterator[Span]:
    for match in _PAN.finditer(text):
        if checksums.pan_valid(match.group()):
            yield match.span()


_IPV4 = re.compile(r"(?<![\w.])(?:\d{1,3}\.){3}\d{1,3}(?![\w]|\.\d)")
_IPV6 = re.compile(r"(?<![\w:.])(?:[0-9A-Fa-f]{0,4}:){2,7}[0-9A-Fa-f]{0,4}(?![\w:])")
# A dotted quad right after these words is a version or build number, not an address.
_VERSION_CONTEXT = re.compile(
    r"(?:\bv|\bver\.?|\bversion|\brelease|\bbuild|\bupgrade to|\bpython|\bnode)\s*[:=]?\s*$",
    re.IGNORECASE,
)


def find_ips(text: str) -> Iterator[Span]:
    for match in _IPV4.finditer(text):
        try:
            ipaddress.IPv4Address(match.group())
        except ValueError:
            continue
        if _VERSION_CONTEXT.search(text[max(0, match.start() - 16) : match.start()]):
            continue
        yield match.span()
    if "::" not in text and text.count(":") < 5:
        return
    for match in _IPV6.finditer(text):
        candidate = match.group()
        if candidate.count(":") < 2 or not any(c.isalnum() for c in candidate):
            continue
        try:
            ipaddress.IPv6Address(candidate)
        except ValueError:
            continue
        yield match.span()


# Candidates: an optional +country code, then 7-15 digits in groups (spaces, dots, dashes,
# parentheses). libphonenumber then decides whether the number exists in a numbering plan.
_PHONE = re.compile(
    r"(?<![\w+.-])(?:\+\d{1,3}[ .-]?)?(?:\(\d{1,4}\)[ .-]?)?\d{1,5}(?:[ .-]?\d{1,5}){1,5}(?![\w])"
)
_DATE_LIKE = re.compile(r"^\d{4}[-./]\d{1,2}[-./]\d{1,2}$|^\d{1,2}[-./]\d{1,2}[-./]\d{2,4}$")
DEFAULT_PHONE_REGION = "US"  # for numbers written without +country code
_phonenumbers: Any = None


def _lib() -> Any:
    global _phonenumbers
    if _phonenumbers is None:
        import phonenumbers

        _phonenumbers = phonenumbers
    return _phonenumbers


def find_phones(text: str) -> Iterator[Span]:
    for match in _PHONE.finditer(text):
        candidate = match.group()
        digits = sum(c.isdigit() for c in candidate)
        if not 7 <= digits <= 15 or _DATE_LIKE.match(candidate):
            continue
        if candidate.count(".") >= 2 and not candidate.startswith("+"):
            continue  # 1.2.3.4-style dotted numbers are versions or addresses
        if _valid_phone(candidate):
            yield match.span()


@lru_cache(maxsize=4096)
def _valid_phone(candidate: str) -> bool:
    """libphonenumber's verdict (tens of µs), remembered: streams rescan the same text."""
    lib = _lib()
    region = None if candidate.startswith("+") else DEFAULT_PHONE_REGION
    try:
        return bool(lib.is_valid_number(lib.parse(candidate, region)))
    except lib.NumberParseException:
        return False


PII_DETECTORS: tuple[Detector, ...] = (
    Detector("email", "pii", 70, find_emails),
    Detector("iban", "pii", 65, find_ibans),
    Detector("credit_card", "pii", 60, find_cards),
    Detector("in_aadhaar", "pii", 55, find_aadhaar),
    Detector("us_ssn", "pii", 50, find_ssns),
    Detector("phone", "pii", 40, find_phones),
    Detector("ip_address", "pii", 35, find_ips),
    Detector("in_pan", "pii", 30, find_pans),
)
