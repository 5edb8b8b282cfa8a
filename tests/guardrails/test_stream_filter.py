"""Streamed output: findings split over any number of deltas are caught whole."""

from __future__ import annotations

import random

import pytest

from perpetuo.guardrails.engine import GuardrailBlocked, Report, Vault
from perpetuo.guardrails.stream import StreamFilter
from tests.guardrails.corpus import AWS_KEY, JWT, OPENAI_KEY, PEM

TEXT = (
    f"Here is the config. Key: {OPENAI_KEY} and the AWS id {AWS_KEY}. Mail "
    f"alice@example.com or call +44 20 7946 0958. Token {JWT}. Card 4111 1111 1111 1111.\n"
    f"{PEM}\nThat is all, thank you."
)
ACTIONS = {
    "api_key": "redact",
    "aws_access_key": "redact",
    "email": "redact",
    "phone": "redact",
    "jwt": "redact",
    "credit_card": "redact",
    "private_key": "redact",
}
EXPECTED = (
    "Here is the config. Key: <API_KEY_1> and the AWS id <AWS_ACCESS_KEY_1>. Mail "
    "<EMAIL_1> or call <PHONE_1>. Token <JWT_1>. Card <CREDIT_CARD_1>.\n"
    "<PRIVATE_KEY_1>\nThat is all, thank you."
)


def run(pieces: list[str], actions: dict = ACTIONS) -> tuple[list[str], Report]:
    report = Report()
    stream = StreamFilter(actions, Vault(), report)
    out = [stream.push(0, piece) for piece in pieces]
    out.append(stream.flush(0))
    return out, report


@pytest.mark.parametrize("seed", range(25))
def test_random_splits_give_the_same_redaction_as_the_whole_text(seed):
    rng = random.Random(seed)
    cuts = sorted(rng.sample(range(1, len(TEXT)), rng.randint(5, 120)))
    pieces = [TEXT[a:b] for a, b in zip([0, *cuts], [*cuts, len(TEXT)], strict=True)]
    out, report = run(pieces)
    assert "".join(out) == EXPECTED
    assert sum(report.counts.values()) == 7


def test_character_by_character():
    out, _ = run(list(TEXT))
    assert "".join(out) == EXPECTED
    for piece in out:
        assert OPENAI_KEY[:12] not in piece and "4111 1111" not in piece


def test_text_is_released_as_soon_as_it_is_safe():
    stream = StreamFilter(ACTIONS, Vault(), Report())
    long_prose = "word " * 40
    released = stream.push(0, long_prose)
    assert 0 < len(released) < len(long_prose)  # most of it goes at once, a tail waits
    assert released + stream.flush(0) == long_prose


def test_a_blocked_finding_raises_before_any_of_it_is_sent():
    report = Report()
    stream = StreamFilter({"api_key": "block"}, Vault(), report)
    sent = []
    with pytest.raises(GuardrailBlocked) as caught:
        for piece in ["Sure, use ", OPENAI_KEY[:10], OPENAI_KEY[10:30], OPENAI_KEY[30:], " now."]:
            sent.append(stream.push(0, piece))
        stream.flush(0)
    assert caught.value.detector == "api_key"
    assert report.blocked == ("output", "api_key")
    assert OPENAI_KEY[:8] not in "".join(sent)


def test_choices_are_independent_slots():
    stream = StreamFilter({"email": "redact"}, Vault(), Report())
    a = stream.push(0, "to alice@exa") + stream.push(1, "to bob@exa")
    a += stream.push(0, "mple.com ok") + stream.push(1, "mple.com ok")
    rest = stream.flush(0) + stream.flush(1)
    assert (a + rest).count("<EMAIL_") == 2 and "@" not in a + rest
