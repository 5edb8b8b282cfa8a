"""A labelled corpus for the PII and secret detectors: sentences with the values each detector
must find, and near-misses it must leave alone (invalid check digits, version strings, UUIDs,
digests, dates, identifiers). `measure()` scores every detector on it; the tests hold the
scores up, and `python -m bench.guardrails --accuracy` prints them for docs/guardrails.md.

Secret-shaped values are generated from a fixed seed: they look like real credentials and
are not.
"""

from __future__ import annotations

import base64
import json
import random
import string
from dataclasses import dataclass

from perpetuo.guardrails.engine import scan
from perpetuo.guardrails.policy import PII, SECRETS

_rng = random.Random(20261124)


def _token(alphabet: str, size: int) -> str:
    return "".join(_rng.choice(alphabet) for _ in range(size))


ALNUM = string.ascii_letters + string.digits
URLSAFE = ALNUM + "-_"


def _b64(data: dict[str, object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


OPENAI_KEY = "sk-proj-" + _token(URLSAFE, 48)
OPENAI_LEGACY = "sk-" + _token(ALNUM, 48)
ANTHROPIC_KEY = "sk-ant-api03-" + _token(URLSAFE, 93) + "AA"
GITHUB_TOKEN = "ghp_" + _token(ALNUM, 36)
SLACK_TOKEN = (
    "xoxb-" + "-".join(_token(string.digits, 12) for _ in range(2)) + "-" + _token(ALNUM, 24)
)
STRIPE_KEY = "sk_live_" + _token(ALNUM, 32)
GOOGLE_KEY = "AIza" + _token(URLSAFE, 35)
PERPETUO_KEY = "pk_live_" + _token(URLSAFE, 43)
AWS_KEY = "AKIA" + _token(string.ascii_uppercase + "234567", 16)
JWT = ".".join(
    (
        _b64({"alg": "HS256", "typ": "JWT"}),
        _b64({"sub": "1234567890", "name": "A Person", "iat": 1516239022}),
        _token(URLSAFE, 43),
    )
)
PEM = (
    "-----BEGIN RSA PRIVATE KEY-----\n"
    + "\n".join(_token(ALNUM + "+/", 64) for _ in range(4))
    + "\n-----END RSA PRIVATE KEY-----"
)
GENERIC_TOKENS = [_token(ALNUM, 32), _token(ALNUM, 40), _token(ALNUM + "+/", 28) + "=="]


@dataclass(frozen=True)
class Sample:
    text: str
    expected: dict[str, tuple[str, ...]]  # detector -> exact values it must find


def S(text: str, **expected: str | tuple[str, ...]) -> Sample:
    return Sample(text, {k: (v,) if isinstance(v, str) else v for k, v in expected.items()})


CORPUS: list[Sample] = [
    # -- email ------------------------------------------------------------------------------
    S("Write to alice@example.com for access.", email="alice@example.com"),
    S(
        "cc: bob.smith+billing@mail.example.co.uk, thanks",
        email="bob.smith+billing@mail.example.co.uk",
    ),
    S("Reply-To: <support_team@acme-corp.io>", email="support_team@acme-corp.io"),
    S("Mention @alice in the channel; the host is user@localhost."),
    S("Decorators like @app.route('/x') and email-like text a@b are fine."),
    # -- phone ------------------------------------------------------------------------------
    S("Call +44 20 7946 0958 after nine.", phone="+44 20 7946 0958"),
    S("Our US office: (415) 555-2671.", phone="(415) 555-2671"),
    S("Mobile +91 98765 43210, landline +49 30 901820", phone=("+91 98765 43210", "+49 30 901820")),
    S(
        "Paris: +33 1 42 68 53 00; Tokyo +81 3-1234-5678",
        phone=("+33 1 42 68 53 00", "+81 3-1234-5678"),
    ),
    S(
        "Sydney +61 2 9374 4000 or São Paulo +55 11 3230-4000",
        phone=("+61 2 9374 4000", "+55 11 3230-4000"),
    ),
    S("Reach me at 650-253-0000 tomorrow", phone="650-253-0000"),
    S("Released 2024-05-01, build 10.0.19041.1, order 123456789, port 8080."),
    S("The ratio was 3.14159 and the total 1,234,567 units in 12 months."),
    # -- credit card ------------------------------------------------------------------------
    S("Card 4111 1111 1111 1111 exp 12/29", credit_card="4111 1111 1111 1111"),
    S("Pay with 5555-5555-5555-4444 please", credit_card="5555-5555-5555-4444"),
    S("Amex 378282246310005 on file", credit_card="378282246310005"),
    S(
        "JCB 3530111333300000 and Discover 6011000990139424",
        credit_card=("3530111333300000", "6011000990139424"),
    ),
    S("Invalid: 4111 1111 1111 1112 and 1234 5678 9012 3456 fail Luhn."),
    S("Tracking number 9400111899223817456123 is not a card."),
    # -- IBAN -------------------------------------------------------------------------------
    S("IBAN: GB82 WEST 1234 5698 7654 32", iban="GB82 WEST 1234 5698 7654 32"),
    S("Wire to DE89370400440532013000 today", iban="DE89370400440532013000"),
    S(
        "FR14 2004 1010 0505 0001 3M02 606 and NL91ABNA0417164300",
        iban=("FR14 2004 1010 0505 0001 3M02 606", "NL91ABNA0417164300"),
    ),
    S("Bad checksum GB82 WEST 1234 5698 7654 33; too short DE8937040044053201300."),
    # -- US SSN -----------------------------------------------------------------------------
    S("SSN 536-22-8888 on the form", us_ssn="536-22-8888"),
    S("Employee 401-33-1234, spouse 772 10 4567", us_ssn=("401-33-1234", "772 10 4567")),
    S("Never issued: 000-12-3456, 666-12-3456, 912-34-5678, 536-00-1234, 536-22-0000."),
    S("The famous wallet card 078-05-1120 is void."),
    # -- Aadhaar ----------------------------------------------------------------------------
    S("Aadhaar 7181 9093 7865 verified", in_aadhaar="7181 9093 7865"),
    S("UID 997543231948 and 9601-8955-5979", in_aadhaar=("997543231948", "9601-8955-5979")),
    S("Wrong check digit 7181 9093 7866; starts with one 1181 9093 7865."),
    # -- PAN --------------------------------------------------------------------------------
    S("PAN ABCPE1234F for the return", in_pan="ABCPE1234F"),
    S("Company PAN AAACB1234K", in_pan="AAACB1234K"),
    S("Codes ABCXE1234F and ABCPE0000F and HELLOWORLD1 are not PANs."),
    # -- IP address -------------------------------------------------------------------------
    S("Server at 192.168.1.20 and DNS 8.8.8.8", ip_address=("192.168.1.20", "8.8.8.8")),
    S(
        "IPv6 2001:db8::1 and fe80::1ff:fe23:4567:890a",
        ip_address=("2001:db8::1", "fe80::1ff:fe23:4567:890a"),
    ),
    S("Upgrade to version 1.2.3.4, or v2.0.0.1; 256.1.1.1 and 1.2.3.4.5 are no addresses."),
    S("The meeting is at 12:30:45 in room 10.2."),
    # -- provider keys ----------------------------------------------------------------------
    S(f"export OPENAI_API_KEY={OPENAI_KEY}", api_key=OPENAI_KEY),
    S(f"old key {OPENAI_LEGACY} leaked", api_key=OPENAI_LEGACY),
    S(f"anthropic: {ANTHROPIC_KEY}", api_key=ANTHROPIC_KEY),
    S(f"token {GITHUB_TOKEN} and slack {SLACK_TOKEN}", api_key=(GITHUB_TOKEN, SLACK_TOKEN)),
    S(f"stripe {STRIPE_KEY}, google {GOOGLE_KEY}", api_key=(STRIPE_KEY, GOOGLE_KEY)),
    S(f"gateway key {PERPETUO_KEY}", api_key=PERPETUO_KEY),
    S("Run sk-learn-style-preprocessing-pipeline-for-the-dataset-now and see sk-1."),
    # -- AWS --------------------------------------------------------------------------------
    S(f"aws_access_key_id = {AWS_KEY}", aws_access_key=AWS_KEY),
    S("The docs' AKIAIOSFODNN7EXAMPLE", aws_access_key="AKIAIOSFODNN7EXAMPLE"),
    S("AKIA1234 is too short and AKIAIOSFODNN7EXAMPL too."),
    # -- private keys -----------------------------------------------------------------------
    S(f"key file:\n{PEM}\nend", private_key=PEM),
    S("-----BEGIN PUBLIC KEY----- is public, and so is a CERTIFICATE block."),
    # -- JWT --------------------------------------------------------------------------------
    S(f"Authorization: Bearer {JWT}", jwt=JWT),
    S("eyJhbGciOiJIUzI1NiJ9 alone is only a header; eyJub3QiOiJhIGp3dCJ9.e30.c2ln is short."),
    # -- generic high-entropy tokens ----------------------------------------------------------
    S(f"secret={GENERIC_TOKENS[0]}", high_entropy=GENERIC_TOKENS[0]),
    S(f"client_secret: {GENERIC_TOKENS[1]}", high_entropy=GENERIC_TOKENS[1]),
    S(f"password {GENERIC_TOKENS[2]} rotate", high_entropy=GENERIC_TOKENS[2]),
    S(
        "request 123e4567-e89b-12d3-a456-426614174000 and commit 3f786850e387550fdab836ed7e6dc881de23001b"
    ),
    S("sha256 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08 checks out"),
    S("Names like get_user_profile_settings_v2 and Donaudampfschifffahrtsgesellschaft."),
    S("Path /usr/local/lib/python3.11/site-packages/numpy and https://example.com/a/b/c?x=1"),
    S("Base64 of 'hello world hello world': aGVsbG8gd29ybGQgaGVsbG8gd29ybGQ="),
    S(
        "aws_secret_access_key=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        high_entropy="wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    ),
    # -- hard cases, kept to keep the figures honest (known misses and false alarms) -----------
    S("UK national format 020 7946 0958 without the country code", phone="020 7946 0958"),
    S("Write to josé@exämple.com", email="josé@exämple.com"),
    S("Dotted card 4111.1111.1111.1111", credit_card="4111.1111.1111.1111"),
    S("Software 1.2.3.4 shipped last week."),
    S("Class names such as ThisIsMyVeryLongPascalCaseName2024 and HttpRequestHandlerV2Impl."),
    S("Call 4155552671 now", phone="4155552671"),
]

DETECTORS = (*PII, *SECRETS)


@dataclass
class Score:
    tp: int = 0
    fp: int = 0
    fn: int = 0

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 1.0


ALL = dict.fromkeys(DETECTORS, "log")


def measure() -> dict[str, Score]:
    """True/false positives and misses per detector, with every detector on at once (as a
    policy runs them: an overlap goes to the more specific detector)."""
    scores = {name: Score() for name in DETECTORS}
    for sample in CORPUS:
        findings = scan(sample.text, ALL)
        for name in DETECTORS:
            found = [sample.text[f.start : f.end] for f in findings if f.detector == name]
            expected = list(sample.expected.get(name, ()))
            score = scores[name]
            for value in found:
                if value in expected:
                    score.tp += 1
                    expected.remove(value)
                else:
                    score.fp += 1
            score.fn += len(expected)
    return scores


def table() -> str:
    lines = ["| detector | positives | true pos. | false pos. | missed | precision | recall |"]
    lines.append("|---|---:|---:|---:|---:|---:|---:|")
    for name, s in measure().items():
        lines.append(
            f"| {name} | {s.tp + s.fn} | {s.tp} | {s.fp} | {s.fn} | {s.precision:.2f} | {s.recall:.2f} |"
        )
    return "\n".join(lines)
