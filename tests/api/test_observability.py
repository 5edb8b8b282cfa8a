"""Metrics, traces and logs from a real gateway process."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import httpx
import openai
import pytest
from aiohttp import web
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import full_config
from tests.mocks.server import MockUpstream
from tests.support.gateway import MASTER_KEY, GatewayProcess

HELLO = [{"role": "user", "content": "hello"}]


def scrape(url: str, token: str | None = None) -> dict[tuple[str, tuple], float]:
    headers = {"authorization": f"Bearer {token}"} if token else {}
    response = httpx.get(f"{url}/metrics", headers=headers)
    assert response.status_code == 200, response.text
    samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def total(samples, name: str, **labels) -> float:
    return sum(
        v for (n, ls), v in samples.items() if n == name and labels.items() <= dict(ls).items()
    )


@pytest.fixture
def own_gateway(mocks, tmp_path):
    """A gateway of its own: failing deployments open breakers, which must not leak into
    other tests through the shared session gateway."""
    config, env = full_config(mocks)
    with GatewayProcess(config, tmp_path, env=env) as process:
        yield process


def test_request_metrics(own_gateway):
    gateway = own_gateway
    client = openai.OpenAI(base_url=f"{gateway.url}/v1", api_key=MASTER_KEY, max_retries=0)
    before = scrape(gateway.url)
    client.chat.completions.create(model="gpt-4o-mini", messages=HELLO)
    list(client.chat.completions.create(model="gpt-4o-mini", messages=HELLO, stream=True))
    client.chat.completions.create(model="failover", messages=HELLO)  # two failed attempts first
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="nope", messages=HELLO)
    after = scrape(gateway.url)

    def delta(name, **labels):
        return total(after, name, **labels) - total(before, name, **labels)

    assert (
        delta(
            "perpetuo_requests_total",
            alias="gpt-4o-mini",
            provider="openai-main",
            status_class="2xx",
        )
        == 2
    )
    assert delta("perpetuo_requests_total", error="model_not_found", status_class="4xx") == 1
    assert delta("perpetuo_fallbacks_total", alias="failover") == 1
    assert delta("perpetuo_upstream_attempts_total", provider="unreachable", outcome="connect") == 1
    assert delta("perpetuo_upstream_attempts_total", provider="openai-badkey", outcome="auth") == 1
    assert delta("perpetuo_time_to_first_token_seconds_count", alias="gpt-4o-mini") == 1
    assert delta("perpetuo_gateway_overhead_seconds_count", endpoint="chat") == 3
    assert delta("perpetuo_tokens_total", alias="gpt-4o-mini", kind="prompt") > 0
    assert delta("perpetuo_cost_usd_total", alias="gpt-4o-mini") > 0
    # Probes and scrapes do not count themselves.
    assert delta("perpetuo_requests_total", endpoint="other") == 0
    assert total(after, "perpetuo_in_flight_requests") == 0


def test_metrics_token_and_bounded_labels(mocks, tmp_path):
    config, env = full_config(mocks)
    with GatewayProcess(
        config, tmp_path, env={**env, "PERPETUO_METRICS_TOKEN": "scrape-secret"}
    ) as gw:
        assert httpx.get(f"{gw.url}/metrics").status_code == 401
        assert (
            httpx.get(f"{gw.url}/metrics", headers={"authorization": "Bearer nope"}).status_code
            == 401
        )
        for path in ("/v1/a", "/v1/b", "/random/path"):
            httpx.get(f"{gw.url}{path}", headers={"authorization": f"Bearer {MASTER_KEY}"})
        samples = scrape(gw.url, "scrape-secret")
        endpoints = {
            dict(ls).get("endpoint") for (n, ls) in samples if n == "perpetuo_requests_total"
        }
        assert endpoints <= {"chat", "embeddings", "models", "other"}


def test_several_workers_report_the_sum(mocks, redis_server, tmp_path):
    config, env = full_config(mocks)
    env = {**env, "PERPETUO_REDIS_URL": redis_server.url}
    with GatewayProcess(config, tmp_path, env=env, args=["--workers", "2"]) as gw:
        for _ in range(30):  # a fresh connection each time, so both workers serve some
            response = httpx.post(
                f"{gw.url}/v1/chat/completions",
                json={"model": "gpt-4o-mini", "messages": HELLO},
                headers={"authorization": f"Bearer {MASTER_KEY}"},
            )
            assert response.status_code == 200
        assert gw.log().count("Started server process") == 2  # two workers behind one port
        counts = {
            total(scrape(gw.url), "perpetuo_requests_total", alias="gpt-4o-mini") for _ in range(6)
        }
        assert counts == {30.0}  # whichever worker answers the scrape


def test_workers_need_redis(mocks, tmp_path):
    config, env = full_config(mocks)
    process = GatewayProcess(config, tmp_path, env=env, args=["--workers", "2"])
    process.config_path.parent.mkdir(parents=True, exist_ok=True)
    import yaml

    process.config_path.write_text(yaml.safe_dump(config))
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "perpetuo",
            "serve",
            "--config",
            str(process.config_path),
            "--workers",
            "2",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env={
            **__import__("os").environ,
            **env,
            "PERPETUO_DATA_DIR": str(tmp_path / "d"),
            "PERPETUO_MASTER_KEY": MASTER_KEY,
        },
    )
    assert result.returncode == 2 and "PERPETUO_REDIS_URL" in result.stderr


class Collector(MockUpstream):
    """An OTLP/HTTP trace collector: keeps every exported span."""

    def __init__(self) -> None:
        super().__init__()
        self.spans: list = []

    def routes(self, app: web.Application) -> None:
        async def traces(request: web.Request) -> web.Response:
            message = ExportTraceServiceRequest()
            message.ParseFromString(await request.read())
            for resource in message.resource_spans:
                for scope in resource.scope_spans:
                    self.spans.extend(scope.spans)
            return web.Response(body=b"", content_type="application/x-protobuf")

        app.router.add_post("/v1/traces", traces)


def attributes(span) -> dict:
    out = {}
    for kv in span.attributes:
        value = kv.value
        out[kv.key] = value.string_value or value.int_value or value.bool_value
    return out


def test_traces_follow_genai_conventions_and_propagate(mocks, tmp_path):
    collector = Collector().start()
    try:
        config, env = full_config(mocks)
        with GatewayProcess(
            config, tmp_path, env={**env, "PERPETUO_OTLP_ENDPOINT": collector.url}
        ) as gw:
            trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"
            client = openai.OpenAI(base_url=f"{gw.url}/v1", api_key=MASTER_KEY, max_retries=0)
            client.chat.completions.create(
                model="failover",
                messages=HELLO,
                extra_headers={"traceparent": f"00-{trace_id}-00f067aa0ba902b7-01"},
            )
            upstream = mocks["openai"].last.headers["traceparent"]
            assert upstream.split("-")[1] == trace_id  # the provider joins the client's trace
            deadline = time.monotonic() + 10
            while len(collector.spans) < 4 and time.monotonic() < deadline:
                time.sleep(0.1)
        request_span = next(s for s in collector.spans if s.name == "chat failover")
        assert request_span.trace_id.hex() == trace_id
        assert request_span.parent_span_id.hex() == "00f067aa0ba902b7"
        attrs = attributes(request_span)
        assert attrs["gen_ai.operation.name"] == "chat"
        assert attrs["gen_ai.request.model"] == "failover"
        assert attrs["gen_ai.response.model"] == "gpt-4o-mini"
        assert attrs["gen_ai.provider.name"] == "openai"
        assert attrs["gen_ai.usage.input_tokens"] > 0 and attrs["perpetuo.attempts"] == 3
        children = [s for s in collector.spans if s.parent_span_id == request_span.span_id]
        assert len(children) == 3
        assert upstream.split("-")[2] == request_span.span_id.hex()
        assert sorted(attributes(c).get("error.type", "") for c in children) == [
            "",
            "auth",
            "connect",
        ]
        assert all(
            request_span.start_time_unix_nano
            <= c.start_time_unix_nano
            <= request_span.end_time_unix_nano
            for c in children
        )
    finally:
        collector.stop()


def test_access_log_lines_are_json_without_secrets(gateway, client):
    raw = client.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=HELLO)
    request_id = raw.headers["x-request-id"]
    deadline = time.monotonic() + 5
    line = None
    while line is None and time.monotonic() < deadline:
        line = next((entry for entry in gateway.log().splitlines() if request_id in entry), None)
        time.sleep(0.05)
    entry = json.loads(line)
    assert entry["logger"] == "perpetuo.access" and entry["status"] == 200
    assert entry["alias"] == "gpt-4o-mini" and entry["provider"] == "openai-main"
    assert entry["prompt_tokens"] > 0 and entry["latency_ms"] > 0
    assert MASTER_KEY not in gateway.log()
