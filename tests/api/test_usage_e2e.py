"""Metering end to end: requests through the openai and anthropic SDKs become request-log
records and rollups, queryable by time, API, model, key and tag, searchable, and exportable
as CSV."""

from __future__ import annotations

import csv
import io
import time

import anthropic
import httpx
import openai
import pytest

from tests.conftest import full_config
from tests.mocks.server import Fault
from tests.support.gateway import MASTER_KEY, GatewayProcess

ADMIN = {"authorization": f"Bearer {MASTER_KEY}"}
BASE = "/api/workspaces/ws_default"


@pytest.fixture(scope="module")
def gw(mocks, tmp_path_factory):
    config, env = full_config(mocks)
    process = GatewayProcess(config, tmp_path_factory.mktemp("usage"), env=env).start()
    yield process
    process.stop()


def get(gw, path, **params):
    response = httpx.get(f"{gw.url}{BASE}{path}", headers=ADMIN, params=params, timeout=30)
    assert response.status_code == 200, response.text
    return response


def wait_for_logs(gw, count, **filters):
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        data = get(gw, "/logs", limit=200, **filters).json()["data"]
        if len(data) >= count:
            return data
        time.sleep(0.1)
    raise AssertionError(f"only {len(data)} of {count} records arrived")


def test_requests_become_logs_and_rollups(gw, mocks):
    key = httpx.post(f"{gw.url}{BASE}/keys", headers=ADMIN, json={"name": "metered"}).json()["data"]
    client = openai.OpenAI(base_url=f"{gw.url}/v1", api_key=key["key"], max_retries=0)
    for i in range(3):
        client.chat.completions.create(
            model="gpt-4o-mini",
            messages=[{"role": "user", "content": f"count {i}"}],
            extra_headers={"x-perpetuo-tags": "team-red,exp-1"},
        )
    stream = client.chat.completions.create(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": "a streamed one"}],
        stream=True,
        extra_headers={"x-perpetuo-tags": "team-red"},
    )
    list(stream)
    mocks["openai"].fail_next(
        Fault(status=500, body={"error": {"message": "x", "type": "server_error"}})
    )
    with pytest.raises(openai.APIStatusError):
        client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "boom"}]
        )
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="nope", messages=[{"role": "user", "content": "x"}])

    logs = wait_for_logs(gw, 6, key_id=key["id"])
    assert [entry["status"] for entry in logs].count(200) == 4
    ok = [e for e in logs if e["status"] == 200]
    assert all(
        e["prompt_tokens"] > 0 and e["cost_usd"] > 0 and e["provider"] == "openai-main" for e in ok
    )
    assert sum(e["stream"] for e in logs) == 1
    failed = next(e for e in logs if e["status"] == 502)
    assert failed["error_code"] == "upstream_error" and failed["attempts"] == 1
    assert next(e for e in logs if e["status"] == 404)["error_code"] == "model_not_found"

    detail = get(gw, f"/logs/{failed['id']}").json()["data"]
    assert detail["trace"]["attempts"][0]["status"] == 500
    assert detail["user_agent"].startswith("OpenAI/Python")

    errors_only = get(gw, "/logs", key_id=key["id"], status="error").json()["data"]
    assert {e["status"] for e in errors_only} == {502, 404}

    series = get(gw, "/usage", group_by="key").json()["data"]
    mine = [row for row in series if row["group"] == key["id"]]
    assert sum(r["requests"] for r in mine) == 6 and sum(r["errors"] for r in mine) == 2
    assert mine[0]["latency_p50_ms"] is not None
    tags = {row["group"]: row for row in get(gw, "/usage/breakdown", group_by="tag").json()["data"]}
    assert tags["team-red"]["requests"] == 4 and tags["exp-1"]["requests"] == 3
    daily = get(gw, "/usage", granularity="day").json()["data"]
    assert daily and daily[-1]["bucket"].endswith("T00:00:00Z")
    assert sum(row["total_tokens"] for row in daily) >= sum(
        e["prompt_tokens"] + e["completion_tokens"] for e in logs
    )

    exported = get(gw, "/logs/export.csv", key_id=key["id"])
    assert exported.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    assert len(rows) == 6 and {r["status"] for r in rows} == {"200", "502", "404"}
    # The export takes the search's filters: what the log page shows is what it downloads.
    failed = get(gw, "/logs/export.csv", key_id=key["id"], error_code=errors_only[0]["error_code"])
    failed_rows = list(csv.DictReader(io.StringIO(failed.text)))
    assert failed_rows and {r["status"] for r in failed_rows} == {str(errors_only[0]["status"])}


