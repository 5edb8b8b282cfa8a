"""Gemini adapter, answers: GenerateContentResponse bodies and Google errors, translated."""

from __future__ import annotations

import json
from typing import Any

import pytest

from perpetuo.providers.base import Target
from perpetuo.providers.gemini import GeminiAdapter
from perpetuo.providers.gemini.toolids import make_call_id, signature_of
from perpetuo.schema.errors import UpstreamError, UpstreamErrorKind
from perpetuo.transport.url import URL

K = UpstreamErrorKind
ADAPTER = GeminiAdapter()
TARGET = Target(
    "g", "gemini", "gemini-2.0-flash", URL.parse("https://generativelanguage.googleapis.com")
)


def answer(data: dict[str, Any]) -> dict[str, Any]:
    return ADAPTER.chat_response(json.dumps(data).encode(), TARGET)


def candidate(parts: list[dict[str, Any]], reason: str = "STOP", index: int = 0) -> dict:
    return {"content": {"role": "model", "parts": parts}, "finishReason": reason, "index": index}


def test_text_answer():
    body = answer(
        {
            "candidates": [candidate([{"text": "Hello"}, {"text": ", world"}])],
            "usageMetadata": {
                "promptTokenCount": 10,
                "candidatesTokenCount": 4,
                "totalTokenCount": 14,
            },
            "modelVersion": "gemini-2.0-flash-001",
            "responseId": "resp-abc",
        }
    )
    assert body["id"] == "resp-abc" and body["object"] == "chat.completion"
    assert body["model"] == "gemini-2.0-flash-001"
    assert body["choices"] == [
        {
            "index": 0,
            "message": {"role": "assistant", "content": "Hello, world", "refusal": None},
            "logprobs": None,
            "finish_reason": "stop",
        }
    ]
    assert body["usage"]["prompt_tokens"] == 10 and body["usage"]["total_tokens"] == 14


def test_thoughts_are_hidden_and_counted_as_reasoning_with_cached_prompt_tokens():
    body = answer(
        {
            "candidates": [candidate([{"text": "plan...", "thought": True}, {"text": "42"}])],
            "usageMetadata": {
                "promptTokenCount": 100,
                "cachedContentTokenCount": 60,
                "toolUsePromptTokenCount": 5,
                "candidatesTokenCount": 2,
                "thoughtsTokenCount": 30,
                "totalTokenCount": 137,
            },
        }
    )
    assert body["choices"][0]["message"]["content"] == "42"
    assert body["model"] == "gemini-2.0-flash"  # no modelVersion: the deployment's model
    assert body["id"].startswith("chatcmpl-")
    usage = body["usage"]
    assert (usage["prompt_tokens"], usage["completion_tokens"], usage["total_tokens"]) == (
        105,
        32,
        137,
    )
    assert usage["prompt_tokens_details"]["cached_tokens"] == 60
    assert usage["completion_tokens_details"]["reasoning_tokens"] == 30


def test_no_usage_metadata_means_no_usage():
    assert "usage" not in answer({"candidates": [candidate([{"text": "x"}])]})


def test_function_calls_become_tool_calls_with_stable_ids():
    data = {
        "candidates": [
            candidate(
                [
                    {"text": "Let me check."},
                    {
                        "functionCall": {"name": "get_weather", "args": {"city": "Köln"}},
                        "thoughtSignature": "c2ln",
                    },
                    {"functionCall": {"name": "get_time"}},
                    {"functionCall": {"id": "fc-7", "name": "get_date", "args": {}}},
                ]
            )
        ],
        "responseId": "r1",
    }
    message = answer(data)["choices"][0]["message"]
    assert answer(data)["choices"][0]["message"] == message  # same response, same ids
    calls = message["tool_calls"]
    assert message["content"] == "Let me check."
    assert [c["function"]["name"] for c in calls] == ["get_weather", "get_time", "get_date"]
    assert json.loads(calls[0]["function"]["arguments"]) == {"city": "Köln"}
    assert calls[1]["function"]["arguments"] == "{}"
    assert signature_of(calls[0]["id"]) == "c2ln" and signature_of(calls[1]["id"]) is None
    assert calls[0]["id"].startswith("call_") and calls[0]["id"] != calls[1]["id"]
    assert calls[2]["id"] == "fc-7"  # an id the API gave is kept
    assert answer(data)["choices"][0]["finish_reason"] == "tool_calls"


def test_candidates_become_choices_in_index_order():
    unindexed = {"content": {"parts": [{"text": "a"}]}}  # protobuf JSON omits index 0
    body = answer({"candidates": [candidate([{"text": "b"}], index=1), unindexed]})
    assert [(c["index"], c["message"]["content"]) for c in body["choices"]] == [(0, "a"), (1, "b")]
    body = answer({"candidates": [unindexed, {"content": {"parts": [{"text": "b"}]}}]})
    assert [c["index"] for c in body["choices"]] == [0, 1]  # none numbered: their order
    body = answer({"candidates": [candidate([{"text": "b"}], index=1), candidate([{"text": "a"}])]})
    assert [(c["index"], c["message"]["content"]) for c in body["choices"]] == [
        (0, "a"),
        (1, "b"),
    ]


@pytest.mark.parametrize(
    ("reason", "expected"),
    [
        ("STOP", "stop"),
        ("MAX_TOKENS", "length"),
        ("SAFETY", "content_filter"),
        ("RECITATION", "content_filter"),
        ("BLOCKLIST", "content_filter"),
        ("PROHIBITED_CONTENT", "content_filter"),
        ("SPII", "content_filter"),
        ("IMAGE_SAFETY", "content_filter"),
        ("MALFORMED_FUNCTION_CALL", "stop"),
        ("OTHER", "stop"),
    ],
)
def test_finish_reasons(reason, expected):
    assert (
        answer({"candidates": [candidate([{"text": "x"}], reason)]})["choices"][0]["finish_reason"]
        == expected
    )


