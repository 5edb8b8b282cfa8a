"""What a new user meets in the dashboard's first minutes, in-process: a gateway whose only
models are the built-in demo provider's (a chat alias and an embedding alias), and a
workspace with nothing of its own yet.

The getting-started checklist says what is true; the playground offers only chat models;
the demo provider is labelled as a demo wherever providers are named; unused deployments say
"no traffic"; budget-period menus list each period once; the usage page exports its own
figures as well as the request log; every page links its favicon."""

from __future__ import annotations

import csv
import html
import io
import re
import time

import pytest

from perpetuo.auth.credential_crypto import new_key_spec
from perpetuo.config import GatewayConfig
from perpetuo.metering.record import RequestRecord
from perpetuo.metering.writer import write_batch
from tests.support.admin_api import admin_api
from tests.support.people import make_user, make_workspace
from tests.ui.world import Person, signed_in

CONFIG = {
    "providers": {"sandbox": {"type": "demo"}},
    "models": {
        "demo": {"endpoints": ["chat"], "deployments": [{"provider": "sandbox", "model": "m"}]},
        "demo-embedding": {
            "endpoints": ["embeddings"],
            "deployments": [{"provider": "sandbox", "model": "m"}],
        },
    },
}


@pytest.fixture
async def newcomer(tmp_path, monkeypatch):
    """(the owner of a fresh workspace, signed in; the workspace id; the admin API)."""
    monkeypatch.setenv("PERPETUO_ENCRYPTION_KEYS", new_key_spec("k1"))
    config = GatewayConfig.model_validate(CONFIG)
    async with admin_api(f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}", tmp_path, config) as api:
        owner = await make_user(api.plane, "new@example.com")
        workspace = await make_workspace(api.plane, {owner: "owner"})
        yield await signed_in(api, owner), workspace, api


async def page(person: Person, path: str) -> str:
    response = await person.get(path)
    assert response.status_code == 200, response.text
    return response.text


def step(body: str, slug: str) -> tuple[bool, str]:
    """(ticked, what it says) of the checklist item linking to `slug`."""
    item = re.search(rf'<li data-step="{slug}">(.*?)</li>', body, re.S)
    assert item, slug
    text = html.unescape(re.sub(r"<[^>]+>", " ", item[1])).replace("✓", "")
    return 'class="check done"' in item[1], " ".join(text.split())


async def test_checklist_says_what_is_true(newcomer):
    person, ws, api = newcomer
    body = await page(person, f"/ui/w/{ws}")
    # No credential of its own, but the platform's providers serve the workspace's models.
    done, said = step(body, "providers")
    assert done and "the platform's providers serve 2 models" in said
    # No alias of its own: not ticked, though the platform's models work without one.
    done, said = step(body, "models")
    assert not done and "optional" in said
    assert step(body, "keys") == (False, "Create an API key — to do")

    base = f"/api/workspaces/{ws}"
    owner = {"authorization": f"Bearer {person.access_token}"}
    cred = await api.http.post(
        f"{base}/credentials",
        headers=owner,
        json={
            "name": "own",
            "provider_type": "openai",
            "api_key": "sk-unreachable-1234",
            "api_base": "https://unreachable.invalid/v1",
        },
    )
    model = await api.http.post(
        f"{base}/models",
        headers=owner,
        json={
            "alias": "mine",
            "deployments": [{"credential_id": cred.json()["data"]["id"], "model": "gpt-4o-mini"}],
        },
    )
    assert (cred.status_code, model.status_code) == (201, 201), model.text
    body = await page(person, f"/ui/w/{ws}")
    assert step(body, "providers") == (True, "Add a provider credential — done")
    assert step(body, "models") == (True, "Make a model alias — done")


async def test_playground_offers_chat_models_and_labels_the_demo(newcomer):
    person, ws, api = newcomer
    key = await api.http.post(
        f"/api/workspaces/{ws}/keys",
        headers={"authorization": f"Bearer {person.access_token}"},
        json={"name": "k"},
    )
    assert key.status_code == 201
    body = await page(person, f"/ui/w/{ws}/playground")
    menu = re.search(r'<select id="f-model".*?</select>', body, re.S)[0]
    options = dict(re.findall(r'<option value="([^"]*)"[^>]*>([^<]*)</option>', menu))
    assert options == {"demo": "demo (demo provider)"}  # not the embedding alias


