"""A provider whose endpoint is the gateway itself (with a valid key) must not recurse: every
upstream call carries x-perpetuo-hops, and a request past the limit is refused with 508."""

from __future__ import annotations

import httpx

from tests.support.gateway import MASTER_KEY, GatewayProcess


def test_a_gateway_pointing_at_itself_stops_after_a_few_hops(tmp_path):
    process = GatewayProcess({}, tmp_path)
    process.config = {
        "egress": {"max_hops": 3},
        "providers": {
            "myself": {
                "type": "openai",
                "api_base": f"{process.url}/v1",  # trusted operator config: not egress-checked
                "api_key": MASTER_KEY,
            }
        },
        "models": {"loop": {"deployments": [{"provider": "myself", "model": "loop"}]}},
    }
    with process:
        response = httpx.post(
            f"{process.url}/v1/chat/completions",
            headers={"authorization": f"Bearer {MASTER_KEY}"},
            json={"model": "loop", "messages": [{"role": "user", "content": "hi"}]},
            timeout=30,
        )
        body = response.json()
        assert response.status_code == 400, body
        assert "loop" in body["error"]["message"].lower()
        metrics = httpx.get(f"{process.url}/metrics", timeout=5).text
    # One client request, then at most max_hops nested ones: no retries of a loop.
    served = sum(
        float(line.rsplit(" ", 1)[1])
        for line in metrics.splitlines()
        if line.startswith("perpetuo_requests_total{")
    )
    assert 2 <= served <= 4, served


def test_the_hop_limit_is_enforced_on_arrival(tmp_path):
    with GatewayProcess({"egress": {"max_hops": 2}}, tmp_path) as process:
        for value, status in (("1", 404), ("2", 508), ("junk", 508)):
            response = httpx.post(
                f"{process.url}/v1/chat/completions",
                headers={"authorization": f"Bearer {MASTER_KEY}", "x-perpetuo-hops": value},
                json={"model": "none", "messages": [{"role": "user", "content": "hi"}]},
            )
            assert response.status_code == status, response.text
            if status == 508:
                assert response.json()["error"]["code"] == "loop_detected"
