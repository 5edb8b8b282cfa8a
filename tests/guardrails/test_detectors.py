"""Detectors on the labelled corpus, and the validators behind them."""

from __future__ import annotations

import pytest

from perpetuo.guardrails import checksums
from perpetuo.guardrails.engine import Vault, scan, transform
from tests.guardrails.corpus import ALL, CORPUS, measure

# Floors for the corpus figures (docs/guardrails.md reports the exact numbers).
PRECISION_FLOOR, RECALL_FLOOR = 0.8, 0.75


def test_every_detector_meets_its_floor_on_the_corpus():
    scores = measure()
    assert set(scores) == {
        "email", "phone", "credit_card", "iban", "us_ssn", "in_aadhaar", "in_pan",
        "ip_address", "api_key", "aws_access_key", "private_key", "jwt", "high_entropy",
    }  # fmt: skip
    for name, score in scores.items():
        assert score.tp > 0, name
        assert score.precision >= PRECISION_FLOOR, (name, score)
        assert score.recall >= RECALL_FLOOR, (name, score)


@pytest.mark.parametrize(
    "text",
    [
        "4111 1111 1111 1112",  # fails Luhn
        "GB82 WEST 1234 5698 7654 33",  # fails mod-97
        "7181 9093 7866",  # fails Verhoeff
        "666-12-3456",  # never-issued SSN area
        "upgrade to version 1.2.3.4",  # a version, not an address
        "123e4567-e89b-12d3-a456-426614174000",  # a UUID, not a token
        "3f786850e387550fdab836ed7e6dc881de23001b",  # a commit id
        "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",  # random hex
        "ABCXE1234F",  # PAN with an unknown holder type
        "released 2024-05-01",
    ],
)
def test_near_misses_are_left_alone(text):
    assert scan(text, ALL) == []


def test_redaction_uses_typed_numbered_placeholders_and_reuses_them():
    text = "a@example.com, b@example.com, again a@example.com, card 4111 1111 1111 1111"
    findings = scan(text, {"email": "redact", "credit_card": "redact"})
    vault = Vault()
    out = transform(text, findings, vault, restorable=True)
    assert out == "<EMAIL_1>, <EMAIL_2>, again <EMAIL_1>, card <CREDIT_CARD_1>"
    assert vault.restore("Reply to <EMAIL_2> about <CREDIT_CARD_1>") == (
        "Reply to b@example.com about 4111 1111 1111 1111"
    )
    assert vault.restore("<EMAIL_9> stays") == "<EMAIL_9> stays"


def test_values_the_model_produced_are_not_restored():
    vault = Vault()
    own = vault.placeholder("EMAIL", "me@example.com", restorable=True)
    model = vault.placeholder("EMAIL", "other@example.com", restorable=False)
    assert vault.restore(f"{own} {model}") == f"me@example.com {model}"


def test_overlaps_go_to_the_more_specific_detector():
    findings = scan("key sk_live_" + "a1B2c3D4e5F6g7H8i9J0k1L2m3", ALL)
    assert [f.detector for f in findings] == ["api_key"]


def test_checksum_vectors():
    assert checksums.luhn_valid("79927398713") and not checksums.luhn_valid("79927398710")
    assert checksums.card_number_valid("4012888888881881")
    assert not checksums.card_number_valid("0000000000000000")  # Luhn-valid, never issued
    assert checksums.iban_valid("CH9300762011623852957")
    assert not checksums.iban_valid("CH9300762011623852958")
    assert not checksums.iban_valid("XX9300762011623852957")
    assert checksums.verhoeff_valid("2363") and not checksums.verhoeff_valid("2364")
    assert checksums.aadhaar_valid("997543231948")
    assert not checksums.aadhaar_valid("123456789012")
    assert checksums.ssn_valid("536", "22", "8888")
    assert not checksums.ssn_valid("900", "22", "8888")
    assert not checksums.ssn_valid("078", "05", "1120")
    assert checksums.pan_valid("AAACB1234K") and not checksums.pan_valid("AAAXB1234K")


def test_corpus_texts_have_no_unlabelled_surprises():
    """Every finding on the corpus is labelled, except the documented hard cases."""
    known_false_alarms = {"1.2.3.4", "ThisIsMyVeryLongPascalCaseName2024"}
    for sample in CORPUS:
        for finding in scan(sample.text, ALL):
            value = sample.text[finding.start : finding.end]
            labelled = value in sample.expected.get(finding.detector, ())
            assert labelled or value in known_false_alarms, (finding.detector, value)
