"""Rerank through the gateway (the Cohere/Jina/vLLM request shape, over httpx): Cohere's v2
API (documents added back when asked, billed search units metered), a vLLM host (the body
passed on as sent), errors, failover, limits, a budget charged per search, key scopes and
the wrong-endpoint 400."""

from __future__ import annotations

import httpx
import pytest

from tests.api.operations_support import (
    create_key,
    start_gateway,
    wait_for_logs,
    wait_until_settled,
)
from tests.mocks.server import Fault
from tests.support.gateway import MASTER_KEY

DOCUMENTS = [
    "Paris is the capital of France.",
    "The capital of Germany is Berlin.",
    "Bananas are yellow.",
]


@pytest.fixture(scope="module")
def env(mocks, tmp_path_factory):
    yield from start_gateway(mocks, tmp_path_factory, "rerank")


@pytest.fixture
def gw(env):
    return env[0]


@pytest.fixture
def cohere(env):
    env[1].reset()
    return env[1]


def rerank(gw, key: str = MASTER_KEY, **body) -> httpx.Response:
    return httpx.post(
        f"{gw.url}/v1/rerank",
        json={"query": "capital of France", "documents": DOCUMENTS, **body},
        headers={"authorization": f"Bearer {key}"},
        timeout=30,
    )


def test_cohere_rerank_with_documents_and_billed_searches(gw, cohere):
    key = create_key(gw)
    response = rerank(gw, key["key"], model="rerank-v3.5", top_n=2, return_documents=True)
    assert response.status_code == 200, response.text
    answer = response.json()
    assert [r["index"] for r in answer["results"]] == [0, 1]
    assert answer["results"][0]["document"] == {"text": DOCUMENTS[0]}
    assert answer["results"][0]["relevance_score"] > answer["results"][1]["relevance_score"]
    assert answer["model"] == "rerank-v3.5"
    assert answer["meta"]["billed_units"] == {"search_units": 1}
    sent = cohere.last
    assert sent.path == "/v2/rerank"
    assert sent.body == {
        "query": "capital of France",
        "model": "rerank-v3.5",
        "documents": DOCUMENTS,
        "top_n": 2,
    }
    (entry,) = wait_for_logs(gw, key["id"], 1)
    assert (entry["endpoint"], entry["unit"], entry["quantity"]) == ("rerank", "searches", 1)
    assert entry["cost_usd"] == pytest.approx(0.002)


def test_document_objects_reach_cohere_as_text(gw, cohere):
    response = rerank(
        gw, model="rerank-v3.5", documents=[{"text": d} for d in DOCUMENTS], return_documents=True
    )
    assert response.status_code == 200
    assert cohere.last.body["documents"] == DOCUMENTS
    assert response.json()["results"][0]["document"] == {"text": DOCUMENTS[0]}


def test_vllm_rerank_is_passed_on_as_sent(gw, openai_mock):
    key = create_key(gw)
    response = rerank(gw, key["key"], model="vllm-rerank", top_n=1, return_documents=False)
    assert response.status_code == 200
    assert response.json()["results"] == [{"index": 0, "relevance_score": 0.5}]
    sent = openai_mock.last
    assert sent.path == "/v1/rerank"
    assert sent.body["model"] == "BAAI/bge-reranker-v2-m3"
    assert sent.body["return_documents"] is False and sent.body["top_n"] == 1
    (entry,) = wait_for_logs(gw, key["id"], 1)
    assert entry["prompt_tokens"] == 3 + sum(len(d.split()) for d in DOCUMENTS)  # as reported
    assert (entry["unit"], entry["quantity"], entry["usage_estimated"]) == ("searches", 1, False)


def test_errors(gw, cohere):
    missing = rerank(gw, model="rerank-v3.5", query="")
    assert missing.status_code == 400 and missing.json()["error"]["param"] == "query"
    bad_doc = rerank(gw, model="rerank-v3.5", documents=["ok", 3])
    assert bad_doc.json()["error"]["param"] == "documents[1]"
    untranslatable = rerank(gw, model="rerank-v3.5", rank_fields=["title"])
    assert untranslatable.status_code == 400
    assert untranslatable.json()["error"]["param"] == "rank_fields"
    cohere.fail_next(
        Fault(
            status=429,
            body={"id": "x", "message": "trial key limited"},
            headers={"retry-after": "3"},
        )
    )
    limited = rerank(gw, model="rerank-v3.5")
    assert limited.status_code == 429 and limited.headers["retry-after"]
    assert not [r for r in cohere.requests if "rank_fields" in (r.body or {})]


def test_failover_from_a_refused_key(gw, cohere, openai_mock):
    response = rerank(gw, model="rerank-failover")
    assert response.status_code == 200
    assert response.headers["x-perpetuo-attempts"] == "2"
    assert response.headers["x-perpetuo-provider"] == "vllm-local"
    assert cohere.last.headers["Authorization"] == "Bearer co-wrong"


def test_limits_budget_scope_and_wrong_endpoint(gw, cohere):
    limited = create_key(gw, limits={"rpm": 1})["key"]
    assert rerank(gw, limited, model="rerank-v3.5").status_code == 200
    refused = rerank(gw, limited, model="rerank-v3.5")
    assert refused.status_code == 429
    assert refused.json()["error"]["code"] == "rate_limit_requests"

    key = create_key(gw, limits={"budget_usd": 0.003, "budget_period": "daily"})
    assert rerank(gw, key["key"], model="rerank-v3.5").status_code == 200
    wait_until_settled(gw, key["id"], 1)
    over = rerank(gw, key["key"], model="rerank-v3.5")  # $0.002 more does not fit $0.001
    assert over.status_code == 402 and over.json()["error"]["code"] == "budget_exceeded"

    chat_only = create_key(gw, scopes=["chat"])["key"]
    assert rerank(gw, chat_only, model="rerank-v3.5").status_code == 403

    wrong = rerank(gw, model="gpt-4o-mini")
    assert wrong.status_code == 400
    assert wrong.json()["error"]["code"] == "endpoint_not_supported"