def test_each_request_is_logged_and_counted_under_its_api(gw):
    """Chat Completions, Responses and Messages requests are logged with the API the client
    spoke, on both lanes; the log filters on it and usage groups by it. Counting tokens and
    reading a stored response are not inference requests and are not logged."""
    key = httpx.post(f"{gw.url}{BASE}/keys", headers=ADMIN, json={"name": "dialects"}).json()
    key = key["data"]
    gpt = openai.OpenAI(base_url=f"{gw.url}/v1", api_key=key["key"], max_retries=0)
    claude = anthropic.Anthropic(base_url=gw.url, api_key=key["key"], max_retries=0)
    gpt.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "a"}])
    answer = gpt.responses.create(model="gpt-4o-mini", input="b")  # OpenAI: pass-through
    list(gpt.responses.create(model="claude", input="c", stream=True))  # translated
    turn = [{"role": "user", "content": "d"}]
    claude.messages.create(model="claude", max_tokens=64, messages=turn)  # pass-through
    with claude.messages.stream(model="gpt-4o-mini", max_tokens=64, messages=turn) as stream:
        stream.get_final_message()  # translated
    claude.messages.count_tokens(model="claude", messages=turn)
    gpt.responses.retrieve(answer.id)

    logs = wait_for_logs(gw, 5, key_id=key["id"])
    time.sleep(1)  # anything logged by mistake (the count, the read) has arrived too
    logs = get(gw, "/logs", key_id=key["id"]).json()["data"]
    assert (
        sorted(e["endpoint"] for e in logs) == ["chat", "messages", "messages"] + ["responses"] * 2
    )
    assert all(e["status"] == 200 and e["prompt_tokens"] > 0 for e in logs)
    messages = get(gw, "/logs", key_id=key["id"], endpoint="messages").json()["data"]
    assert {(e["endpoint"], e["provider"], e["stream"]) for e in messages} == {
        ("messages", "anthropic-main", False),
        ("messages", "openai-main", True),
    }
    exported = get(gw, "/logs/export.csv", key_id=key["id"], endpoint="responses")
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    assert [r["endpoint"] for r in rows] == ["responses", "responses"]

    # Usage by API. Other tests of this module send chat requests only.
    totals = {
        r["group"]: r for r in get(gw, "/usage/breakdown", group_by="endpoint").json()["data"]
    }
    assert totals["responses"]["requests"] == 2 and totals["messages"]["requests"] == 2
    assert totals["chat"]["requests"] >= 1
    assert totals["messages"]["prompt_tokens"] == sum(e["prompt_tokens"] for e in messages)
    series = get(gw, "/usage", group_by="endpoint").json()["data"]
    assert sum(r["requests"] for r in series if r["group"] == "messages") == 2
    assert {r["group"] for r in series} >= {"chat", "responses", "messages"}


def test_query_validation(gw):
    bad = httpx.get(f"{gw.url}{BASE}/usage", headers=ADMIN, params={"group_by": "planet"})
    assert bad.status_code == 422 and bad.json()["error"]["param"] == "group_by"
    backwards = httpx.get(
        f"{gw.url}{BASE}/logs",
        headers=ADMIN,
        params={"since": "2026-01-02T00:00:00Z", "until": "2026-01-01T00:00:00Z"},
    )
    assert backwards.status_code == 422 and backwards.json()["error"]["param"] == "since"
    cursor = httpx.get(f"{gw.url}{BASE}/logs", headers=ADMIN, params={"cursor": "garbage!"})
    assert cursor.status_code == 422
