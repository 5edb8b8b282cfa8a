"""Upstream 4xx messages reach the client only as error.message/type/param/code, with
passwords, cloud keys, bearer tokens, provider keys and file paths masked."""

from __future__ import annotations

import httpx

from perpetuo.guardrails.scrub import scrub
from tests.mocks.server import Fault
from tests.support.gateway import MASTER_KEY

LEAKY = (
    "Invalid request: user=svc password=hunter2 rejected; AKIAIOSFODNN7EXAMPLE lacks access; "
    "see /srv/app/config/settings.py; retry with Bearer abcdef123456789; "
    "sk-proj-AbCdEf0123456789AbCdEf0123456789xyz is not valid"
)


def test_scrub_masks_each_kind_and_leaves_prose():
    out = scrub(LEAKY)
    for secret in ("hunter2", "AKIAIOSFODNN7EXAMPLE", "/srv/app", "abcdef123456789", "sk-proj"):
        assert secret not in out
    assert "Invalid request" in out and "lacks access" in out
    plain = "Invalid value for 'max_tokens': must be at most 4096 (model gpt-4o/mini)."
    assert scrub(plain) == plain


def test_a_leaky_upstream_400_is_scrubbed_and_reduced(gateway, openai_mock):
    openai_mock.fail_next(
        Fault(
            status=400,
            body={
                "error": {
                    "message": LEAKY,
                    "type": "invalid_request_error",
                    "param": "messages password=hunter2",
                    "code": "bad_thing",
                    "internal": {"host": "10.0.0.7", "trace": "/opt/upstream/app.py:12"},
                },
                "debug": "token=abc123secret",
            },
        )
    )
    response = httpx.post(
        f"{gateway.url}/v1/chat/completions",
        headers={"authorization": f"Bearer {MASTER_KEY}"},
        json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "x"}]},
    )
    assert response.status_code == 400
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"message", "type", "param", "code"}
    text = response.text
    for secret in ("hunter2", "AKIAIOSFODNN7EXAMPLE", "/srv/app", "10.0.0.7", "abc123secret"):
        assert secret not in text, text
    assert body["error"]["code"] == "bad_thing"