def test_safety_stop_without_content():
    blocked = {"finishReason": "SAFETY", "index": 0, "safetyRatings": [{"blocked": True}]}
    choice = answer({"candidates": [blocked]})["choices"][0]
    assert choice["message"]["content"] is None
    assert choice["finish_reason"] == "content_filter"


def test_blocked_prompt_is_a_content_policy_error():
    with pytest.raises(UpstreamError) as exc:
        answer({"promptFeedback": {"blockReason": "PROHIBITED_CONTENT"}, "usageMetadata": {}})
    assert exc.value.kind is K.CONTENT_POLICY and exc.value.status == 400
    assert "PROHIBITED_CONTENT" in exc.value.message


def test_no_candidates_and_no_reason_is_a_bad_response():
    with pytest.raises(UpstreamError) as exc:
        answer({"usageMetadata": {"promptTokenCount": 3}})
    assert exc.value.kind is K.BAD_RESPONSE


def test_logprobs():
    cand = candidate([{"text": "Hi"}])
    cand["logprobsResult"] = {
        "chosenCandidates": [{"token": "Hi", "logProbability": -0.5}],
        "topCandidates": [
            {"candidates": [{"token": "Hi", "logProbability": -0.5}, {"token": "Yo"}]}
        ],
    }
    logprobs = answer({"candidates": [cand]})["choices"][0]["logprobs"]
    assert logprobs == {
        "content": [
            {
                "token": "Hi",
                "logprob": -0.5,
                "bytes": [72, 105],
                "top_logprobs": [
                    {"token": "Hi", "logprob": -0.5, "bytes": [72, 105]},
                    {"token": "Yo", "logprob": 0.0, "bytes": [89, 111]},
                ],
            }
        ],
        "refusal": None,
    }


def test_call_ids_are_stable_and_carry_signatures():
    first = make_call_id("resp-1", 0, 1, "f", "c2ln")
    assert first == make_call_id("resp-1", 0, 1, "f", "c2ln")
    assert first != make_call_id("resp-1", 0, 2, "f", "c2ln")
    assert signature_of(first) == "c2ln"
    assert signature_of(make_call_id("resp-1", 0, 1, "f", None)) is None
    assert signature_of("call_from_another_provider") is None


# --- errors --------------------------------------------------------------------------------


def google(code: int, status: str, message: str = "m", details: list | None = None) -> bytes:
    error: dict[str, Any] = {"code": code, "message": message, "status": status}
    if details is not None:
        error["details"] = details
    return json.dumps({"error": error}).encode()


API_KEY_INVALID = [
    {
        "@type": "type.googleapis.com/google.rpc.ErrorInfo",
        "reason": "API_KEY_INVALID",
        "domain": "googleapis.com",
    }
]


@pytest.mark.parametrize(
    ("status", "body", "kind"),
    [
        (400, google(400, "INVALID_ARGUMENT", "Invalid value at 'contents'"), K.INVALID_REQUEST),
        (400, google(400, "INVALID_ARGUMENT", "API key not valid.", API_KEY_INVALID), K.AUTH),
        (400, google(400, "FAILED_PRECONDITION", "User location is not supported"), K.AUTH),
        (
            400,
            google(
                400,
                "INVALID_ARGUMENT",
                "The input token count (1200000) exceeds the maximum number of tokens "
                "allowed (1048576).",
            ),
            K.CONTEXT_LENGTH,
        ),
        (401, google(401, "UNAUTHENTICATED"), K.AUTH),
        (403, google(403, "PERMISSION_DENIED"), K.AUTH),
        (404, google(404, "NOT_FOUND", "models/x is not found"), K.NOT_FOUND),
        (429, google(429, "RESOURCE_EXHAUSTED"), K.RATE_LIMIT),
        (500, google(500, "INTERNAL"), K.SERVER),
        (503, google(503, "UNAVAILABLE", "The model is overloaded."), K.OVERLOADED),
        (504, google(504, "DEADLINE_EXCEEDED"), K.TIMEOUT),
        (502, b"<html>Bad Gateway</html>", K.SERVER),
        (429, b"", K.RATE_LIMIT),
    ],
)
def test_error_classification(status, body, kind):
    error = ADAPTER.error(status, {}, body)
    assert error.kind is kind and error.status == status


def test_retry_delay_from_retry_info_or_headers():
    details = [
        {"@type": "type.googleapis.com/google.rpc.QuotaFailure", "violations": []},
        {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "36.5s"},
    ]
    body = google(429, "RESOURCE_EXHAUSTED", "quota", details)
    assert ADAPTER.error(429, {}, body).retry_after == 36.5
    assert ADAPTER.error(429, {"retry-after": "3"}, body).retry_after == 3.0
    assert ADAPTER.error(429, {}, google(429, "RESOURCE_EXHAUSTED")).retry_after is None


def test_error_arrays_and_secret_redaction():
    key = "AIzaSyA-1234567890abcdefghijklmnopqrst"
    array = b"[" + google(400, "INVALID_ARGUMENT", f"bad key {key} in request") + b"]"
    error = ADAPTER.error(400, {}, array)
    assert error.kind is K.INVALID_REQUEST
    assert key not in error.message and "[redacted]" in error.message


def test_error_object_in_a_successful_body():
    with pytest.raises(UpstreamError) as exc:
        answer({"error": {"code": 429, "message": "slow down", "status": "RESOURCE_EXHAUSTED"}})
    assert exc.value.kind is K.RATE_LIMIT and exc.value.status == 429
