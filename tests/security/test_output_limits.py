"""max_tokens has an upper bound: an absurd number is a 400; a number over what the model
can produce is cut to the deployment's known limit (the catalog's, or its config's), so
limits and budgets never reserve for tokens that cannot come."""

from __future__ import annotations

import httpx

from tests.support.gateway import MASTER_KEY

AUTH = {"authorization": f"Bearer {MASTER_KEY}"}


def _chat(gateway, **params):
    return httpx.post(
        f"{gateway.url}/v1/chat/completions",
        headers=AUTH,
        json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}], **params},
    )


def test_absurd_max_tokens_is_refused(gateway):
    for name in ("max_tokens", "max_completion_tokens"):
        response = _chat(gateway, **{name: 10**12})
        assert response.status_code == 400, response.text
        assert response.json()["error"]["param"] == name


def test_max_tokens_over_the_model_limit_is_cut_to_it(gateway, openai_mock):
    response = _chat(gateway, max_tokens=1_000_000)
    assert response.status_code == 200, response.text
    assert openai_mock.last.body["max_tokens"] == 16384  # gpt-4o-mini's documented maximum
    response = _chat(gateway, max_completion_tokens=500)
    assert response.status_code == 200
    assert openai_mock.last.body["max_completion_tokens"] == 500  # within: untouched