async def test_demo_provider_is_labelled_on_models_and_logs(newcomer):
    person, ws, api = newcomer
    models = await page(person, f"/ui/w/{ws}/models")
    for alias in ("demo", "demo-embedding"):
        card = re.search(
            rf'<section class="alias card" data-alias="{alias}".*?</section>', models, re.S
        )
        assert 'data-test="demo"' in card[0] and "sandbox (demo provider)" in card[0]
        # Unused so far: no error rate to show.
        assert "no traffic" in card[0] and "0.0%" not in card[0]

    await write_batch(
        api.plane.db,
        [
            RequestRecord(
                id="req_demo_1",
                workspace_id=ws,
                created_at=time.time(),
                endpoint="chat",
                status=200,
                alias="demo",
                provider="sandbox",
                model="m",
                latency_ms=0.4,
            )
        ],
    )
    logs = await page(person, f"/ui/w/{ws}/logs")
    row = re.search(r'<tr data-request="req_demo_1".*?</tr>', logs, re.S)
    assert row and "sandbox (demo provider)" in row[0]
    assert "sandbox (demo provider)" in await page(person, f"/ui/w/{ws}/logs/req_demo_1")


async def test_budget_period_menus_list_each_period_once(newcomer):
    person, ws, _ = newcomer
    for path in ("keys", "limits"):
        body = await page(person, f"/ui/w/{ws}/{path}")
        menu = re.search(r'<select id="f-[a-z_.-]*budget_period".*?</select>', body, re.S)
        labels = re.findall(r"<option[^>]*>([^<]*)</option>", menu[0])
        assert labels == ["monthly (default)", "daily", "weekly", "total"], path


async def test_usage_exports_its_own_figures_and_the_request_log(newcomer):
    person, ws, api = newcomer
    now = time.time()
    records = [
        RequestRecord(
            id=f"req_u{i}",
            workspace_id=ws,
            created_at=now - i,
            endpoint="chat",
            status=500 if i == 0 else 200,
            alias="demo",
            prompt_tokens=10,
            completion_tokens=5,
            cost_micros=1500,
            latency_ms=1.0 + i,
        )
        for i in range(3)
    ]
    await write_batch(api.plane.db, records)
    body = await page(person, f"/ui/w/{ws}/usage?range=24h")
    links = dict(re.findall(r'href="([^"]+)" download data-test="([a-z-]+)"', body))
    by_name = {name: url.replace("&amp;", "&") for url, name in links.items()}
    assert set(by_name) == {"usage-csv", "logs-csv"}
    assert '<div class="stat-note">1 error</div>' in body  # one failed request, in the singular
    response = await person.get(by_name["usage-csv"])
    assert (
        response.status_code == 200 and "perpetuo-usage-" in response.headers["content-disposition"]
    )
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert len(rows) >= 24  # every hour of the range, quiet ones as zeros
    assert sum(int(r["requests"]) for r in rows) == 3
    assert sum(int(r["errors"]) for r in rows) == 1
    assert sum(int(r["total_tokens"]) for r in rows) == 45
    assert sum(float(r["cost_usd"]) for r in rows) == pytest.approx(0.0045)
    busy = [r for r in rows if r["requests"] != "0"]
    assert all(float(r["latency_p95_ms"]) <= 3.0 for r in busy)
    log = await person.get(by_name["logs-csv"])
    assert log.status_code == 200 and {"req_u0", "req_u1", "req_u2"} <= set(
        re.findall(r"req_u\d", log.text)
    )


async def test_every_page_links_its_favicon_and_the_nav_menu_button(newcomer):
    person, ws, _ = newcomer
    body = await page(person, f"/ui/w/{ws}/usage")
    icon = re.search(r'<link rel="icon" href="([^"]+)" type="image/svg\+xml">', body)
    assert icon
    served = await person.get(icon[1])
    assert served.status_code == 200 and served.headers["content-type"] == "image/svg+xml"
    assert served.text.startswith("<svg")
    login = (await person.http.get("/ui/login")).text
    assert icon[1] in login  # signed out too
    toggle = re.search(
        r'<button type="button" class="nav-toggle" ([^>]*)>(.*?)</button>', body, re.S
    )
    assert 'aria-expanded="false"' in toggle[1] and 'aria-controls="sidenav-list"' in toggle[1]
    assert "Usage and cost" in toggle[2] and '<ul id="sidenav-list">' in body
